//! `automaton platform …`: the local Conway platform's daemon (`serve`) and the CLI that
//! mirrors seed 000's `conway` verbs, plus how the runtime finds a platform at all.
//!
//! Which platform: `CONWAY_ENDPOINT` and `CONWAY_TOKEN` name a real gateway. Without them the
//! local platform is used: its data directory (`$AUTOMATON_PLATFORM_DIR`, else
//! `~/.automaton-platform`) holds `endpoint.json` (0600: the gateway's URL, the admin token,
//! the daemon's pid), written by `serve`. When no daemon answers there, one is started in the
//! background — the way a container CLI finds its daemon — and the caller is told so. The
//! daemon outlives the agent that started it, so deployed apps keep serving and several
//! automatons (and their children) share one platform.

use crate::error::{Error, Result};
use crate::home::PRIVATE_FILE_MODE;
use crate::output::{OutputMode, print_json};
use automaton_platform::tools::PlatformAccess;
use automaton_platform::{HttpPlatform, LocalPlatform, Platform};
use automaton_tools::clock::SystemClock;
use automaton_tools::tool::BoxFuture;
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

mod credits;
mod repos;

/// The gateway's default address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";
/// How long a caller waits for a daemon it started.
const START_WAIT: Duration = Duration::from_secs(15);

/// What `serve` records for local clients.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointFile {
    /// The gateway's base URL.
    pub url: String,
    /// The admin token's secret.
    pub token: String,
    /// The daemon's pid.
    pub pid: u32,
    /// The address of the live URLs' proxy (`http://<service>-<project>.localhost:PORT/`).
    #[serde(default)]
    pub proxy: Option<String>,
}

/// Where the local platform keeps its data.
pub fn data_dir(env: &[(OsString, OsString)], user_home: &Path) -> PathBuf {
    env_var(env, "AUTOMATON_PLATFORM_DIR")
        .map_or_else(|| user_home.join(".automaton-platform"), PathBuf::from)
}

fn env_var(env: &[(OsString, OsString)], name: &str) -> Option<String> {
    env.iter()
        .find(|(key, _)| key == name)
        .and_then(|(_, value)| value.to_str())
        .map(str::to_owned)
        .filter(|value| !value.is_empty())
}

/// A platform error as the runtime's.
pub fn platform_error(error: automaton_platform::Error) -> Error {
    Error::Platform(Box::new(error))
}

