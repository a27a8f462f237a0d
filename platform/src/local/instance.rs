//! One running instance of a release, supervised: a start command run as its own process
//! group with `$PORT` and the project env (restarted with backoff when it dies), or a static
//! directory served by the platform itself. Output goes to the service's log file and to an
//! in-memory tail the health gate and `get_service` read.

use super::processes::{ProcessEvent, ProcessHook, start_ticks};
use crate::detect::Start;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Told of every line a process writes.
pub type LineSink = Arc<dyn Fn(&str) + Send + Sync>;
/// Told of every exit of a supervised process, and of its recovery from a crash loop, with
/// the state after it.
pub type ExitHook = Arc<dyn Fn(&InstanceState, Transition) + Send + Sync>;

/// What an [`ExitHook`] is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The process exited (it is restarted after a backoff).
    Exited,
    /// A process in a crash loop has stayed up long enough to count as recovered.
    Recovered,
}

/// Lines kept in memory per service.
const TAIL_LINES: usize = 500;
/// Crashes within [`CRASH_WINDOW`] that make a crash loop.
pub const CRASH_LOOP_CRASHES: usize = 3;
/// The window in which crashes are counted.
pub const CRASH_WINDOW: Duration = Duration::from_secs(300);
/// The first restart delay; doubled per crash in the window, at most [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a stopping process gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The newest lines a service wrote, shared by its instances.
#[derive(Debug, Default)]
pub struct LogTail(Mutex<VecDeque<String>>);

impl LogTail {
    /// Appends a line, dropping the oldest past the limit.
    pub fn push(&self, line: String) {
        let mut lines = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// The last `n` lines, oldest first.
    pub fn last(&self, n: usize) -> Vec<String> {
        let lines = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        lines
            .iter()
            .skip(lines.len().saturating_sub(n))
            .cloned()
            .collect()
    }
}

/// What the supervisor reports about an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceState {
    /// Times the process exited on its own.
    pub exits: u32,
    /// Whether the crashes in the window make a crash loop.
    pub crash_loop: bool,
    /// The last line the app wrote before its last exit.
    pub last_error_line: Option<String>,
    /// How the last exit looked (`exit status: 1`).
    pub last_exit: Option<String>,
}

/// How to run an instance.
#[derive(Clone)]
pub struct InstanceSpec {
    /// The release directory (the working directory).
    pub release_dir: PathBuf,
    /// The release's id, prefixed to its log lines.
    pub release: String,
    /// How it starts.
    pub start: Start,
    /// The port it must listen on.
    pub port: u16,
    /// The environment: the project env, then `PORT`.
    pub env: Vec<(String, String)>,
    /// The service's log file.
    pub log_file: PathBuf,
    /// The service's in-memory tail.
    pub tail: Arc<LogTail>,
    /// How long a restarted process must stay up to end a crash loop.
    pub stable_after: Duration,
    /// The confinement wrapper to start it through, if any.
    pub confine_with: Option<PathBuf>,
    /// Directories it may write besides its release (its project's SQLite datastores).
    pub also_writable: Vec<PathBuf>,
    /// Told of each process group the instance starts and ends.
    pub processes: ProcessHook,
}

/// A running, supervised instance. Stopped (and its process group killed) by [`Self::stop`];
/// an instance dropped without it (a failed promote, an abandoned change) is stopped all the
/// same, in the background: no path leaks a process.
#[derive(Debug)]
pub struct Instance {
    /// Its port.
    pub port: u16,
    /// Its release.
    pub release: String,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Its supervision state.
    pub state: watch::Receiver<InstanceState>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        // The supervisor sees the cancellation and stops the process group (SIGTERM, then
        // SIGKILL after the grace period) on its own task.
        self.stop.cancel();
    }
}

impl Instance {
    /// Starts the instance; `on_exit` is told of every exit (with the state after it).
    pub fn start(spec: InstanceSpec, on_exit: ExitHook) -> Self {
        let stop = CancellationToken::new();
        let (state_tx, state) = watch::channel(InstanceState {
            exits: 0,
            crash_loop: false,
            last_error_line: None,
            last_exit: None,
        });
        let port = spec.port;
        let release = spec.release.clone();
        let task = match spec.start.clone() {
            Start::Command { command } => {
                tokio::spawn(supervise(spec, command, stop.clone(), state_tx, on_exit))
            }
            Start::Static { dir } => {
                // detect() admits only directories inside the release; the server also
                // refuses anything that resolves outside `root`.
                let root = spec.release_dir.join(dir);
                tokio::spawn(crate::local::static_site::serve(root, port, stop.clone()))
            }
        };
        Self {
            port,
            release,
            stop,
            task: Some(task),
            state,
        }
    }

    /// Whether the process exited at least once.
    pub fn has_exited(&self) -> bool {
        self.state.borrow().exits > 0
    }

