//! The sandbox basics (seed 003's `vm` tools): `exec`, `read_file`, `write_file`,
//! `expose_port`, `remove_port`, run on the machine the agent lives on.

mod exec;
mod files;
mod ports;

pub use exec::{ExecArgs, ExecTool};
pub use files::{ReadFileArgs, ReadFileTool, WriteFileArgs, WriteFileTool};
pub use ports::{ExposePortTool, PortArgs, RemovePortTool};

use crate::dispatch::SharedDb;
use crate::registry::Registry;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What the sandbox tools share.
#[derive(Debug)]
pub struct Sandbox {
    /// The default working directory; relative paths resolve against it.
    pub workdir: PathBuf,
    /// The environment `exec` runs with, already scrubbed of credentials.
    pub env: Vec<(OsString, OsString)>,
    /// Bytes of stdout and of stderr kept per `exec` call.
    pub output_cap: usize,
    /// The most bytes `read_file` returns per call.
    pub max_read_bytes: usize,
    /// The most bytes `write_file` accepts per call.
    pub max_write_bytes: usize,
    /// state.db, for content provenance and exposed ports.
    pub db: SharedDb,
}

impl Sandbox {
    /// A sandbox with default limits.
    pub fn new(workdir: PathBuf, env: Vec<(OsString, OsString)>, db: SharedDb) -> Self {
        Self {
            workdir,
            env,
            output_cap: 32 * 1024,
            max_read_bytes: 256 * 1024,
            max_write_bytes: 1024 * 1024,
            db,
        }
    }

    /// `path` made absolute against the working directory.
    pub fn absolute(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.workdir.join(path)
        }
    }
}

/// Whether an environment variable's name marks it as a credential.
pub fn is_secret_env_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    [
        "KEY",
        "SECRET",
        "TOKEN",
        "PASSWORD",
        "PASSWD",
        "CREDENTIAL",
        "PASSPHRASE",
        "PRIVATE",
    ]
    .iter()
    .any(|marker| upper.contains(marker))
}

/// The environment for `exec`: `vars` without anything named like a credential and without
/// the runtime's own variables (`AUTOMATON_*`, `CONWAY_*`, `OPENAI_*`, `ANTHROPIC_*`).
pub fn scrub_env(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Vec<(OsString, OsString)> {
    vars.into_iter()
        .filter(|(name, _)| {
            let name = name.to_string_lossy();
            let runtime_own = ["AUTOMATON_", "CONWAY_", "OPENAI_", "ANTHROPIC_"]
                .iter()
                .any(|prefix| name.to_ascii_uppercase().starts_with(prefix));
            !is_secret_env_name(&name) && !runtime_own
        })
        .collect()
}

/// Registers the five sandbox tools.
pub fn register(registry: &mut Registry, sandbox: Arc<Sandbox>) -> Result<(), String> {
    registry.register(ExecTool(Arc::clone(&sandbox)))?;
    registry.register(ReadFileTool(Arc::clone(&sandbox)))?;
    registry.register(WriteFileTool(Arc::clone(&sandbox)))?;
    registry.register(ExposePortTool(Arc::clone(&sandbox)))?;
    registry.register(RemovePortTool(sandbox))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_scrubbed() {
        let vars = [
            ("PATH", "/usr/bin"),
            ("HOME", "/root"),
            ("OPENAI_API_KEY", "sk-x"),
            ("GITHUB_TOKEN", "ghp"),
            ("DB_PASSWORD", "pw"),
            ("aws_secret_access_key", "s"),
            ("CONWAY_ENDPOINT", "http://x"),
            ("AUTOMATON_HOME", "/h"),
            ("LANG", "C.UTF-8"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let kept: Vec<String> = scrub_env(vars)
            .into_iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert_eq!(kept, ["PATH", "HOME", "LANG"]);
    }
}