/// `automaton platform serve`: runs the local platform's gateway until `stop`.
pub async fn serve(
    data_dir: &Path,
    listen: &str,
    proxy_listen: Option<&str>,
    inference_config: Option<&Path>,
    env: &[(OsString, OsString)],
    stop: CancellationToken,
    mode: OutputMode,
) -> Result<()> {
    // Apps and builds run confined (Landlock) when the kernel enforces it; this binary is
    // the wrapper that applies the rules (`platform confine`).
    let confine_with = if automaton_platform::local::confine::available() {
        Some(std::env::current_exe().map_err(Error::io("locating", Path::new("automaton")))?)
    } else {
        tracing::warn!(
            "this kernel does not enforce Landlock: apps run unconfined, as the platform's user"
        );
        None
    };
    let confined = confine_with.is_some();
    let platform = LocalPlatform::open_with(
        data_dir,
        Arc::new(SystemClock),
        automaton_platform::local::LocalOptions {
            confine_with,
            ..Default::default()
        },
    )
    .map_err(platform_error)?;
    // The inference proxy's upstream: the file named, else inference.json when there is one.
    // A bad file stops the start, naming the field to fix.
    let default_config = data_dir.join(automaton_platform::inference::CONFIG_FILE);
    let config_path = inference_config
        .map(Path::to_owned)
        .or_else(|| default_config.exists().then_some(default_config));
    let inference = match &config_path {
        Some(path) => {
            let config = automaton_platform::inference::InferenceConfig::load(path, &|name| {
                env_var(env, name)
            })
            .map_err(platform_error)?;
            let models = config.offered().join(", ");
            platform
                .set_inference(
                    automaton_platform::inference::Inference::new(config)
                        .map_err(platform_error)?,
                )
                .map_err(platform_error)?;
            Some(models)
        }
        None => None,
    };
    let _lock =
        crate::run_cmd::HomeLock::at(&data_dir.join("serve.lock"), || Error::InvalidInput {
            message: format!("a local platform is already serving {}", data_dir.display()),
            hint: "use the running one (its address is in endpoint.json there), or stop it first"
                .to_owned(),
        })?;
    let listener =
        tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|err| Error::InvalidInput {
                message: format!("the platform cannot listen on {listen}: {err}"),
                hint: "pick a free address with --listen 127.0.0.1:PORT".to_owned(),
            })?;
    let address = listener
        .local_addr()
        .map_err(Error::io("reading the address of", data_dir))?;
    let url = format!("http://{address}");
    let endpoint_path = data_dir.join("endpoint.json");
    let previous = read_endpoint(&endpoint_path);
    // The live URLs keep their port across restarts when it is free.
    let proxy_address = proxy_listen.map(str::to_owned).unwrap_or_else(|| {
        previous
            .as_ref()
            .and_then(|endpoint| endpoint.proxy.clone())
            .unwrap_or_else(|| "127.0.0.1:0".to_owned())
    });
    let proxy_listener = match tokio::net::TcpListener::bind(&proxy_address).await {
        Ok(listener) => listener,
        Err(_) if proxy_listen.is_none() => tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(Error::io("binding the live URLs' proxy in", data_dir))?,
        Err(err) => {
            return Err(Error::InvalidInput {
                message: format!("the live URLs' proxy cannot listen on {proxy_address}: {err}"),
                hint: "pick a free address with --proxy-listen 127.0.0.1:PORT".to_owned(),
            });
        }
    };
    let proxy = proxy_listener
        .local_addr()
        .map_err(Error::io("reading the address of", data_dir))?
        .to_string();
    let known = previous.map(|endpoint| endpoint.token);
    let token = match (
        platform
            .ensure_admin_token()
            .await
            .map_err(platform_error)?,
        known,
    ) {
        (Some(fresh), _) => fresh,
        (None, Some(known))
            if platform
                .authenticate(&known)
                .await
                .map_err(platform_error)? =>
        {
            known
        }
        (None, _) => platform
            .rotate_admin_token()
            .await
            .map_err(platform_error)?,
    };
    write_endpoint(
        &endpoint_path,
        &EndpointFile {
            url: url.clone(),
            token,
            pid: std::process::id(),
            proxy: Some(proxy.clone()),
        },
    )?;
    let resumed = platform.resume().await.map_err(platform_error)?;
    if mode == OutputMode::Human {
        println!(
            "the local platform serves {url}; live URLs http://<service>-<project>.localhost:{}/; data in {}; {} services resumed; apps {}",
            proxy.rsplit(':').next().unwrap_or_default(),
            data_dir.display(),
            resumed.len(),
            if confined {
                "confined (Landlock)"
            } else {
                "NOT confined (no Landlock)"
            }
        );
    }
    match &inference {
        Some(models) => tracing::info!(%models, "the inference proxy serves /v1/chat/completions"),
        None => tracing::info!(
            "no inference upstream: write {} to serve /v1/chat/completions",
            data_dir
                .join(automaton_platform::inference::CONFIG_FILE)
                .display()
        ),
    }
    tracing::info!(%url, resumed = resumed.len(), confined, "the local platform is serving");
    let live_urls = tokio::spawn({
        let platform = platform.clone();
        let stop = stop.clone();
        async move { platform.serve_proxy(proxy_listener, stop).await }
    });
    let served = automaton_platform::gateway::serve(platform.clone(), listener, stop.clone()).await;
    stop.cancel();
    let _ = live_urls.await;
    platform.shutdown().await;
    served.map_err(Error::io("serving the platform on", data_dir))
}

fn read_endpoint(path: &Path) -> Option<EndpointFile> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
}

fn write_endpoint(path: &Path, endpoint: &EndpointFile) -> Result<()> {
    let temporary = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(endpoint).map_err(|err| Error::InvalidInput {
        message: err.to_string(),
        hint: "this is a bug".to_owned(),
    })?;
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE_MODE)
        .open(&temporary)
        .map_err(Error::io("writing", &temporary))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(Error::io("writing", &temporary))?;
    std::fs::rename(&temporary, path).map_err(Error::io("writing", path))
}

/// How this process reaches a platform.
#[derive(Debug, Clone)]
pub struct Connector {
    env: Vec<(OsString, OsString)>,
    user_home: PathBuf,
    exe: PathBuf,
    /// The gateway automaton.json names: its endpoint and token.
    configured: Option<(String, String)>,
}

/// What connecting found.
pub struct Connected {
    /// The platform.
    pub platform: Arc<dyn Platform>,
    /// Where it is.
    pub endpoint: String,
    /// Whether this call started the local daemon.
    pub started: bool,
    /// The local daemon's pid (none for a remote gateway).
    pub daemon_pid: Option<u32>,
}

impl Connector {
    /// A connector for this process's environment.
    pub fn new(env: Vec<(OsString, OsString)>, user_home: PathBuf, exe: PathBuf) -> Self {
        Self {
            env,
            user_home,
            exe,
            configured: None,
        }
    }