    /// Stops the instance: SIGTERM to its process group, SIGKILL after a grace period.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// The environment every app process starts from: a few of the platform's own variables,
/// never its secrets.
fn base_env() -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = ["PATH", "LANG", "TMPDIR", "USER"]
        .into_iter()
        .filter_map(|key| std::env::var(key).ok().map(|value| (key.to_owned(), value)))
        .collect();
    // An app's HOME is its release, so rustup would look for its toolchains there: point it
    // at the platform user's (read-only to a confined build). Cargo's own home stays the
    // release's, so one project's build cannot touch another's registry cache.
    let rustup = std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".rustup")))
        .filter(|dir| dir.is_dir());
    if let Some(dir) = rustup {
        env.push(("RUSTUP_HOME".to_owned(), dir.to_string_lossy().into_owned()));
    }
    env
}

/// Runs `sh -c command` in `dir` as its own process group with `env` on top of [`base_env`];
/// through the confinement wrapper `confine_with` names, when it names one (writes only to
/// `dir` and `also_writable`, see [`super::confine`]).
pub fn shell(
    command: &str,
    dir: &Path,
    env: &[(String, String)],
    confine_with: Option<&Path>,
    also_writable: &[PathBuf],
) -> tokio::process::Command {
    let mut process = match confine_with {
        Some(wrapper) => super::confine::wrapped(wrapper, dir, also_writable, command),
        None => {
            let mut plain = tokio::process::Command::new("sh");
            plain.arg("-c").arg(command);
            plain
        }
    };
    process.current_dir(dir).env_clear().envs(base_env());
    // The app's HOME is its release, not the platform user's home (where the platform's
    // token and other automatons' homes live).
    let app_env = std::iter::once(("HOME", dir.as_os_str())).chain(
        env.iter()
            .map(|(k, v)| (k.as_str(), std::ffi::OsStr::new(v))),
    );
    for (name, value) in app_env {
        if confine_with.is_some() {
            // Not for the unconfined wrapper (`LD_PRELOAD=./x.so` would run the release's
            // code before the rules, a `PATH` would widen them): it hands them on.
            process.env(format!("{}{name}", super::confine::APP_ENV_PREFIX), value);
        } else {
            process.env(name, value);
        }
    }
    process
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    process
}

/// SIGTERM to the group led by `pid`; SIGKILL if it is still there after the grace period.
pub async fn stop_group(child: &mut tokio::process::Child) {
    let Some(pid) = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::TERM);
    if tokio::time::timeout(STOP_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        let _ = child.wait().await;
    }
    // Whatever the leader left behind in its group goes too.
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
}

/// A log file past this size is moved to `<name>.1` (replacing the one before) and started
/// afresh: at most twice this per service on disk.
pub const LOG_ROTATE_BYTES: u64 = 10 * 1024 * 1024;
/// Lines written between two checks of the log file's size.
const LINES_PER_ROTATION_CHECK: u32 = 64;

/// Copies each line of `pipe` to the tail, the log file (rotated at [`LOG_ROTATE_BYTES`])
/// and `on_line`.
pub async fn pump_lines(
    pipe: impl tokio::io::AsyncRead + Unpin,
    prefix: String,
    tail: Arc<LogTail>,
    log_file: Option<PathBuf>,
    on_line: Option<LineSink>,
) {
    let mut file = match &log_file {
        Some(path) => open_log(path).await,
        None => None,
    };
    let mut since_check = 0;
    let mut lines = BufReader::new(pipe).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let (Some(path), Some(open)) = (&log_file, file.as_mut()) {
            let _ = open.write_all(format!("{prefix}{line}\n").as_bytes()).await;
            since_check += 1;
            if since_check == LINES_PER_ROTATION_CHECK {
                since_check = 0;
                let _ = open.flush().await;
                if let Some(reopened) = rotate_if_due(path, open).await {
                    *open = reopened;
                }
            }
        }
        if let Some(on_line) = &on_line {
            on_line(&line);
        }
        tail.push(line);
    }
    if let Some(open) = file.as_mut() {
        // tokio hands writes to the blocking pool: wait for the last one to land.
        let _ = open.flush().await;
    }
}

async fn open_log(path: &Path) -> Option<tokio::fs::File> {
    tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
        .ok()
}

/// Rotates the log when it is past its size, or follows a rotation another writer of the
/// same file did; the file to write to from now on, when it changed.
async fn rotate_if_due(path: &Path, open: &tokio::fs::File) -> Option<tokio::fs::File> {
    use std::os::unix::fs::MetadataExt;
    let ours = open.metadata().await.ok()?;
    let Ok(at_path) = tokio::fs::metadata(path).await else {
        // Removed under us (the project was deleted): stop writing.
        return None;
    };
    if (ours.dev(), ours.ino()) != (at_path.dev(), at_path.ino()) {
        return open_log(path).await;
    }
    if at_path.len() <= LOG_ROTATE_BYTES {
        return None;
    }
    let mut rotated = path.as_os_str().to_owned();
    rotated.push(".1");
    tokio::fs::rename(path, &rotated).await.ok()?;
    open_log(path).await
}

