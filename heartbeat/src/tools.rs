//! `modify_heartbeat`: the agent's one way to change its heartbeat. It validates the change
//! exactly as a `heartbeat.yml` load does (plus the task registry), writes the file
//! atomically and syncs `heartbeat_schedules` from the same configuration, so what the tool
//! changes is what runs. The dispatcher audits every call like any other tool's.
//!
//! The file is written first: should the sync then fail, the driver sees the new text on its
//! next loop and syncs it, so file and table converge.

use std::path::PathBuf;
use std::sync::Arc;

use automaton_tools::registry::Registry;
use automaton_tools::secure_fs::write_atomic;
use automaton_tools::tool::{
    Category, Effect, RiskLevel, Subject, Tool, ToolContext, ToolError, ToolErrorCode, ToolOutput,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::config::{HeartbeatConfig, HeartbeatEntry};
use crate::error::Error;
use crate::scheduler::Scheduler;

/// `heartbeat.yml` is private to the automaton's user, like every file in the home.
const HEARTBEAT_FILE_MODE: u32 = 0o600;

/// What `modify_heartbeat` does to the named entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HeartbeatAction {
    /// Add a new entry (needs `schedule` and `task`).
    Add,
    /// Change an entry's `schedule`, `task` and/or `params`.
    Update,
    /// Delete an entry (its run history stays).
    Remove,
    /// Start running an entry again.
    Enable,
    /// Stop running an entry, keeping it in the file.
    Disable,
}

impl HeartbeatAction {
    fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Update => "update",
            Self::Remove => "remove",
            Self::Enable => "enable",
            Self::Disable => "disable",
        }
    }
}

/// Arguments of `modify_heartbeat`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModifyHeartbeatArgs {
    /// add, update, remove, enable or disable.
    pub action: HeartbeatAction,
    /// The entry's name: 1 to 64 of a-z, 0-9 and `_`.
    pub name: String,
    /// For add (required) and update: 5-field cron in UTC, e.g. `*/15 * * * *`.
    #[serde(default)]
    pub schedule: Option<String>,
    /// For add (required) and update: the heartbeat task the entry runs.
    #[serde(default)]
    pub task: Option<String>,
    /// For add and update: the task's parameters, replacing the old ones.
    #[serde(default)]
    pub params: Option<Map<String, Value>>,
}

/// What the tool needs: where `heartbeat.yml` is and the scheduler whose table it syncs.
#[derive(Debug)]
pub struct HeartbeatEditor {
    path: PathBuf,
    scheduler: Scheduler,
    /// One change at a time: each reads, edits and writes the whole file.
    lock: tokio::sync::Mutex<()>,
}

impl HeartbeatEditor {
    /// An editor of the `heartbeat.yml` at `path`, syncing `scheduler`'s table.
    pub fn new(path: PathBuf, scheduler: Scheduler) -> Self {
        Self {
            path,
            scheduler,
            lock: tokio::sync::Mutex::new(()),
        }
    }
}

/// The `modify_heartbeat` tool.
#[derive(Debug)]
pub struct ModifyHeartbeatTool(pub Arc<HeartbeatEditor>);

/// Registers `modify_heartbeat`.
pub fn register(registry: &mut Registry, editor: Arc<HeartbeatEditor>) -> Result<(), String> {
    registry.register(ModifyHeartbeatTool(editor))
}

impl Tool for ModifyHeartbeatTool {
    const NAME: &'static str = "modify_heartbeat";
    type Args = ModifyHeartbeatArgs;

    fn description(&self) -> String {
        "Change your heartbeat schedule: add, update, remove, enable or disable an entry. \
         Returns the entry and its next run."
            .to_owned()
    }

    fn category(&self) -> Category {
        Category::SelfMod
    }

    fn risk(&self) -> RiskLevel {
        RiskLevel::Caution
    }

    fn effect(&self, _: &ModifyHeartbeatArgs) -> Effect {
        Effect::Mutating
    }

    fn subjects(&self, args: &ModifyHeartbeatArgs) -> Vec<Subject> {
        args.schedule.iter().cloned().map(Subject::Cron).collect()
    }