    /// Uses the gateway `config.conway` names (its token read from the home) when the
    /// environment names none.
    pub fn with_config(
        mut self,
        config: &crate::config::AutomatonConfig,
        home: &crate::home::Home,
    ) -> Result<Self> {
        if let Some(conway) = &config.conway {
            let path = home.root().join(&conway.token_file);
            automaton_tools::secure_fs::check_private_file(&path).map_err(|issue| {
                Error::InvalidInput {
                    message: issue.message(&path),
                    hint: issue.fix(&path),
                }
            })?;
            let token = std::fs::read_to_string(&path)
                .map_err(Error::io("reading", &path))?
                .trim()
                .to_owned();
            self.configured = Some((conway.endpoint.clone(), token));
        }
        Ok(self)
    }

    /// The gateway `CONWAY_ENDPOINT`/`CONWAY_TOKEN` or automaton.json name, if any.
    fn remote(&self) -> Option<(String, String)> {
        env_var(&self.env, "CONWAY_ENDPOINT")
            .map(|endpoint| {
                (
                    endpoint,
                    env_var(&self.env, "CONWAY_TOKEN").unwrap_or_default(),
                )
            })
            .or_else(|| self.configured.clone())
    }

    /// Whether it reaches a Conway gateway rather than the local platform.
    pub fn is_remote(&self) -> bool {
        self.remote().is_some()
    }

    /// Connects: to `CONWAY_ENDPOINT`, or to the local daemon (started when none answers).
    pub async fn connect(&self) -> Result<Connected> {
        if let Some(connected) = self.connect_running().await? {
            return Ok(connected);
        }
        let dir = data_dir(&self.env, &self.user_home);
        let mut daemon = self.start_daemon(&dir)?;
        let deadline = tokio::time::Instant::now() + START_WAIT;
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Some(mut connected) = self.local_if_running(&dir).await {
                connected.started = true;
                return Ok(connected);
            }
            if let Ok(Some(status)) = daemon.try_wait() {
                let log = dir.join("serve.log");
                let last = std::fs::read_to_string(&log)
                    .ok()
                    .and_then(|text| text.lines().last().map(str::to_owned))
                    .unwrap_or_default();
                return Err(Error::InvalidInput {
                    message: format!("the local platform stopped as it started ({status}): {last}"),
                    hint: format!(
                        "read {}; if its address is taken by another program, stop that program or remove {} so a free port is picked",
                        log.display(),
                        dir.join("endpoint.json").display()
                    ),
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::InvalidInput {
                    message: format!(
                        "the local platform did not come up within {} s",
                        START_WAIT.as_secs()
                    ),
                    hint: format!(
                        "read {} and start it by hand with `automaton platform serve`",
                        dir.join("serve.log").display()
                    ),
                });
            }
        }
    }

    /// The platform there is without starting one: the named gateway, else the local daemon
    /// when one answers (`None` when none does).
    pub async fn connect_running(&self) -> Result<Option<Connected>> {
        if let Some((endpoint, token)) = self.remote() {
            let platform = HttpPlatform::new(&endpoint, &token).map_err(platform_error)?;
            return Ok(Some(Connected {
                platform: Arc::new(platform),
                endpoint,
                started: false,
                daemon_pid: None,
            }));
        }
        Ok(self
            .local_if_running(&data_dir(&self.env, &self.user_home))
            .await)
    }

    /// The local platform's data directory this connector uses.
    pub fn local_data_dir(&self) -> PathBuf {
        data_dir(&self.env, &self.user_home)
    }

    /// The local daemon, if its endpoint file names one that answers.
    async fn local_if_running(&self, dir: &Path) -> Option<Connected> {
        let endpoint = read_endpoint(&dir.join("endpoint.json"))?;
        // The admin token goes only to the daemon itself, never to whatever took its port.
        if !crate::platform_discovery::is_platform_daemon(endpoint.pid, &endpoint.url) {
            return None;
        }
        let platform = HttpPlatform::with_retry(
            &endpoint.url,
            &endpoint.token,
            automaton_tools::resilience::RetryPolicy {
                max_attempts: 1,
                ..Default::default()
            },
        )
        .ok()?;
        platform.list_projects().await.ok()?;
        let platform = HttpPlatform::new(&endpoint.url, &endpoint.token).ok()?;
        Some(Connected {
            platform: Arc::new(platform),
            endpoint: endpoint.url,
            started: false,
            daemon_pid: Some(endpoint.pid),
        })
    }

