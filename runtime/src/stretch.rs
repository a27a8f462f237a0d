//! A *stretch* is one waking period of the agent: turns until it sleeps, hits a bound, or is
//! told to stop. Each stretch runs in its own child process (`automaton stretch`, hidden from
//! help), started by the long-lived `automaton run`.
//!
//! The split keeps the process that lives between turns small — it never loads the model
//! client, the tokenizer's vocabulary or the shell classifier, so a sleeping automaton costs
//! a few megabytes — and isolates a crash in a turn from the process that keeps the heartbeat
//! going. The child prints its [`RunReport`] as JSON on stdout and nothing else; a failure no
//! restart can fix (a tampered constitution, a broken config or wallet) arrives as the usual
//! `{code, message, hint}` line on stderr and is relayed as is; anything else is a crash, and
//! `automaton run` starts another stretch after a backoff.
//!
//! The wake reason goes to the child on its stdin (not its command line, which any local user
//! can read in `ps`). The child holds the home's `stretch.lock` while it runs and asks the
//! kernel for SIGTERM when its parent dies, so a stretch never outlives its run unnoticed: it
//! finishes its tool call, persists and exits, and a new run waits for the lock to be free.

use crate::agent::run::{Agent, RunOptions, RunReport};
use crate::error::{Error, ErrorCode, Result};
use crate::home::Home;
use crate::preflight;
use crate::run_cmd::{HomeLock, inference_for};
use crate::toolbox::{self, ProcessFacts};
use automaton_tools::clock::Clock;
use serde::Deserialize;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// How long a stopping stretch may take to finish its tool call and persist before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(60);
/// The most of a crashed stretch's stderr kept for the report.
const STDERR_TAIL_BYTES: usize = 4096;

/// Binds this process to the run that started it: SIGTERM when that process dies, and a
/// refusal if it is already gone (it died between starting us and this call). Call it first.
pub fn bind_to_parent(parent_pid: u32) -> Result<()> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))
        .map_err(|errno| Error::io("asking for", "the parent-death signal")(errno.into()))?;
    let parent = rustix::process::getppid().map(|pid| pid.as_raw_nonzero().get());
    if parent.and_then(|pid| u32::try_from(pid).ok()) != Some(parent_pid) {
        return Err(Error::InvalidInput {
            message: format!(
                "the `automaton run` (pid {parent_pid}) that started this stretch is gone"
            ),
            hint: "start the agent with `automaton run`; a stretch is started by it".to_owned(),
        });
    }
    Ok(())
}

/// The child side: runs one stretch in this process and returns its report.
pub async fn run_here(
    home: &Home,
    facts: &ProcessFacts,
    clock: Arc<dyn Clock>,
    max_turns: Option<u32>,
    wake_reason: Option<String>,
    cancel: &CancellationToken,
) -> Result<RunReport> {
    let config = preflight::verify_home(home)?;
    let _stretch = HomeLock::stretch(home)?;
    let toolbox = toolbox::build(home, facts, Arc::clone(&clock))?;
    let inference = inference_for(&config, home, &facts.env, &toolbox, Arc::clone(&clock))?;
    let agent = Agent {
        home,
        config: &config,
        toolbox: &toolbox,
        inference: &inference,
        clock,
    };
    let options = RunOptions {
        max_turns,
        max_calls_per_turn: usize::try_from(config.inference.max_tool_calls_per_turn)
            .unwrap_or(usize::MAX),
    };
    agent.run(&options, cancel, wake_reason).await
}

/// How a stretch process ended, seen from `automaton run`.
#[derive(Debug)]
pub enum StretchExit {
    /// It ran and reported.
    Reported(RunReport),
    /// It died without a report (a crash, a kill, a panic): the next stretch may do better.
    Crashed {
        /// The exit status, e.g. `signal: 9 (SIGKILL)`.
        status: String,
        /// The end of what it wrote to stderr.
        stderr_tail: String,
    },
}

/// The failures a stretch reports that no restart can fix: `automaton run` stops with them.
const UNRECOVERABLE: [ErrorCode; 5] = [
    ErrorCode::ConstitutionTampered,
    ErrorCode::InvalidConfig,
    ErrorCode::NotInitialized,
    ErrorCode::WalletRefused,
    ErrorCode::Busy,
];

#[derive(Deserialize)]
struct RelayedError {
    code: ErrorCode,
    message: String,
    hint: String,
}