    async fn call(
        &self,
        _ctx: &ToolContext,
        args: ModifyHeartbeatArgs,
    ) -> Result<ToolOutput, ToolError> {
        let editor = &self.0;
        let _one_at_a_time = editor.lock.lock().await;
        let mut config = HeartbeatConfig::load(&editor.path).map_err(|error| {
            ToolError::model(
                ToolErrorCode::Conflict,
                format!("heartbeat.yml does not load, so it cannot be changed: {error}"),
                format!(
                    "{}; the file is the creator's to fix, tell them what is wrong",
                    error.hint()
                ),
            )
        })?;
        let name = args.name.clone();
        let action = args.action;
        apply(&mut config, args)?;
        config.validate().map_err(refused)?;
        editor.scheduler.check_tasks(&config).map_err(refused)?;
        let yaml = config.to_yaml().map_err(refused)?;
        let path = editor.path.clone();
        tokio::task::spawn_blocking(move || {
            write_atomic(&path, yaml.as_bytes(), HEARTBEAT_FILE_MODE)
        })
        .await
        .map_err(|error| {
            ToolError::Fatal(format!("writing heartbeat.yml did not finish: {error}"))
        })?
        .map_err(|source| {
            let error = Error::Io {
                path: editor.path.clone(),
                source,
            };
            ToolError::model(
                ToolErrorCode::ExecutionFailed,
                format!("{error}; nothing was changed"),
                error.hint(),
            )
        })?;
        let sync = editor.scheduler.sync(&config).await.map_err(|error| {
            ToolError::Fatal(format!(
                "heartbeat.yml was written but the schedule table was not synced ({error}); \
                 the heartbeat will sync it on its next loop"
            ))
        })?;
        let view = editor
            .scheduler
            .list()
            .await
            .map_err(|error| ToolError::Fatal(format!("reading the schedule table: {error}")))?
            .into_iter()
            .find(|view| view.name == name);
        Ok(ToolOutput::new(json!({
            "action": action.as_str(),
            "name": name,
            "entry": view.as_ref().map(|view| json!({
                "schedule": view.schedule,
                "task": view.task,
                "enabled": view.enabled,
                "params": view.params,
                "next_run_at": view.next_run_at,
            })),
            "changed": sync.changed(),
        })))
    }
}

/// Applies one action to the configuration in memory.
fn apply(config: &mut HeartbeatConfig, args: ModifyHeartbeatArgs) -> Result<(), ToolError> {
    let ModifyHeartbeatArgs {
        action,
        name,
        schedule,
        task,
        params,
    } = args;
    let position = config.entries.iter().position(|entry| entry.name == name);
    let takes_fields = matches!(action, HeartbeatAction::Add | HeartbeatAction::Update);
    if !takes_fields && (schedule.is_some() || task.is_some() || params.is_some()) {
        return Err(ToolError::model(
            ToolErrorCode::InvalidArguments,
            format!(
                "`{}` takes only `name`; `schedule`, `task` and `params` belong to add and update",
                action.as_str()
            ),
            "call modify_heartbeat again with only action and name, or use action update",
        ));
    }
    let missing = |known: &HeartbeatConfig| {
        let names: Vec<&str> = known.entries.iter().map(|e| e.name.as_str()).collect();
        ToolError::model(
            ToolErrorCode::NotFound,
            format!("no heartbeat entry is named {name:?}"),
            format!(
                "use one of: {}; or action add to create it",
                names.join(", ")
            ),
        )
        .with_details(json!({ "entries": names }))
    };
    match action {
        HeartbeatAction::Add => {
            if position.is_some() {
                return Err(ToolError::model(
                    ToolErrorCode::Conflict,
                    format!("a heartbeat entry named {name:?} already exists"),
                    "use action update to change it, or add under another name",
                ));
            }
            let (Some(schedule), Some(task)) = (schedule, task) else {
                return Err(ToolError::model(
                    ToolErrorCode::InvalidArguments,
                    "add needs both `schedule` and `task`",
                    "call again with schedule (e.g. `*/15 * * * *`) and task",
                ));
            };
            config.entries.push(HeartbeatEntry {
                name,
                schedule,
                task,
                enabled: true,
                params: params.unwrap_or_default(),
            });
        }
        HeartbeatAction::Update => {
            let Some(index) = position else {
                return Err(missing(config));
            };
            if schedule.is_none() && task.is_none() && params.is_none() {
                return Err(ToolError::model(
                    ToolErrorCode::InvalidArguments,
                    "update needs at least one of `schedule`, `task` and `params`",
                    "call again with the fields to change",
                ));
            }
            let entry = &mut config.entries[index];
            if let Some(schedule) = schedule {
                entry.schedule = schedule;
            }
            if let Some(task) = task {
                entry.task = task;
            }
            if let Some(params) = params {
                entry.params = params;
            }
        }
        HeartbeatAction::Remove => {
            let Some(index) = position else {
                return Err(missing(config));
            };
            config.entries.remove(index);
        }
        HeartbeatAction::Enable | HeartbeatAction::Disable => {
            let Some(index) = position else {
                return Err(missing(config));
            };
            config.entries[index].enabled = action == HeartbeatAction::Enable;
        }
    }
    Ok(())
}

/// A change the heartbeat's rules refuse: the message names the entry, the hint the fix.
fn refused(error: Error) -> ToolError {
    let refusal = ToolError::model(
        ToolErrorCode::InvalidArguments,
        format!("{error}; nothing was changed"),
        error.hint(),
    );
    if let Error::UnknownTask { known, .. } = &error {
        refusal.with_details(json!({ "known_tasks": known }))
    } else {
        refusal
    }
}
