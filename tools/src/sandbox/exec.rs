//! `exec`: runs a shell command (bash) in its own process group, with a timeout that kills
//! the whole group, output capped with a truncation marker, and an environment scrubbed of
//! credentials. The command itself was already judged by the command-safety gate.

use super::Sandbox;
use crate::tool::{
    Category, Effect, RiskLevel, Subject, Tool, ToolContext, ToolError, ToolErrorCode, ToolOutput,
};
use schemars::JsonSchema;
use serde::Deserialize;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Arguments of `exec`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecArgs {
    /// The bash command line.
    pub command: String,
    /// Working directory (default: the agent's workspace).
    #[serde(default)]
    pub cwd: Option<String>,
    /// Seconds before the command's whole process group is killed (default 120).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
const MAX_COMMAND_BYTES: usize = 64 * 1024;
/// After the shell exits, how long to wait for background processes to let go of its pipes.
const PIPE_GRACE: Duration = Duration::from_millis(300);

/// The `exec` tool.
#[derive(Debug)]
pub struct ExecTool(pub Arc<Sandbox>);

/// Kills a process group when dropped, unless disarmed.
struct GroupKiller(Option<rustix::process::Pid>);

impl GroupKiller {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            // The group may be gone already; nothing to do then.
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads a stream, keeping at most `cap` bytes and counting the rest.
async fn read_capped<R: AsyncRead + Unpin>(mut reader: R, cap: usize) -> (Vec<u8>, usize) {
    let mut kept = Vec::new();
    let mut dropped = 0;
    let mut chunk = [0_u8; 8192];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..n.min(room)]);
                dropped += n.saturating_sub(room);
            }
        }
    }
    (kept, dropped)
}

fn render(bytes: &[u8], dropped: usize) -> String {
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    if dropped > 0 {
        text.push_str(&format!("\n…[truncated: {dropped} more bytes]"));
    }
    text
}

impl Tool for ExecTool {
    const NAME: &'static str = "exec";
    type Args = ExecArgs;

    fn description(&self) -> String {
        "Run a bash command. Returns exit_code, stdout, stderr (each capped).".to_owned()
    }

    fn category(&self) -> Category {
        Category::Vm
    }

    /// Dangerous, not seed 003's caution: a shell can do whatever the command gate fails to
    /// foresee, so the authority gate must never let outside input drive it.
    fn risk(&self) -> RiskLevel {
        RiskLevel::Dangerous
    }

    fn effect(&self, _: &ExecArgs) -> Effect {
        Effect::Mutating
    }

    fn subjects(&self, args: &ExecArgs) -> Vec<Subject> {
        let cwd = args
            .cwd
            .as_deref()
            .map_or_else(|| self.0.workdir.clone(), |cwd| self.0.absolute(cwd));
        vec![
            Subject::Size {
                field: "command",
                bytes: args.command.len(),
                max: MAX_COMMAND_BYTES,
            },
            Subject::Command {
                command: args.command.clone(),
                cwd,
            },
        ]
    }

    async fn call(&self, ctx: &ToolContext, args: ExecArgs) -> Result<ToolOutput, ToolError> {
        let cwd = args
            .cwd
            .as_deref()
            .map_or_else(|| self.0.workdir.clone(), |cwd| self.0.absolute(cwd));
        if !cwd.is_dir() {
            return Err(ToolError::model(
                ToolErrorCode::NotFound,
                format!("working directory {} does not exist", cwd.display()),
                "create it first (mkdir -p) or omit cwd to use the workspace",
            ));
        }
        let timeout = args
            .timeout_secs
            .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
        let mut command = tokio::process::Command::new("bash");
        command
            .arg("-c")
            .arg(&args.command)
            .current_dir(&cwd)
            .env_clear()
            .envs(self.0.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|err| {
            ToolError::model(
                ToolErrorCode::ExecutionFailed,
                format!("bash could not be started: {err}"),
                "check that bash is installed on this machine",
            )
        })?;
        let mut killer = GroupKiller(
            child
                .id()
                .and_then(|pid| rustix::process::Pid::from_raw(pid as i32)),
        );
        let cap = self.0.output_cap;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let mut out_task = tokio::spawn(async move {
            match stdout {
                Some(s) => read_capped(s, cap).await,
                None => (Vec::new(), 0),
            }
        });
        let mut err_task = tokio::spawn(async move {
            match stderr {
                Some(s) => read_capped(s, cap).await,
                None => (Vec::new(), 0),
            }
        });
        let status = tokio::select! {
            status = child.wait() => status,
            () = tokio::time::sleep(timeout) => {
                killer.kill();
                let _ = child.wait().await;
                let (out, err) = (out_task.await.unwrap_or_default(), err_task.await.unwrap_or_default());
                return Err(ToolError::model(
                    ToolErrorCode::Timeout,
                    format!("the command ran past {} s; its process group was killed", timeout.as_secs()),
                    "run long work in the background (nohup … > log 2>&1 &) or pass a larger timeout_secs",
                ).with_details(serde_json::json!({
                    "stdout": render(&out.0, out.1),
                    "stderr": render(&err.0, err.1),
                })));
            }
            () = ctx.cancel.cancelled() => {
                killer.kill();
                let _ = child.wait().await;
                return Err(ToolError::Cancelled { reason: "the turn was cancelled".to_owned() });
            }
        };
        let status = status.map_err(|err| ToolError::Fatal(format!("waiting for bash: {err}")))?;
        // The shell is done. Background jobs it started may keep running (servers started
        // with `&`); give them a moment to release the pipes, then stop listening.
        let grace = tokio::time::sleep(PIPE_GRACE);
        tokio::pin!(grace);
        let mut out = None;
        let mut err = None;
        while out.is_none() || err.is_none() {
            tokio::select! {
                r = &mut out_task, if out.is_none() => out = Some(r.unwrap_or_default()),
                r = &mut err_task, if err.is_none() => err = Some(r.unwrap_or_default()),
                () = &mut grace => break,
            }
        }
        // Jobs the command chose to background outlive this call (a server started with
        // `nohup … > log 2>&1 &`); the pipes they still hold are closed.
        out_task.abort();
        err_task.abort();
        killer.0 = None;
        let (out, err) = (out.unwrap_or_default(), err.unwrap_or_default());
        Ok(ToolOutput::new(serde_json::json!({
            "exit_code": status.code(),
            "stdout": render(&out.0, out.1),
            "stderr": render(&err.0, err.1),
            "truncated": out.1 > 0 || err.1 > 0,
        })))
    }
}