    /// Starts `automaton platform serve` detached (its own session, output to serve.log).
    fn start_daemon(&self, dir: &Path) -> Result<std::process::Child> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(Error::io("creating", dir))?;
        let log_path = dir.join("serve.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(PRIVATE_FILE_MODE)
            .open(&log_path)
            .map_err(Error::io("opening", &log_path))?;
        let log_err = log.try_clone().map_err(Error::io("opening", &log_path))?;
        let listen = if read_endpoint(&dir.join("endpoint.json")).is_some() {
            // The address it had, so URLs handed out before stay valid.
            read_endpoint(&dir.join("endpoint.json"))
                .map(|e| e.url.trim_start_matches("http://").to_owned())
                .unwrap_or_else(|| DEFAULT_LISTEN.to_owned())
        } else {
            "127.0.0.1:0".to_owned()
        };
        let mut command = std::process::Command::new(&self.exe);
        command
            .args([
                "platform",
                "serve",
                "--json",
                "--listen",
                &listen,
                "--data-dir",
            ])
            .arg(dir)
            .env_clear()
            // The daemon (and every app it runs) gets nothing secret of the agent that started
            // it: the same scrub as the agent's own shell.
            .envs(automaton_tools::sandbox::scrub_env(
                self.env.iter().cloned(),
            ))
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .process_group(0);
        command
            .spawn()
            .map_err(Error::io("starting the local platform", &self.exe))
    }
}

/// A platform connection kept while its local daemon lives: the first use connects, later
/// uses reuse it, and a daemon that died is looked for (or started) again on the next use.
pub struct KeptPlatform {
    connector: Connector,
    /// Whether a use that finds no daemon starts one (the tools) or fails (a balance read).
    start: bool,
    kept: tokio::sync::Mutex<Option<KeptConnection>>,
}

/// A platform connection and the pid of the local daemon behind it (none for a gateway).
type KeptConnection = (Arc<dyn Platform>, Option<u32>);

impl KeptPlatform {
    /// Connections through `connector`; `start`: start the local daemon when none answers.
    pub fn new(connector: Connector, start: bool) -> Self {
        Self {
            connector,
            start,
            kept: tokio::sync::Mutex::new(None),
        }
    }

    /// The connector.
    pub fn connector(&self) -> &Connector {
        &self.connector
    }

    /// The platform; `None` when no daemon answers and this does not start one.
    pub async fn get(&self) -> Result<Option<Arc<dyn Platform>>> {
        let mut kept = self.kept.lock().await;
        if let Some((platform, daemon)) = kept.as_ref()
            && daemon.is_none_or(crate::platform_discovery::process_alive)
        {
            return Ok(Some(Arc::clone(platform)));
        }
        let fresh = if self.start {
            Some(self.connector.connect().await?)
        } else {
            self.connector.connect_running().await?
        };
        let Some(fresh) = fresh else {
            return Ok(None);
        };
        if fresh.started {
            tracing::info!(endpoint = %fresh.endpoint, "started the local platform");
        }
        *kept = Some((Arc::clone(&fresh.platform), fresh.daemon_pid));
        Ok(Some(fresh.platform))
    }
}

/// The tools' access: connects on first use and keeps the connection while its local daemon
/// lives; a daemon that died is started again on the next call.
pub struct ToolAccess {
    platform: KeptPlatform,
    workspace: PathBuf,
}

impl ToolAccess {
    /// Access through `connector`, resolving sources against `workspace`.
    pub fn new(connector: Connector, workspace: PathBuf) -> Self {
        Self {
            platform: KeptPlatform::new(connector, true),
            workspace,
        }
    }
}

impl PlatformAccess for ToolAccess {
    fn platform(
        &self,
    ) -> BoxFuture<'_, std::result::Result<Arc<dyn Platform>, automaton_platform::Error>> {
        Box::pin(async move {
            let no_platform = |message: String, hint: String| {
                automaton_platform::Error::new(
                    automaton_platform::ErrorCode::InternalError,
                    format!("no platform to talk to: {message}"),
                )
                .with_hint(hint)
            };
            match self.platform.get().await {
                Ok(Some(platform)) => Ok(platform),
                // A connection that starts the daemon finds one or fails.
                Ok(None) => Err(no_platform(
                    "the local platform did not come up".to_owned(),
                    "start it with `automaton platform serve`".to_owned(),
                )),
                Err(err) => Err(no_platform(err.to_string(), err.hint())),
            }
        })
    }

    fn workspace(&self) -> PathBuf {
        self.workspace.clone()
    }
}

/// The project a command means: `--project`, else the one `platform init` recorded in
/// `.conway/project.json` of the working directory.
pub fn project_from(flag: Option<String>) -> Result<String> {
    if let Some(project) = flag {
        return Ok(project);
    }
    let path = Path::new(".conway").join("project.json");
    std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|value| value["project"].as_str().map(str::to_owned))
        .ok_or_else(|| Error::InvalidInput {
            message: "no project named".to_owned(),
            hint:
                "pass --project NAME, or run `automaton platform init NAME` in this directory first"
                    .to_owned(),
        })
}

/// Records the current project for later commands in this directory.
pub fn remember_project(project: &str) -> Result<()> {
    let dir = Path::new(".conway");
    std::fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
    let path = dir.join("project.json");
    std::fs::write(&path, serde_json::json!({ "project": project }).to_string())
        .map_err(Error::io("writing", &path))
}