/// The parent side: starts `exe stretch` for `home` and waits for it. Cancelling `cancel`
/// sends the child SIGTERM (it finishes or cancels its tool call and persists), and kills it
/// after [`STOP_GRACE`]. A failure the child explained (a tampered constitution, a broken
/// config) is returned as that error.
pub async fn spawn(
    exe: &Path,
    home: &Home,
    max_turns: Option<u32>,
    wake_reason: Option<&str>,
    cancel: &CancellationToken,
) -> Result<StretchExit> {
    let mut command = tokio::process::Command::new(exe);
    command
        .arg("--home")
        .arg(home.root())
        .args(["stretch", "--json", "--parent-pid"])
        .arg(std::process::id().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(max) = max_turns {
        command.arg("--max-turns").arg(max.to_string());
    }
    if wake_reason.is_some() {
        command.arg("--wake-stdin");
    }
    let mut child = command
        .spawn()
        .map_err(Error::io("starting the agent's stretch process", exe))?;
    let mut stdin = child.stdin.take();
    let reason = wake_reason.unwrap_or_default().to_owned();
    let write_stdin = async move {
        if let Some(pipe) = stdin.as_mut() {
            // A child that dies before reading shows up as a crash below; nothing to add here.
            let _ = pipe.write_all(reason.as_bytes()).await;
            let _ = pipe.shutdown().await;
        }
        drop(stdin);
    };
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let read_stdout = async {
        let mut text = String::new();
        if let Some(pipe) = stdout.as_mut() {
            let _ = pipe.read_to_string(&mut text).await;
        }
        text
    };
    let read_stderr = async {
        let mut bytes = Vec::new();
        if let Some(pipe) = stderr.as_mut() {
            let _ = pipe.read_to_end(&mut bytes).await;
        }
        bytes
    };
    let wait = async {
        tokio::select! {
            status = child.wait() => status,
            () = cancel.cancelled() => {
                if let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()).and_then(rustix::process::Pid::from_raw) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
                }
                match tokio::time::timeout(STOP_GRACE, child.wait()).await {
                    Ok(status) => status,
                    Err(_) => {
                        tracing::warn!("the stretch did not stop within {STOP_GRACE:?}; killing it");
                        let _ = child.start_kill();
                        child.wait().await
                    }
                }
            }
        }
    };
    let ((), status, out, err) = tokio::join!(write_stdin, wait, read_stdout, read_stderr);
    let status = status.map_err(Error::io("waiting for the agent's stretch process", exe))?;
    interpret(status, &out, &err)
}

fn interpret(status: ExitStatus, stdout: &str, stderr: &[u8]) -> Result<StretchExit> {
    let stderr = String::from_utf8_lossy(stderr);
    if status.success()
        && let Ok(report) = serde_json::from_str::<RunReport>(stdout.trim())
    {
        return Ok(StretchExit::Reported(report));
    }
    if status.code().is_some()
        && let Some(error) = stderr
            .lines()
            .rev()
            .find_map(|line| serde_json::from_str::<RelayedError>(line).ok())
        && UNRECOVERABLE.contains(&error.code)
    {
        return Err(Error::Relayed {
            code: error.code,
            message: error.message,
            hint: error.hint,
        });
    }
    let start = stderr.len().saturating_sub(STDERR_TAIL_BYTES);
    let start = (start..stderr.len())
        .find(|&i| stderr.is_char_boundary(i))
        .unwrap_or(stderr.len());
    Ok(StretchExit::Crashed {
        status: status.to_string(),
        stderr_tail: stderr[start..].trim().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn a_report_an_explained_failure_and_a_crash_are_told_apart() {
        let ok = ExitStatus::from_raw(0);
        let report = r#"{"turns":2,"end":{"reason":"max_turns"}}"#;
        assert!(matches!(
            interpret(ok, &format!("{report}\n"), b""),
            Ok(StretchExit::Reported(RunReport { turns: 2, .. }))
        ));
        let failed = ExitStatus::from_raw(1 << 8);
        let error = br#"{"code":"CONSTITUTION_TAMPERED","message":"constitution.md failed verification: hash","hint":"restore it"}"#;
        match interpret(failed, "", error) {
            Err(err @ Error::Relayed { .. }) => {
                assert_eq!(err.code(), ErrorCode::ConstitutionTampered);
                assert_eq!(err.hint(), "restore it");
            }
            other => panic!("{other:?}"),
        }
        // A failure a restart may fix (a busy disk, a locked state.db) is a crash, not a stop.
        let state_db = br#"{"code":"STATE_DB","message":"database is locked","hint":"retry"}"#;
        assert!(matches!(
            interpret(failed, "", state_db),
            Ok(StretchExit::Crashed { .. })
        ));
        let killed = ExitStatus::from_raw(9);
        match interpret(killed, "", "thread 'main' panicked at x\n".as_bytes()) {
            Ok(StretchExit::Crashed {
                status,
                stderr_tail,
            }) => {
                assert!(status.contains('9'), "{status}");
                assert!(stderr_tail.contains("panicked"));
            }
            other => panic!("{other:?}"),
        }
    }
}