async fn supervise(
    spec: InstanceSpec,
    command: String,
    stop: CancellationToken,
    state: watch::Sender<InstanceState>,
    on_exit: ExitHook,
) {
    let mut env = spec.env.clone();
    env.push(("PORT".to_owned(), spec.port.to_string()));
    let mut crashes: VecDeque<Instant> = VecDeque::new();
    loop {
        let spawned = shell(
            &command,
            &spec.release_dir,
            &env,
            spec.confine_with.as_deref(),
            &spec.also_writable,
        )
        .spawn();
        let exit = match spawned {
            Ok(mut child) => {
                // Taken now: after `wait` the child no longer reports its pid.
                let group = child
                    .id()
                    .and_then(|id| i32::try_from(id).ok())
                    .and_then(rustix::process::Pid::from_raw);
                if let Some(pid) = group
                    && let Some(ticks) = start_ticks(pid.as_raw_nonzero().get())
                {
                    (spec.processes)(ProcessEvent::Started {
                        pgid: pid.as_raw_nonzero().get(),
                        start_ticks: ticks,
                    })
                    .await;
                }
                let ended = |group: Option<rustix::process::Pid>| {
                    let hook = Arc::clone(&spec.processes);
                    async move {
                        if let Some(pid) = group {
                            hook(ProcessEvent::Ended {
                                pgid: pid.as_raw_nonzero().get(),
                            })
                            .await;
                        }
                    }
                };
                let prefix = format!("{} ", spec.release);
                let pumps = [
                    child.stdout.take().map(|pipe| {
                        tokio::spawn(pump_lines(
                            pipe,
                            prefix.clone(),
                            Arc::clone(&spec.tail),
                            Some(spec.log_file.clone()),
                            None,
                        ))
                    }),
                    child.stderr.take().map(|pipe| {
                        tokio::spawn(pump_lines(
                            pipe,
                            prefix.clone(),
                            Arc::clone(&spec.tail),
                            Some(spec.log_file.clone()),
                            None,
                        ))
                    }),
                ];
                let stable = tokio::time::sleep(spec.stable_after);
                tokio::pin!(stable);
                let mut judged_stable = false;
                let status = loop {
                    tokio::select! {
                        status = child.wait() => break status,
                        () = stop.cancelled() => {
                            stop_group(&mut child).await;
                            ended(group).await;
                            return;
                        }
                        () = &mut stable, if !judged_stable => {
                            judged_stable = true;
                            if state.borrow().crash_loop {
                                crashes.clear();
                                let mut after = state.borrow().clone();
                                after.crash_loop = false;
                                state.send_replace(after.clone());
                                on_exit(&after, Transition::Recovered);
                            }
                        }
                    }
                };
                // Let the pipes drain so the last line is the app's last words.
                for pump in pumps.into_iter().flatten() {
                    let _ = tokio::time::timeout(Duration::from_secs(1), pump).await;
                }
                // The group may have children that outlived the leader.
                if let Some(pid) = group {
                    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                }
                ended(group).await;
                status.map_or_else(
                    |err| format!("wait failed: {err}"),
                    |status| status.to_string(),
                )
            }
            Err(err) => {
                spec.tail
                    .push(format!("the start command could not be run: {err}"));
                format!("not started: {err}")
            }
        };
        let now = Instant::now();
        crashes.push_back(now);
        while crashes
            .front()
            .is_some_and(|at| now.duration_since(*at) > CRASH_WINDOW)
        {
            crashes.pop_front();
        }
        let mut after = state.borrow().clone();
        after.exits += 1;
        after.crash_loop = crashes.len() >= CRASH_LOOP_CRASHES;
        after.last_error_line = spec.tail.last(1).pop();
        after.last_exit = Some(exit);
        state.send_replace(after.clone());
        on_exit(&after, Transition::Exited);
        let shift = u32::try_from(crashes.len().saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(16);
        let backoff = FIRST_BACKOFF.saturating_mul(1 << shift).min(MAX_BACKOFF);
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// A free local port (bound and released; the app binds it right after).
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_log_past_its_size_is_rotated_once_and_kept_writing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.log");
        let line = format!("{}\n", "x".repeat(1023));
        let lines = usize::try_from(LOG_ROTATE_BYTES / 1024).unwrap() + 2 * 64 + 10;
        let input = line.repeat(lines).into_bytes();
        let tail = Arc::new(LogTail::default());
        pump_lines(
            &input[..],
            String::new(),
            Arc::clone(&tail),
            Some(path.clone()),
            None,
        )
        .await;
        let rotated = std::fs::metadata(dir.path().join("api.log.1"))
            .unwrap()
            .len();
        let current = std::fs::metadata(&path).unwrap().len();
        assert!(rotated > LOG_ROTATE_BYTES, "{rotated}");
        assert!(current > 0 && current < 200 * 1024, "{current}");
        assert_eq!(rotated + current, (lines * 1024) as u64, "no line lost");
        assert_eq!(tail.last(1), vec!["x".repeat(1023)]);
    }
}
