//! `modify_heartbeat` through the tool contract (JSON arguments, as the model sends them):
//! what it changes is what the scheduler runs, and a bad change is refused with the entry
//! named, leaving the file and the table as they were.

use std::sync::Arc;

use automaton_heartbeat::tools::{HeartbeatEditor, register};
use automaton_heartbeat::{HeartbeatConfig, RunStatus};
use automaton_tools::registry::Registry;
use automaton_tools::survival::SurvivalTier;
use automaton_tools::tool::{DynTool, Provenance, ToolContext, ToolError, ToolErrorCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::support::{Harness, MINUTE, ScriptedTask, entries_yaml, t0};

struct Fixture {
    h: Harness,
    scheduler: automaton_heartbeat::Scheduler,
    tool: Arc<dyn DynTool>,
    ping: Arc<ScriptedTask>,
    report: Arc<ScriptedTask>,
}

impl Fixture {
    async fn new() -> Self {
        let h = Harness::new();
        let ping = ScriptedTask::new("heartbeat_ping").shared();
        let report = ScriptedTask::new("report_metrics").shared();
        std::fs::write(
            h.heartbeat_yml(),
            entries_yaml(&[("ping", "*/15 * * * *", "heartbeat_ping")], 60_000, 4),
        )
        .unwrap();
        let scheduler = h.scheduler("a", &[Arc::clone(&ping), Arc::clone(&report)]);
        scheduler
            .sync(&HeartbeatConfig::load(&h.heartbeat_yml()).unwrap())
            .await
            .unwrap();
        let mut registry = Registry::new();
        register(
            &mut registry,
            Arc::new(HeartbeatEditor::new(h.heartbeat_yml(), scheduler.clone())),
        )
        .unwrap();
        let tool = registry.lookup("modify_heartbeat").unwrap();
        Self {
            h,
            scheduler,
            tool,
            ping,
            report,
        }
    }

    async fn call(&self, args: Value) -> Result<Value, ToolError> {
        self.tool.assess(&args)?;
        let ctx = ToolContext {
            call_id: "call-1".to_owned(),
            turn_id: Some(1),
            provenance: Provenance::SelfDirected,
            cancel: CancellationToken::new(),
            deadline: tokio::time::Instant::now() + std::time::Duration::from_secs(30),
            clock: self.h.clock(),
        };
        self.tool
            .call_json(&ctx, args)
            .await
            .map(|output| output.value)
    }

    fn file(&self) -> String {
        std::fs::read_to_string(self.h.heartbeat_yml()).unwrap()
    }
}

fn model_error(error: ToolError) -> automaton_tools::tool::ModelError {
    match error {
        ToolError::RespondToModel(error) => *error,
        other => panic!("expected an error for the model, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn add_writes_the_file_and_the_table_and_the_new_entry_runs() {
    let f = Fixture::new().await;
    let out = f
        .call(json!({
            "action": "add",
            "name": "metrics",
            "schedule": "*/5 * * * *",
            "task": "report_metrics",
            "params": {"window": "1h"},
        }))
        .await
        .unwrap();
    assert_eq!(out["entry"]["next_run_at"], json!(t0() + 5 * MINUTE));
    assert_eq!(out["changed"], json!(true));
    let on_disk = HeartbeatConfig::parse(&f.file()).unwrap();
    assert_eq!(on_disk.entries[1].name, "metrics");
    assert_eq!(on_disk.entries[1].params["window"], json!("1h"));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(f.h.heartbeat_yml())
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    f.h.clock.set(t0() + 5 * MINUTE);
    let report = f.scheduler.tick(SurvivalTier::Normal).await.unwrap();
    assert_eq!(report.runs.len(), 1);
    assert_eq!(report.runs[0].schedule, "metrics");
    assert_eq!(f.report.run_count(), 1);
    let params = f.report.contexts.lock().unwrap()[0].params.clone();
    assert_eq!(Value::Object(params), json!({"window": "1h"}));
}

#[tokio::test(start_paused = true)]
async fn disable_stops_a_schedule_and_enable_resumes_it() {
    let f = Fixture::new().await;
    f.call(json!({"action": "disable", "name": "ping"}))
        .await
        .unwrap();
    assert!(!HeartbeatConfig::parse(&f.file()).unwrap().entries[0].enabled);
    f.h.clock.set(t0() + 15 * MINUTE);
    assert!(
        f.scheduler
            .tick(SurvivalTier::Normal)
            .await
            .unwrap()
            .runs
            .is_empty()
    );
    assert_eq!(f.ping.run_count(), 0);

    let out = f
        .call(json!({"action": "enable", "name": "ping"}))
        .await
        .unwrap();
    assert_eq!(out["entry"]["next_run_at"], json!(t0() + 30 * MINUTE));
    f.h.clock.set(t0() + 30 * MINUTE);
    let report = f.scheduler.tick(SurvivalTier::Normal).await.unwrap();
    assert_eq!(report.runs[0].status, RunStatus::Ok);
    assert_eq!(f.ping.run_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn update_and_remove_change_what_runs() {
    let f = Fixture::new().await;
    let out = f
        .call(json!({"action": "update", "name": "ping", "schedule": "*/2 * * * *"}))
        .await
        .unwrap();
    assert_eq!(out["entry"]["next_run_at"], json!(t0() + 2 * MINUTE));
    assert_eq!(out["entry"]["task"], json!("heartbeat_ping"));
    assert_eq!(
        HeartbeatConfig::parse(&f.file()).unwrap().entries[0].schedule,
        "*/2 * * * *"
    );

    let out = f
        .call(json!({"action": "remove", "name": "ping"}))
        .await
        .unwrap();
    assert_eq!(out["entry"], Value::Null);
    assert!(
        HeartbeatConfig::parse(&f.file())
            .unwrap()
            .entries
            .is_empty()
    );
    f.h.clock.set(t0() + 2 * MINUTE);
    assert!(
        f.scheduler
            .tick(SurvivalTier::Normal)
            .await
            .unwrap()
            .runs
            .is_empty()
    );
    assert!(f.scheduler.list().await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_bad_schedule_is_refused_naming_the_entry_and_nothing_changes() {
    let f = Fixture::new().await;
    let before_file = f.file();
    let before_table = f.scheduler.list().await.unwrap();
    let error = model_error(
        f.call(json!({
            "action": "add",
            "name": "nightly",
            "schedule": "0 25 * * *",
            "task": "report_metrics",
        }))
        .await
        .unwrap_err(),
    );
    assert_eq!(error.code, ToolErrorCode::InvalidArguments);
    assert!(error.message.contains("\"nightly\""), "{}", error.message);
    assert!(error.message.contains("0 25 * * *"), "{}", error.message);
    assert!(
        error.message.contains("nothing was changed"),
        "{}",
        error.message
    );
    assert!(error.hint.contains("*/15 * * * *"), "{}", error.hint);
    assert_eq!(f.file(), before_file);
    assert_eq!(f.scheduler.list().await.unwrap(), before_table);

    // The same for an update.
    let error = model_error(
        f.call(json!({"action": "update", "name": "ping", "schedule": "every minute"}))
            .await
            .unwrap_err(),
    );
    assert!(error.message.contains("\"ping\""), "{}", error.message);
    assert_eq!(f.file(), before_file);
}

#[tokio::test(start_paused = true)]
async fn an_unknown_task_is_refused_listing_the_known_ones() {
    let f = Fixture::new().await;
    let before_file = f.file();
    let error = model_error(
        f.call(json!({
            "action": "add",
            "name": "soul",
            "schedule": "0 * * * *",
            "task": "soul_reflection",
        }))
        .await
        .unwrap_err(),
    );
    assert_eq!(error.code, ToolErrorCode::InvalidArguments);
    assert!(error.message.contains("\"soul\"") && error.message.contains("soul_reflection"));
    assert!(
        error.hint.contains("heartbeat_ping, report_metrics"),
        "{}",
        error.hint
    );
    assert_eq!(
        error.details,
        Some(json!({"known_tasks": ["heartbeat_ping", "report_metrics"]}))
    );
    assert_eq!(f.file(), before_file);
}

#[tokio::test(start_paused = true)]
async fn argument_mistakes_get_errors_the_model_can_act_on() {
    let f = Fixture::new().await;
    let cases = [
        (
            json!({"action": "add", "name": "ping", "schedule": "* * * * *", "task": "heartbeat_ping"}),
            ToolErrorCode::Conflict,
            "update",
        ),
        (
            json!({"action": "add", "name": "x", "task": "heartbeat_ping"}),
            ToolErrorCode::InvalidArguments,
            "schedule",
        ),
        (
            json!({"action": "remove", "name": "pong"}),
            ToolErrorCode::NotFound,
            "ping",
        ),
        (
            json!({"action": "update", "name": "ping"}),
            ToolErrorCode::InvalidArguments,
            "fields",
        ),
        (
            json!({"action": "disable", "name": "ping", "schedule": "* * * * *"}),
            ToolErrorCode::InvalidArguments,
            "only action and name",
        ),
        (
            json!({"action": "pause", "name": "ping"}),
            ToolErrorCode::InvalidArguments,
            "parameter schema",
        ),
        (
            json!({"action": "add", "name": "Bad-Name", "schedule": "* * * * *", "task": "heartbeat_ping"}),
            ToolErrorCode::InvalidArguments,
            "a-z, 0-9",
        ),
    ];
    let before_file = f.file();
    for (args, code, hint) in cases {
        let error = model_error(f.call(args.clone()).await.unwrap_err());
        assert_eq!(error.code, code, "{args}");
        assert!(error.hint.contains(hint), "{args}: {}", error.hint);
    }
    assert_eq!(f.file(), before_file);
}

#[test]
fn the_tool_declares_itself_for_policy_and_the_model() {
    let h = Harness::new();
    let scheduler = h.scheduler("a", &[]);
    let mut registry = Registry::new();
    register(
        &mut registry,
        Arc::new(HeartbeatEditor::new(h.heartbeat_yml(), scheduler)),
    )
    .unwrap();
    let tool = registry.lookup("modify_heartbeat").unwrap();
    let spec = tool.spec();
    assert_eq!(spec.risk, automaton_tools::tool::RiskLevel::Caution);
    assert_eq!(spec.category, automaton_tools::tool::Category::SelfMod);
    let actions: Vec<&Value> = spec.parameters["properties"]["action"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|variant| &variant["const"])
        .collect();
    assert_eq!(actions, ["add", "update", "remove", "enable", "disable"]);
    assert_eq!(spec.parameters["required"], json!(["action", "name"]));
    let assessment = tool
        .assess(&json!({"action": "add", "name": "x", "schedule": "*/5 * * * *", "task": "t"}))
        .unwrap();
    assert_eq!(
        assessment.subjects,
        [automaton_tools::tool::Subject::Cron("*/5 * * * *".into())]
    );
    assert!(assessment.effect.changes_state());
}
