//! Shared fixture: a home with protected files, a workspace, state.db and a dispatcher with
//! the sandbox tools plus two test tools.

mod audit;
mod dispatch;
mod sandbox_tools;

use automaton_tools::clock::SystemClock;
use automaton_tools::db::StateDb;
use automaton_tools::dispatch::{CallRecord, CallRequest, Dispatcher, SharedDb};
use automaton_tools::policy::PolicyEngine;
use automaton_tools::policy::authority::AuthorityGate;
use automaton_tools::policy::path::{PathGate, ProtectedPaths};
use automaton_tools::policy::rate::{RateLimit, RateLimitGate, RateLimits};
use automaton_tools::policy::shell::CommandGate;
use automaton_tools::policy::validate::ValidationGate;
use automaton_tools::registry::Registry;
use automaton_tools::sandbox::{self, Sandbox};
use automaton_tools::tool::{
    Category, Effect, Provenance, RiskLevel, Tool, ToolContext, ToolError, ToolOutput,
};
use schemars::JsonSchema;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Arguments of the test tools.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct NoteArgs {
    /// Text to record.
    pub text: String,
    /// Milliseconds to sleep first.
    #[serde(default)]
    pub sleep_ms: u64,
}

/// A dangerous tool that only returns its argument (stands in for transfers, deletes, …).
pub struct DangerTool;

impl Tool for DangerTool {
    const NAME: &'static str = "danger_note";
    type Args = NoteArgs;
    fn description(&self) -> String {
        "A dangerous test tool.".into()
    }
    fn category(&self) -> Category {
        Category::Financial
    }
    fn risk(&self) -> RiskLevel {
        RiskLevel::Dangerous
    }
    async fn call(&self, _ctx: &ToolContext, args: NoteArgs) -> Result<ToolOutput, ToolError> {
        tokio::time::sleep(Duration::from_millis(args.sleep_ms)).await;
        Ok(ToolOutput::new(serde_json::json!({ "noted": args.text })))
    }
}

/// A self-modification test tool: its category has tight rate limits, and it is mutating, so
/// each call leaves a receipt.
pub struct SelfModTool;

impl Tool for SelfModTool {
    const NAME: &'static str = "selfmod_note";
    type Args = NoteArgs;
    fn description(&self) -> String {
        "A self-modification test tool.".into()
    }
    fn category(&self) -> Category {
        Category::SelfMod
    }
    fn risk(&self) -> RiskLevel {
        RiskLevel::Caution
    }
    fn effect(&self, _: &NoteArgs) -> Effect {
        Effect::Mutating
    }
    async fn call(&self, _ctx: &ToolContext, args: NoteArgs) -> Result<ToolOutput, ToolError> {
        Ok(ToolOutput::new(serde_json::json!({ "noted": args.text })))
    }
}

/// A tool whose argument is a secret the audit trail must not keep (like `set_env`'s values).
pub struct SecretNoteTool;

impl Tool for SecretNoteTool {
    const NAME: &'static str = "secret_note";
    type Args = NoteArgs;
    fn description(&self) -> String {
        "A test tool carrying a secret.".into()
    }
    fn category(&self) -> Category {
        Category::Platform
    }
    fn risk(&self) -> RiskLevel {
        RiskLevel::Caution
    }
    fn secret_args(&self, _: &NoteArgs) -> Vec<String> {
        vec!["/text".to_owned(), "/not_there".to_owned()]
    }
    fn secret_fields(&self) -> &'static [&'static str] {
        &["text"]
    }
    async fn call(&self, _ctx: &ToolContext, args: NoteArgs) -> Result<ToolOutput, ToolError> {
        Ok(ToolOutput::new(
            serde_json::json!({ "kept": args.text.len() }),
        ))
    }
}

pub struct Fixture {
    _dir: tempfile::TempDir,
    pub home: PathBuf,
    pub work: PathBuf,
    pub db: SharedDb,
    pub dispatcher: Dispatcher,
}

impl Fixture {
    pub fn new() -> Self {
        Self::with_limits(RateLimits::default())
    }

    pub fn with_limits(limits: RateLimits) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let home = root.join("home");
        let work = root.join("work");
        std::fs::create_dir_all(home.join(".git/hooks")).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        for name in [
            "wallet.json",
            "constitution.md",
            "automaton.json",
            "SOUL.md",
            "heartbeat.yml",
        ] {
            std::fs::write(home.join(name), format!("{name} content")).unwrap();
        }
        let db = StateDb::open(&home.join("state.db"), &[automaton_tools::db::SCHEMA]).unwrap();
        let db: SharedDb = Arc::new(Mutex::new(db));
        let env = sandbox::scrub_env(vec![
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            ("HOME".into(), root.clone().into_os_string()),
            ("OPENAI_API_KEY".into(), "sk-should-never-be-seen".into()),
            ("MY_SECRET".into(), "hunter2".into()),
        ]);
        let sandbox = Arc::new(Sandbox::new(work.clone(), env, Arc::clone(&db)));
        let mut registry = Registry::new();
        sandbox::register(&mut registry, sandbox).unwrap();
        registry.register(DangerTool).unwrap();
        registry.register(SelfModTool).unwrap();
        registry.register(SecretNoteTool).unwrap();
        let exe = PathBuf::from("/usr/local/bin/automaton");
        let paths = ProtectedPaths::for_home(&home, &root, &exe);
        let engine = PolicyEngine::new(
            vec![
                Box::new(AuthorityGate),
                Box::new(ValidationGate),
                Box::new(PathGate::new(paths.clone())),
                Box::new(CommandGate::new(paths, std::process::id())),
                Box::new(RateLimitGate::new(limits)),
            ],
            false,
        );
        let dispatcher = Dispatcher::new(
            Arc::new(registry),
            Arc::new(engine),
            Arc::clone(&db),
            Arc::new(SystemClock),
            Duration::from_secs(30),
        );
        Self {
            _dir: dir,
            home,
            work,
            db,
            dispatcher,
        }
    }

    pub async fn call_as(
        &self,
        provenance: Provenance,
        name: &str,
        args: serde_json::Value,
    ) -> CallRecord {
        self.dispatcher
            .dispatch(
                CallRequest {
                    name: name.to_owned(),
                    arguments: args.to_string(),
                    provenance,
                    turn_id: Some(1),
                    timeout: None,
                },
                &CancellationToken::new(),
            )
            .await
    }

    pub async fn call(&self, name: &str, args: serde_json::Value) -> CallRecord {
        self.call_as(Provenance::SelfDirected, name, args).await
    }

    /// One column of the call's tool_calls row.
    pub fn row(&self, call_id: &str, column: &str) -> Option<String> {
        let db = self.db.lock().unwrap();
        db.conn()
            .query_row(
                &format!("SELECT CAST({column} AS TEXT) FROM tool_calls WHERE id = ?1"),
                [call_id],
                |r| r.get(0),
            )
            .unwrap()
    }
}

pub fn tight(per_turn: u64) -> RateLimits {
    RateLimits {
        default: RateLimit {
            per_turn: 100,
            per_hour: 100,
            per_day: 100,
        },
        by_category: vec![(
            Category::SelfMod,
            RateLimit {
                per_turn,
                per_hour: 100,
                per_day: 100,
            },
        )],
    }
}

pub fn error_code(record: &CallRecord) -> String {
    record.model_json()["error"]["code"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}
