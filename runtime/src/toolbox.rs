//! Assembling the tool system for one home: the registry with every tool, the policy engine
//! with every gate, and the dispatcher recording into state.db. Every command that runs or
//! judges tool calls (`run`, `policy check`, `status`) builds it here, so they all see the
//! same tools and the same rules.

use crate::agent::sleep::{SleepSlot, SleepTool};
use crate::agent::switch_model::SwitchModelTool;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::state;
use automaton_heartbeat::tools::HeartbeatEditor;
use automaton_tools::clock::Clock;
use automaton_tools::dispatch::{Dispatcher, SharedDb};
use automaton_tools::policy::PolicyEngine;
use automaton_tools::policy::authority::AuthorityGate;
use automaton_tools::policy::path::{PathGate, ProtectedPaths};
use automaton_tools::policy::rate::{RateLimitGate, RateLimits};
use automaton_tools::policy::shell::CommandGate;
use automaton_tools::policy::validate::ValidationGate;
use automaton_tools::registry::Registry;
use automaton_tools::sandbox::{self, Sandbox};
use std::ffi::OsString;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The longest any single tool call may run.
pub const MAX_CALL_DURATION: Duration = Duration::from_secs(30 * 60);

/// Facts about the process, read once in `main`.
#[derive(Debug, Clone)]
pub struct ProcessFacts {
    /// The environment, before scrubbing.
    pub env: Vec<(OsString, OsString)>,
    /// The user's home directory (`$HOME`).
    pub user_home: PathBuf,
    /// This binary.
    pub exe: PathBuf,
    /// This process.
    pub pid: u32,
}

/// The assembled tool system.
pub struct Toolbox {
    /// The one dispatch path.
    pub dispatcher: Dispatcher,
    /// state.db, shared with the tools.
    pub db: SharedDb,
    /// Where the `sleep` tool leaves its request for the loop.
    pub sleep: SleepSlot,
}

impl std::fmt::Debug for Toolbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Toolbox")
            .field("dispatcher", &self.dispatcher)
            .finish()
    }
}

/// The agent's workspace under the home: the default working directory of its tools.
pub fn workspace(home: &Home) -> PathBuf {
    home.root().join("workspace")
}

impl Toolbox {
    /// The database, for a synchronous read or write on this thread.
    pub fn lock_db(&self) -> Result<std::sync::MutexGuard<'_, automaton_tools::db::StateDb>> {
        self.db.lock().map_err(|_| Error::InvalidInput {
            message: "state.db's lock was poisoned by a crashed task".to_owned(),
            hint: "run the command again".to_owned(),
        })
    }
}

/// Creates the agent's workspace (only the agent's run does; inspection commands do not).
pub fn prepare_workspace(home: &Home) -> Result<()> {
    let workdir = workspace(home);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(crate::home::DIR_MODE)
        .create(&workdir)
        .map_err(Error::io("creating", &workdir))
}

/// Builds the registry, the policy engine and the dispatcher for `home`.
pub fn build(home: &Home, facts: &ProcessFacts, clock: Arc<dyn Clock>) -> Result<Toolbox> {
    let config = crate::config::AutomatonConfig::load(&home.config()).ok();
    let models = config
        .as_ref()
        .map(|config| config.models.iter().map(|m| m.name.clone()).collect())
        .unwrap_or_default();
    let workdir = workspace(home);
    let db: SharedDb = Arc::new(Mutex::new(state::open(home)?));
    let sandbox = Arc::new(Sandbox::new(
        workdir.clone(),
        sandbox::scrub_env(facts.env.iter().cloned()),
        Arc::clone(&db),
    ));
    let mut registry = Registry::new();
    let sleep = SleepSlot::default();
    let mut connector = crate::platform_cmd::Connector::new(
        facts.env.clone(),
        facts.user_home.clone(),
        facts.exe.clone(),
    );
    if let Some(config) = &config {
        connector = connector.with_config(config, home)?;
    }
    let credits: Arc<dyn crate::heartbeat_tasks::CreditSource> = Arc::new(
        crate::platform_credits::PlatformCredits::new(connector.clone()),
    );
    let platform_access: Arc<dyn automaton_platform::tools::PlatformAccess> = Arc::new(
        crate::platform_cmd::ToolAccess::new(connector, workdir.clone()),
    );
    sandbox::register(&mut registry, sandbox)
        .and_then(|()| automaton_platform::tools::register(&mut registry, &platform_access))
        .and_then(|()| registry.register(SleepTool(sleep.clone())))
        .and_then(|()| {
            registry.register(SwitchModelTool {
                models,
                db: Arc::clone(&db),
            })
        })
        .map_err(|message| Error::InvalidInput {
            message,
            hint: "this is a bug in the automaton's tool registration".to_owned(),
        })?;
    // modify_heartbeat syncs the schedule table with the task names this runtime knows, so it
    // needs the configuration; commands that inspect a home with a broken config go without.
    if let Some(config) = config {
        let endpoints = crate::inference::endpoints(&config, home, &facts.env).unwrap_or_default();
        let host = crate::heartbeat_host::build(
            home,
            Arc::new(config),
            Arc::clone(&db),
            endpoints,
            Some(credits),
            Arc::clone(&clock),
            "stretch",
        )?;
        let editor = Arc::new(HeartbeatEditor::new(home.heartbeat(), host.scheduler));
        automaton_heartbeat::tools::register(&mut registry, editor).map_err(|message| {
            Error::InvalidInput {
                message,
                hint: "this is a bug in the automaton's tool registration".to_owned(),
            }
        })?;
    }
    // One protected set for both gates: the path gate judges tool subjects with it, the
    // command gate every path a shell command touches.
    let paths = ProtectedPaths::for_home(home.root(), &facts.user_home, &facts.exe)
        .with_private_tree(
            &crate::platform_cmd::data_dir(&facts.env, &facts.user_home),
            "the local platform's data (its admin token, state and releases) changes only through the platform tools",
        );
    let engine = PolicyEngine::new(
        vec![
            Box::new(AuthorityGate),
            Box::new(ValidationGate),
            Box::new(PathGate::new(paths.clone())),
            Box::new(CommandGate::new(paths, facts.pid)),
            Box::new(RateLimitGate::new(RateLimits::default())),
        ],
        false,
    );
    let dispatcher = Dispatcher::new(
        Arc::new(registry),
        Arc::new(engine),
        Arc::clone(&db),
        clock,
        MAX_CALL_DURATION,
    );
    Ok(Toolbox {
        dispatcher,
        db,
        sleep,
    })
}
