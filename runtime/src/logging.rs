//! Structured logs: JSON lines appended to `<home>/logs/automaton.log`, opened lazily so a
//! command that creates the home (init) logs into it from the moment it exists. Nothing
//! secret is ever passed to a log macro: addresses yes, keys and passphrases never.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The log file's name under logs/.
pub const LOG_FILE: &str = "automaton.log";

/// A writer that appends to the home's log file once its logs/ directory exists.
#[derive(Clone)]
struct HomeLogWriter {
    path: PathBuf,
    file: Arc<Mutex<Option<File>>>,
}

struct HomeLogHandle(HomeLogWriter);

impl Write for HomeLogHandle {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut slot = match self.0.file.lock() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        if slot.is_none() {
            let Some(dir) = self.0.path.parent() else {
                return Ok(buf.len());
            };
            if !dir.is_dir() {
                // No home yet: drop the line rather than create directories from a logger.
                return Ok(buf.len());
            }
            *slot = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(&self.0.path)?,
            );
        }
        match slot.as_mut() {
            Some(file) => file.write(buf),
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for HomeLogWriter {
    type Writer = HomeLogHandle;

    fn make_writer(&'a self) -> Self::Writer {
        HomeLogHandle(self.clone())
    }
}

/// Installs the global subscriber writing JSON lines into `logs_dir/automaton.log`.
/// `filter` is a tracing directive such as `info`.
pub fn init(logs_dir: PathBuf, filter: &str) {
    let writer = HomeLogWriter {
        path: logs_dir.join(LOG_FILE),
        file: Arc::new(Mutex::new(None)),
    };
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_current_span(false)
        .try_init();
}
