//! `read_file` and `write_file`. Both go through path protection before they run. A write
//! records the writer's provenance; a read reports the provenance of the content, so text
//! that came from outside stays external when it is read back.

use super::Sandbox;
use crate::audit;
use crate::dispatch::with_db;
use crate::tool::{
    Category, Effect, ExternalSource, Provenance, RiskLevel, Subject, Tool, ToolContext, ToolError,
    ToolErrorCode, ToolOutput,
};
use schemars::JsonSchema;
use serde::Deserialize;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

/// Arguments of `read_file`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadFileArgs {
    /// File path (relative to the workspace or absolute).
    pub path: String,
    /// Byte offset to start at (default 0).
    #[serde(default)]
    pub offset: u64,
}

/// Arguments of `write_file`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteFileArgs {
    /// File path (relative to the workspace or absolute); parent directories are created.
    pub path: String,
    /// The text to write.
    pub content: String,
    /// Append instead of replacing (default false).
    #[serde(default)]
    pub append: bool,
}

/// The `read_file` tool.
#[derive(Debug)]
pub struct ReadFileTool(pub Arc<Sandbox>);

/// The `write_file` tool.
#[derive(Debug)]
pub struct WriteFileTool(pub Arc<Sandbox>);

fn io_error(action: &str, path: &std::path::Path, err: &std::io::Error) -> ToolError {
    let (code, hint) = match err.kind() {
        std::io::ErrorKind::NotFound => (
            ToolErrorCode::NotFound,
            "check the path (exec `ls` the directory)".to_owned(),
        ),
        std::io::ErrorKind::PermissionDenied => (
            ToolErrorCode::ExecutionFailed,
            "this file is not accessible to the agent; use another path".to_owned(),
        ),
        _ => (
            ToolErrorCode::ExecutionFailed,
            "check the path and retry".to_owned(),
        ),
    };
    ToolError::model(
        code,
        format!("cannot {action} {}: {err}", path.display()),
        hint,
    )
}

impl Tool for ReadFileTool {
    const NAME: &'static str = "read_file";
    type Args = ReadFileArgs;

    fn description(&self) -> String {
        "Read a text file. Returns content (capped), total_bytes and the content's provenance."
            .to_owned()
    }

    fn category(&self) -> Category {
        Category::Vm
    }

    fn risk(&self) -> RiskLevel {
        RiskLevel::Safe
    }

    fn effect(&self, _: &ReadFileArgs) -> Effect {
        Effect::ReadOnly
    }

    fn subjects(&self, args: &ReadFileArgs) -> Vec<Subject> {
        vec![Subject::Read(self.0.absolute(&args.path))]
    }

    async fn call(&self, _ctx: &ToolContext, args: ReadFileArgs) -> Result<ToolOutput, ToolError> {
        let path = self.0.absolute(&args.path);
        let cap = self.0.max_read_bytes;
        let read_path = path.clone();
        let offset = args.offset;
        let read = tokio::task::spawn_blocking(move || -> Result<_, std::io::Error> {
            let mut file = std::fs::File::open(&read_path)?;
            let meta = file.metadata()?;
            if !meta.is_file() {
                return Err(std::io::Error::other("not a regular file"));
            }
            file.seek(SeekFrom::Start(offset))?;
            let mut bytes = Vec::new();
            file.take(cap as u64).read_to_end(&mut bytes)?;
            Ok((bytes, meta.len()))
        })
        .await
        .map_err(|err| ToolError::Fatal(format!("read task failed: {err}")))?;
        let (bytes, total) = read.map_err(|err| io_error("read", &path, &err))?;
        if bytes.contains(&0) {
            return Err(ToolError::model(
                ToolErrorCode::InvalidArguments,
                format!("{} is a binary file", path.display()),
                "inspect binary files with exec (e.g. `file`, `xxd | head`)",
            ));
        }
        let key = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        let key = key.to_string_lossy().into_owned();
        let recorded = with_db(&self.0.db, move |db| {
            Ok(audit::content_provenance(db.conn(), &key)?)
        })
        .await?;
        // Content no tool call of this agent wrote has an unknown author: treat it as outside.
        let provenance = recorded.unwrap_or(Provenance::External(ExternalSource::StoredContent));
        let returned = bytes.len() as u64;
        Ok(ToolOutput::new(serde_json::json!({
            "path": path.display().to_string(),
            "content": String::from_utf8_lossy(&bytes),
            "offset": args.offset,
            "bytes": returned,
            "total_bytes": total,
            "truncated": args.offset + returned < total,
            "provenance": provenance.to_string(),
        }))
        .with_content_provenance(provenance))
    }
}

impl Tool for WriteFileTool {
    const NAME: &'static str = "write_file";
    type Args = WriteFileArgs;

    fn description(&self) -> String {
        "Write (or append) text to a file, creating directories. Returns bytes_written.".to_owned()
    }

    fn category(&self) -> Category {
        Category::Vm
    }

    fn risk(&self) -> RiskLevel {
        RiskLevel::Caution
    }

    fn subjects(&self, args: &WriteFileArgs) -> Vec<Subject> {
        vec![
            Subject::Write(self.0.absolute(&args.path)),
            Subject::Size {
                field: "content",
                bytes: args.content.len(),
                max: self.0.max_write_bytes,
            },
        ]
    }

    async fn call(&self, _ctx: &ToolContext, args: WriteFileArgs) -> Result<ToolOutput, ToolError> {
        let path = self.0.absolute(&args.path);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|err| io_error("create the directory of", &path, &err))?;
        }
        let bytes = args.content.len();
        if args.append {
            use tokio::io::AsyncWriteExt;
            let mut file = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .await
                .map_err(|err| io_error("open", &path, &err))?;
            file.write_all(args.content.as_bytes())
                .await
                .map_err(|err| io_error("write", &path, &err))?;
        } else {
            tokio::fs::write(&path, args.content.as_bytes())
                .await
                .map_err(|err| io_error("write", &path, &err))?;
        }
        let key = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        let key = key.to_string_lossy().into_owned();
        // Who wrote it is recorded with the call's result, in one transaction.
        Ok(ToolOutput::new(serde_json::json!({
            "path": path.display().to_string(),
            "bytes_written": bytes,
            "appended": args.append,
        }))
        .with_written_file(key))
    }
}
