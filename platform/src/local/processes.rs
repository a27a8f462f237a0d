//! The record of the app process groups this platform started (`app_processes`), so a
//! platform starting again after a crash stops what the crashed one left running. A group is
//! recorded with its leader's start time and is only signalled while that identity still
//! holds: a pid the kernel reused for another program is never touched.

use super::{LocalPlatform, store};
use crate::error::Result;
use rusqlite::{Connection, params};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// One app process group started or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessEvent {
    /// A group led by `pgid` started (its leader's start time in clock ticks since boot).
    Started { pgid: i32, start_ticks: u64 },
    /// The group led by `pgid` is gone (stopped, or exited and swept).
    Ended { pgid: i32 },
}

/// Told of every app process group an instance starts or ends; awaited, so the record is
/// written before the process can outlive the platform unnoticed.
pub type ProcessHook =
    Arc<dyn Fn(ProcessEvent) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The start time of process `pid` in clock ticks since boot (field 22 of
/// `/proc/<pid>/stat`), or `None` when there is no such process.
pub fn start_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last `)`.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// Kills what is left of a recorded group. When the leader still runs with the recorded
/// start time, or no longer exists (its pid cannot be reused while its group has members),
/// the whole group gets SIGKILL; when the pid now belongs to another program, nothing.
/// Whether a signal was sent to live processes.
pub fn kill_leftover_group(pgid: i32, recorded_ticks: u64) -> bool {
    let Some(pid) = rustix::process::Pid::from_raw(pgid) else {
        return false;
    };
    match start_ticks(pgid) {
        Some(ticks) if ticks != recorded_ticks => false,
        _ => rustix::process::kill_process_group(pid, rustix::process::Signal::KILL).is_ok(),
    }
}

fn record(conn: &Connection, event: ProcessEvent, key: &ProcessKey, now: i64) -> Result<()> {
    match event {
        ProcessEvent::Started { pgid, start_ticks } => {
            conn.execute(
                "INSERT INTO app_processes (pgid, start_ticks, project, service, release, started_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (pgid) DO UPDATE SET start_ticks = excluded.start_ticks,
                     project = excluded.project, service = excluded.service,
                     release = excluded.release, started_at = excluded.started_at",
                params![
                    pgid,
                    i64::try_from(start_ticks).unwrap_or(i64::MAX),
                    key.project,
                    key.service,
                    key.release,
                    now
                ],
            )?;
        }
        ProcessEvent::Ended { pgid } => {
            conn.execute("DELETE FROM app_processes WHERE pgid = ?1", [pgid])?;
        }
    }
    Ok(())
}

/// Whose processes a hook records.
#[derive(Debug, Clone)]
struct ProcessKey {
    project: String,
    service: String,
    release: String,
}

impl LocalPlatform {
    /// The hook recording the process groups of `release` of `project`/`service`.
    pub(super) fn process_hook(&self, project: &str, service: &str, release: &str) -> ProcessHook {
        let platform = self.clone();
        let key = ProcessKey {
            project: project.to_owned(),
            service: service.to_owned(),
            release: release.to_owned(),
        };
        Arc::new(move |event| {
            let (platform, key) = (platform.clone(), key.clone());
            Box::pin(async move {
                let written = platform
                    .on_db(move |db, now| db.write(|tx| record(tx, event, &key, now)))
                    .await;
                if let Err(err) = written {
                    tracing::warn!(error = %err, ?event, "recording an app process failed");
                }
            })
        })
    }

    /// Kills every app process group a previous platform process left running and forgets
    /// them; the groups signalled.
    pub(super) async fn kill_leftover_processes(&self) -> Result<Vec<(String, String, i32)>> {
        let recorded = self
            .on_db(|db, _| {
                let rows = db
                    .conn()
                    .prepare("SELECT pgid, start_ticks, project, service FROM app_processes")?
                    .query_map([], |r| {
                        Ok((
                            r.get::<_, i32>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await?;
        let mut killed = Vec::new();
        for (pgid, ticks, project, service) in recorded {
            if kill_leftover_group(pgid, u64::try_from(ticks).unwrap_or(0)) {
                killed.push((project, service, pgid));
            }
        }
        let reported = killed.clone();
        self.on_db(move |db, now| {
            db.write(|tx| {
                tx.execute("DELETE FROM app_processes", [])?;
                for (project, service, pgid) in &reported {
                    if store::project_exists(tx, project)? {
                        store::record_event(
                            tx,
                            project,
                            "service.orphan_stopped",
                            Some(service),
                            &format!(
                                "stopped process group {pgid} a previous platform process left running"
                            ),
                            now,
                        )?;
                    }
                }
                Ok(())
            })
        })
        .await?;
        Ok(killed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_ticks_identify_a_live_process_and_nothing_else() {
        let me = i32::try_from(std::process::id()).unwrap();
        let ticks = start_ticks(me).unwrap();
        assert_eq!(start_ticks(me), Some(ticks), "stable for one process");
        assert_eq!(start_ticks(i32::MAX), None);
    }

    #[test]
    fn a_reused_pid_is_left_alone() {
        // Our own process group with a start time that is not ours: never signalled.
        let me = i32::try_from(std::process::id()).unwrap();
        let ticks = start_ticks(me).unwrap();
        assert!(!kill_leftover_group(me, ticks + 1));
    }
}