/// Prints a platform answer.
pub fn print<T: Serialize>(value: &T, mode: OutputMode, human: impl FnOnce(&T) -> String) {
    match mode {
        OutputMode::Json => print_json(value),
        OutputMode::Human => println!("{}", human(value)),
    }
}

/// Runs one `automaton platform …` command.
pub async fn run_cli(
    command: crate::cli::PlatformCommand,
    connector: &Connector,
    mode: OutputMode,
    cancel: CancellationToken,
) -> Result<std::process::ExitCode> {
    use crate::cli::{
        EnvCommand, PlatformCommand, ProjectsCommand, ServicesCommand, TokensCommand,
    };
    use std::process::ExitCode;
    if let PlatformCommand::Confine { rw, command } = command {
        return confine_and_exec(&rw, &command);
    }
    if let PlatformCommand::Serve {
        listen,
        proxy_listen,
        data_dir: dir,
        inference_config,
    } = command
    {
        let dir = dir.unwrap_or_else(|| data_dir(&connector.env, &connector.user_home));
        serve(
            &dir,
            &listen,
            proxy_listen.as_deref(),
            inference_config.as_deref(),
            &connector.env,
            cancel,
            mode,
        )
        .await?;
        return Ok(ExitCode::SUCCESS);
    }
    // Bad input is refused before a daemon is started for it.
    if let PlatformCommand::Credits {
        command: Some(crate::cli::CreditsCommand::Grant { amount, .. }),
    } = &command
    {
        automaton_platform::credits::parse_usd(amount).map_err(platform_error)?;
    }
    let connected = connector.connect().await?;
    if connected.started {
        eprintln!(
            "started the local platform at {} (it keeps running; `automaton platform serve` runs it in the foreground)",
            connected.endpoint
        );
    }
    let platform = connected.platform;
    let fail = platform_error;
    match command {
        PlatformCommand::Serve { .. } | PlatformCommand::Confine { .. } => {}
        PlatformCommand::Init { name } => {
            let created = platform.create_project(&name, None).await.map_err(fail)?;
            remember_project(&name)?;
            print(&created, mode, |c| {
                if c.created {
                    format!("created project {name}; it is this directory's project now")
                } else {
                    format!("project {name} already exists; it is this directory's project now")
                }
            });
        }
        PlatformCommand::Deploy {
            project,
            service,
            dir,
            no_wait,
        } => {
            let project = project_from(project)?;
            return deploy(
                platform.as_ref(),
                &project,
                &service,
                &dir,
                no_wait,
                mode,
                &cancel,
            )
            .await;
        }
        PlatformCommand::Status { project } => {
            let state = platform
                .get_project(&project_from(project)?)
                .await
                .map_err(fail)?;
            print(&state, mode, |s| {
                let mut out = format!("project {}\n", s.name);
                for service in &s.services {
                    out.push_str(&format!(
                        "  {:<16} {:<10} replicas {} release {}\n",
                        service.name,
                        service.status.as_str(),
                        service.replicas,
                        service.current_release.as_deref().unwrap_or("-")
                    ));
                }
                out.push_str(&format!("  env: {}\n", s.env_names.join(", ")));
                for event in &s.recent_events {
                    out.push_str(&format!(
                        "  {} {}: {}\n",
                        event.at_ms, event.kind, event.message
                    ));
                }
                out.trim_end().to_owned()
            });
        }
        PlatformCommand::Services(ServicesCommand::List { project }) => {
            let services = platform
                .list_services(&project_from(project)?)
                .await
                .map_err(fail)?;
            print(&services, mode, |list| {
                list.iter()
                    .map(|s| {
                        format!(
                            "{:<16} {:<10} replicas {}",
                            s.name,
                            s.status.as_str(),
                            s.replicas
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        PlatformCommand::Services(ServicesCommand::Scale {
            service,
            replicas,
            project,
        }) => {
            let detail = platform
                .scale(&project_from(project)?, &service, replicas, None)
                .await
                .map_err(fail)?;
            print(&detail, mode, |d| {
                format!(
                    "{} runs {} replicas: {}",
                    d.name,
                    d.direct_urls.len(),
                    d.direct_urls.join(" ")
                )
            });
        }
        PlatformCommand::Rollback {
            service,
            to,
            project,
        } => {
            let detail = platform
                .rollback(&project_from(project)?, &service, to.as_deref(), None)
                .await
                .map_err(fail)?;
            print(&detail, mode, |d| {
                format!(
                    "{} runs {} again at {}",
                    d.name,
                    d.current_release.as_deref().unwrap_or("-"),
                    d.url.as_deref().unwrap_or("-")
                )
            });
        }
        PlatformCommand::Restart { service, project } => {
            let detail = platform
                .restart(&project_from(project)?, &service, None)
                .await
                .map_err(fail)?;
            print(&detail, mode, |d| format!("{} restarted", d.name));
        }
        PlatformCommand::Env(EnvCommand::Set { vars, project }) => {
            let pairs = vars
                .iter()
                .map(|pair| {
                    pair.split_once('=')
                        .map(|(name, value)| (name.to_owned(), value.to_owned()))
                        .ok_or_else(|| Error::InvalidInput {
                            message: format!("`{pair}` is not NAME=value"),
                            hint: "write each variable as NAME=value, e.g. API_URL=https://example.com".to_owned(),
                        })
                })
                .collect::<Result<Vec<_>>>()?;
            let change = platform
                .set_env(&project_from(project)?, &pairs, None)
                .await
                .map_err(fail)?;
            print(&change, mode, |c| {
                format!(
                    "set {}; restarted {}",
                    c.set.join(", "),
                    c.restarted_services.join(", ")
                )
            });
        }
        PlatformCommand::Env(EnvCommand::List { project }) => {
            let names = platform
                .list_env(&project_from(project)?)
                .await
                .map_err(fail)?;
            print(&serde_json::json!({ "names": names }), mode, |_| {
                names.join("\n")
            });
        }
        PlatformCommand::Logs {
            service,
            follow,
            lines,
            project,
        } => {
            let project = project_from(project)?;
            let logs = platform
                .logs(&project, &service, lines)
                .await
                .map_err(fail)?;
            if !follow {
                print(&logs, mode, |l| l.runtime.join("\n"));
                return Ok(ExitCode::SUCCESS);
            }
            let mut seen = logs.runtime.clone();
            for line in &seen {
                println!("{line}");
            }
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                let now = platform
                    .logs(&project, &service, lines)
                    .await
                    .map_err(fail)?
                    .runtime;
                // New lines are those after the longest overlap of what was seen with what is there.
                let overlap = (0..=seen.len().min(now.len()))
                    .rev()
                    .find(|&n| seen[seen.len() - n..] == now[..n])
                    .unwrap_or(0);
                for line in &now[overlap..] {
                    println!("{line}");
                }
                seen = now;
            }
        }
        PlatformCommand::Tokens(TokensCommand::Issue {
            caps,
            projects,
            name,
        }) => {
            let capabilities = caps
                .iter()
                .map(|cap| {
                    serde_json::from_value(serde_json::Value::String(cap.trim().to_owned()))
                        .map_err(|_| Error::InvalidInput {
                            message: format!("`{cap}` is not a capability"),
                            hint: format!(
                                "use some of: {}",
                                automaton_platform::model::Capability::names()
                            ),
                        })
                })
                .collect::<Result<Vec<_>>>()?;
            let request = automaton_platform::model::TokenRequest {
                name,
                capabilities,
                projects,
            };
            let issued = platform.issue_token(&request).await.map_err(fail)?;
            print(&issued, mode, |t| {
                format!(
                    "issued {} — its secret, shown only now:\n{}",
                    t.token.id, t.secret
                )
            });
        }
        PlatformCommand::Tokens(TokensCommand::List) => {
            let tokens = platform.list_tokens().await.map_err(fail)?;
            print(&tokens, mode, |list| {
                list.iter()
                    .map(|t| {
                        let caps: Vec<&str> = t.capabilities.iter().map(|c| c.as_str()).collect();
                        format!(
                            "{} {:<16} {} on {}{}",
                            t.id,
                            t.name,
                            caps.join(","),
                            t.projects
                                .as_ref()
                                .map_or_else(|| "every project".to_owned(), |p| p.join(",")),
                            if t.revoked_at_ms.is_some() {
                                " (revoked)"
                            } else {
                                ""
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        PlatformCommand::Tokens(TokensCommand::Revoke { id }) => {
            let revoked = platform.revoke_token(&id).await.map_err(fail)?;
            print(&revoked, mode, |r| {
                format!("revoked: {}", r.revoked.join(", "))
            });
        }
        PlatformCommand::Projects(ProjectsCommand::List) => {
            let projects = platform.list_projects().await.map_err(fail)?;
            print(&projects, mode, |list| {
                list.iter()
                    .map(|p| format!("{:<24} {} services", p.name, p.services))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        PlatformCommand::Repos(command) => repos::run(platform.as_ref(), command, mode).await?,
        PlatformCommand::Delete { name, confirm } => {
            let deleted = platform
                .delete_project(&name, confirm, None)
                .await
                .map_err(fail)?;
            print(&deleted, mode, |d| {
                if d.deleted {
                    format!(
                        "deleted {} ({} services stopped)",
                        d.name,
                        d.removed_services.len()
                    )
                } else {
                    format!("{} did not exist", d.name)
                }
            });
        }
        PlatformCommand::Add {
            kind,
            name,
            project,
        } => {
            let kind = automaton_platform::model::DatastoreKind::parse(&kind).map_err(fail)?;
            let added = platform
                .add_datastore(&project_from(project)?, kind, name.as_deref(), None)
                .await
                .map_err(fail)?;
            print(&added, mode, |a| {
                format!(
                    "{} {} is {}: {} (env {}); restarted {}",
                    if a.created { "added" } else { "already had" },
                    a.datastore.name,
                    serde_json::to_value(a.datastore.status)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    a.datastore.url,
                    a.datastore.env_names.join(", "),
                    if a.restarted_services.is_empty() {
                        "nothing".to_owned()
                    } else {
                        a.restarted_services.join(", ")
                    }
                )
            });
        }
        PlatformCommand::Db(command) => return db(platform.as_ref(), command, mode).await,
        PlatformCommand::Credits { command } => {
            credits::run(platform.as_ref(), command, mode).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `platform db …`.
async fn db(
    platform: &dyn Platform,
    command: crate::cli::DbCommand,
    mode: OutputMode,
) -> Result<std::process::ExitCode> {
    use crate::cli::DbCommand;
    let fail = platform_error;
    match command {
        DbCommand::Info { name, project } => {
            let datastore = platform
                .get_datastore(&project_from(project)?, &name)
                .await
                .map_err(fail)?;
            print(&datastore, mode, |d| {
                format!(
                    "{} ({}) {}\n  {}\n  env: {}",
                    d.name,
                    d.kind.as_str(),
                    serde_json::to_value(d.status)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    d.url,
                    d.env_names.join(", ")
                )
            });
        }
        DbCommand::List { project } => {
            let datastores = platform
                .list_datastores(&project_from(project)?)
                .await
                .map_err(fail)?;
            print(&datastores, mode, |list| {
                list.iter()
                    .map(|d| format!("{:<16} {:<9} {}", d.name, d.kind.as_str(), d.url))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        DbCommand::Backups { name, project } => {
            let backups = platform
                .list_backups(&project_from(project)?, &name)
                .await
                .map_err(fail)?;
            print(&backups, mode, |list| {
                list.iter()
                    .map(|b| format!("{} {:>10} bytes  taken {}", b.key, b.bytes, b.created_at_ms))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        DbCommand::Backup { name, project } => {
            let backup = platform
                .create_backup(&project_from(project)?, &name, None)
                .await
                .map_err(fail)?;
            print(&backup, mode, |b| {
                format!("backed up {} as {} ({} bytes)", b.datastore, b.key, b.bytes)
            });
        }
        DbCommand::Restore {
            name,
            backup,
            project,
        } => {
            let restored = platform
                .restore_backup(&project_from(project)?, &name, &backup, None)
                .await
                .map_err(fail)?;
            print(&restored, mode, |r| {
                format!("restored {} from {} ({})", r.datastore, r.key, r.method)
            });
        }
        DbCommand::Delete {
            name,
            confirm,
            project,
        } => {
            let deleted = platform
                .delete_datastore(&project_from(project)?, &name, confirm, None)
                .await
                .map_err(fail)?;
            print(&deleted, mode, |d| {
                if d.deleted {
                    format!(
                        "deleted {}; removed env {}; restarted {}",
                        d.name,
                        d.removed_env.join(", "),
                        d.restarted_services.join(", ")
                    )
                } else {
                    format!("{} did not exist", d.name)
                }
            });
        }
        DbCommand::Tables { name, project } => {
            let tables = platform
                .list_tables(&project_from(project)?, &name)
                .await
                .map_err(fail)?;
            print(&tables, mode, |t| {
                t.tables
                    .iter()
                    .map(|table| {
                        let columns: Vec<String> = table
                            .columns
                            .iter()
                            .map(|c| format!("{} {}", c.name, c.data_type))
                            .collect();
                        format!(
                            "{:<24} {:<6} {:>6} rows  {}",
                            table.name,
                            table.kind,
                            table.rows.map_or_else(|| "-".to_owned(), |n| n.to_string()),
                            columns.join(", ")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        DbCommand::Query {
            name,
            query,
            project,
        } => {
            let result = platform
                .query_datastore(&project_from(project)?, &name, &query, None)
                .await
                .map_err(fail)?;
            print(&result, mode, |r| {
                let mut out = r.columns.join("\t");
                for row in &r.rows {
                    let cells: Vec<String> = row
                        .iter()
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                        .collect();
                    out.push('\n');
                    out.push_str(&cells.join("\t"));
                }
                out.push_str(&format!(
                    "\n({} rows{})",
                    r.row_count,
                    if r.truncated {
                        ", truncated at 500"
                    } else {
                        ""
                    }
                ));
                out
            });
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// `platform deploy`: packs, uploads, follows the operation (phases and build lines on a
/// terminal), and prints the result with its `url`, or the error with its log tail.
async fn deploy(
    platform: &dyn Platform,
    project: &str,
    service: &str,
    dir: &Path,
    no_wait: bool,
    mode: OutputMode,
    cancel: &CancellationToken,
) -> Result<std::process::ExitCode> {
    let scratch = tempfile::tempdir().map_err(Error::io(
        "creating a scratch directory in",
        std::env::temp_dir(),
    ))?;
    let archive = scratch.path().join("source.tar.gz");
    let packed = automaton_platform::source::pack(
        dir,
        &archive,
        automaton_platform::source::MAX_SOURCE_BYTES,
    )
    .map_err(platform_error)?;
    if mode == OutputMode::Human {
        println!(
            "packed {} files ({} KB) from {}",
            packed.files,
            packed.bytes / 1024,
            dir.display()
        );
    }
    let accepted = platform
        .deploy(project, service, &archive, None)
        .await
        .map_err(platform_error)?;
    if no_wait {
        print(&accepted, mode, |a| {
            format!("deploy accepted: operation {}", a.operation_id)
        });
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let mut after = 0;
    let operation = loop {
        if mode == OutputMode::Human {
            for event in platform
                .operation_events(&accepted.operation_id, after)
                .await
                .map_err(platform_error)?
            {
                after = event.seq;
                match event.kind.as_str() {
                    "phase" => println!("-- {}", event.data["phase"].as_str().unwrap_or("")),
                    "log" => println!("   {}", event.data["line"].as_str().unwrap_or("")),
                    _ => {}
                }
            }
        }
        let operation = platform
            .get_operation(&accepted.operation_id)
            .await
            .map_err(platform_error)?;
        if operation.status.is_done() {
            break operation;
        }
        tokio::select! {
            () = cancel.cancelled() => {
                return Err(Error::InvalidInput {
                    message: format!("stopped following; the deploy goes on (operation {})", accepted.operation_id),
                    hint: "see it with `automaton platform status`".to_owned(),
                });
            }
            () = tokio::time::sleep(Duration::from_millis(300)) => {}
        }
    };
    if let Some(error) = operation.error {
        return Err(platform_error(error));
    }
    let result = operation.result.unwrap_or_default();
    let answer = serde_json::json!({
        "status": "active",
        "url": result["url"],
        "release": result["release"],
        "provider": result["provider"],
        "duration_ms": result["duration_ms"],
        "project": project,
        "service": service,
        "operation_id": operation.id,
    });
    print(&answer, mode, |a| {
        format!("live at {}", a["url"].as_str().unwrap_or(""))
    });
    Ok(std::process::ExitCode::SUCCESS)
}

/// `platform confine`: confines this process (see `automaton_platform::local::confine`) and
/// becomes `command`. Never runs the command unconfined.
fn confine_and_exec(writable: &[PathBuf], command: &[OsString]) -> Result<std::process::ExitCode> {
    use automaton_platform::local::confine;
    let Some((program, args)) = command.split_first() else {
        return Err(Error::InvalidInput {
            message: "nothing to run".to_owned(),
            hint: "give the command after `--`, e.g. `automaton platform confine --rw DIR -- sh -c CMD`".to_owned(),
        });
    };
    let readable = std::env::var("PATH")
        .map(|path| confine::path_dirs(&path))
        .unwrap_or_default();
    // `/tmp` is closed to a confined process: its temporary files go in its own directory.
    let private_tmp = writable.first().map(|dir| dir.join(confine::PRIVATE_TMP));
    if let Some(tmp) = &private_tmp {
        std::fs::create_dir_all(tmp).map_err(Error::io("creating", tmp))?;
    }
    confine::restrict(writable, &readable).map_err(|err| Error::InvalidInput {
        message: err.to_string(),
        hint: "run the platform on a kernel with Landlock (Linux 5.13+, `lsm=landlock` at boot)"
            .to_owned(),
    })?;
    // No await since `restrict`: this is the thread it confined.
    let mut process = std::process::Command::new(program);
    process.args(args);
    if let Some(tmp) = &private_tmp {
        process.env("TMPDIR", tmp);
    }
    // The app's own env came under a prefix, so that none of it acted on this unconfined
    // process; it is the app's now.
    for (name, value) in std::env::vars_os() {
        let stripped = name
            .to_str()
            .and_then(|name| name.strip_prefix(confine::APP_ENV_PREFIX))
            .filter(|stripped| !stripped.is_empty());
        if let Some(stripped) = stripped {
            process.env_remove(&name).env(stripped, value);
        }
    }
    let failed = process.exec();
    Err(Error::io("running", Path::new(program))(failed))
}
