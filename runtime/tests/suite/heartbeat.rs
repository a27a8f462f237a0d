//! The runtime's heartbeat: its tasks against real parts (state.db, git repositories, the
//! scripted model's `/models`), and `automaton heartbeat list/run` on the real binary.

use super::*;
use automaton_heartbeat::{HeartbeatConfig, RunStatus, Scheduler, WakeEvents};
use automaton_runtime::config::AutomatonConfig;
use automaton_runtime::heartbeat_tasks::{self, CreditSource, TaskDeps};
use automaton_runtime::home::Home;
use automaton_runtime::inference::Endpoint;
use automaton_test_support::ScriptedModel;
use automaton_tools::clock::ManualClock;
use automaton_tools::db::StateDb;
use automaton_tools::dispatch::SharedDb;
use automaton_tools::money::Usdc;
use automaton_tools::survival::SurvivalTier;
use automaton_tools::tool::BoxFuture;
use std::sync::{Arc, Mutex};

/// A credit source whose balance the test sets, like a ledger the test funds.
struct Ledger(Mutex<Result<Usdc, String>>);

impl Ledger {
    fn set(&self, balance: Result<Usdc, String>) {
        *self.0.lock().unwrap() = balance;
    }
}

impl CreditSource for Ledger {
    fn name(&self) -> &str {
        "ledger"
    }

    fn balance(&self) -> BoxFuture<'_, Result<Usdc, String>> {
        let balance = self.0.lock().unwrap().clone();
        Box::pin(async move { balance })
    }
}

struct Rig {
    _home: TestHome,
    db: SharedDb,
    scheduler: Scheduler,
    wake: WakeEvents,
    clock: ManualClock,
    tier: tokio::sync::watch::Receiver<SurvivalTier>,
}

impl Rig {
    /// Runs schedule `name` now; manual runs are keyed by their instant, so the clock moves a
    /// second first.
    async fn run(&self, name: &str, tier: SurvivalTier) -> automaton_heartbeat::RunReport {
        self.clock.advance(1_000);
        self.scheduler.run_now(name, tier).await.unwrap()
    }
}

async fn rig(
    credits: Option<Arc<dyn CreditSource>>,
    endpoints: Vec<Endpoint>,
    config_edit: impl FnOnce(&mut AutomatonConfig),
) -> Rig {
    let test_home = TestHome::new();
    test_home.init();
    let home = Home::at(test_home.root());
    let mut config = AutomatonConfig::load(&home.config()).unwrap();
    config_edit(&mut config);
    let db: SharedDb = Arc::new(Mutex::new(
        StateDb::open(&home.state_db(), automaton_runtime::state::ALL_SCHEMAS).unwrap(),
    ));
    let clock = ManualClock::new(1_800_000_000_000);
    let (tier_tx, tier) = tokio::sync::watch::channel(SurvivalTier::Normal);
    let deps = TaskDeps {
        home,
        config: Arc::new(config),
        db: Arc::clone(&db),
        credits,
        endpoints: Arc::new(endpoints),
        tier: Arc::new(tier_tx),
    };
    let tasks = heartbeat_tasks::registry(&deps).unwrap();
    let wake = WakeEvents::new(Arc::clone(&db), Arc::new(clock.clone()));
    let scheduler = Scheduler::new(
        Arc::clone(&db),
        Arc::new(clock.clone()),
        "test",
        tasks,
        wake.clone(),
    );
    scheduler
        .sync(&HeartbeatConfig::default_schedule())
        .await
        .unwrap();
    Rig {
        _home: test_home,
        db,
        scheduler,
        wake,
        clock,
        tier,
    }
}

#[tokio::test]
async fn check_credits_moves_the_tier_wakes_the_agent_and_counts_the_dead_hour() {
    let ledger = Arc::new(Ledger(Mutex::new(Ok(Usdc::cents(30)))));
    let rig = rig(Some(ledger.clone()), Vec::new(), |_| {}).await;
    let run = rig.run("check_credits", SurvivalTier::Normal).await;
    assert_eq!(run.status, RunStatus::Ok, "{run:?}");
    assert_eq!(run.result.as_ref().unwrap()["tier"], "low_compute");
    assert_eq!(
        *rig.tier.borrow(),
        SurvivalTier::LowCompute,
        "the scheduler paces by it"
    );
    let event = rig.wake.take_next("agent").await.unwrap().unwrap();
    assert_eq!(event.cause, "tier_change");
    assert!(event.reason.contains("to low_compute"), "{}", event.reason);

    // Zero for 59 minutes stays critical; the 60th minute is death; funding revives.
    ledger.set(Ok(Usdc::ZERO));
    rig.run("check_credits", SurvivalTier::Normal).await;
    for _ in 0..59 {
        rig.clock.advance(59_000);
        rig.run("check_credits", SurvivalTier::Critical).await;
    }
    assert_eq!(*rig.tier.borrow(), SurvivalTier::Critical);
    rig.clock.advance(59_000);
    rig.run("check_credits", SurvivalTier::Critical).await;
    assert_eq!(*rig.tier.borrow(), SurvivalTier::Dead);
    // An unreachable source changes nothing.
    ledger.set(Err("connection refused".into()));
    let run = rig.run("check_credits", SurvivalTier::Dead).await;
    assert_eq!(run.status, RunStatus::Failed, "{run:?}");
    let error = run.error.unwrap_or_default();
    assert!(
        error.contains("connection refused") && error.contains("stay in force"),
        "{error}"
    );
    assert_eq!(*rig.tier.borrow(), SurvivalTier::Dead);
    ledger.set(Ok(Usdc::dollars(10)));
    rig.run("check_credits", SurvivalTier::Dead).await;
    assert_eq!(*rig.tier.borrow(), SurvivalTier::High);
    let pending = rig.wake.pending().await.unwrap();
    assert_eq!(pending.len(), 1, "one event per cause: {pending:?}");
    assert!(
        pending[0].reason.contains("to high"),
        "{}",
        pending[0].reason
    );
    let changes: i64 = rig
        .db
        .lock()
        .unwrap()
        .conn()
        .query_row("SELECT COUNT(*) FROM tier_changes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(changes, 4, "low_compute, critical, dead, high");
}

#[tokio::test]
async fn check_credits_without_a_source_says_so_instead_of_inventing_a_balance() {
    let rig = rig(None, Vec::new(), |_| {}).await;
    let run = rig.run("check_credits", SurvivalTier::Normal).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert!(run.error.unwrap().contains("no credit source"));
}

#[tokio::test]
async fn heartbeat_ping_signals_distress_when_critical() {
    let ledger = Arc::new(Ledger(Mutex::new(Ok(Usdc::ZERO))));
    let rig = rig(Some(ledger), Vec::new(), |_| {}).await;
    let ping = rig.run("heartbeat_ping", SurvivalTier::Normal).await;
    assert_eq!(ping.result.unwrap()["distress"], false, "nothing known yet");
    rig.run("check_credits", SurvivalTier::Normal).await;
    let ping = rig.run("heartbeat_ping", SurvivalTier::Critical).await;
    let result = ping.result.unwrap();
    assert_eq!(result["distress"], true, "{result}");
    assert_eq!(result["tier"], "critical");
}

fn git(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An upstream repository with one commit, and a clone of it at `<workspace>/checkout`.
fn upstream_and_checkout(rig: &Rig) -> (tempfile::TempDir, std::path::PathBuf) {
    let work = tempfile::tempdir().unwrap();
    let upstream = work.path().join("upstream");
    std::fs::create_dir(&upstream).unwrap();
    git(&upstream, &["init", "-q", "-b", "main"]);
    git(&upstream, &["commit", "-q", "--allow-empty", "-m", "one"]);
    let workspace = rig._home.path("workspace");
    std::fs::create_dir_all(&workspace).unwrap();
    git(
        &workspace,
        &["clone", "-q", upstream.to_str().unwrap(), "checkout"],
    );
    (work, upstream)
}

async fn watch(rig: &Rig, params: &str) {
    let yaml = format!(
        "entries:\n  - name: check_for_updates\n    schedule: \"0 */4 * * *\"\n    task: check_for_updates\n    params: {params}\n"
    );
    rig.scheduler
        .sync(&HeartbeatConfig::parse(&yaml).unwrap())
        .await
        .unwrap();
}

#[tokio::test]
async fn check_for_updates_wakes_once_per_new_upstream_head() {
    let rig = rig(None, Vec::new(), |_| {}).await;
    let (_work, upstream) = upstream_and_checkout(&rig);
    watch(&rig, "{repo: checkout}").await;
    let first = rig.run("check_for_updates", SurvivalTier::Normal).await;
    assert_eq!(first.status, RunStatus::Ok, "{first:?}");
    assert_eq!(first.result.unwrap()["new_commits"], 0);
    assert!(rig.wake.pending().await.unwrap().is_empty());

    git(&upstream, &["commit", "-q", "--allow-empty", "-m", "two"]);
    git(&upstream, &["commit", "-q", "--allow-empty", "-m", "three"]);
    let second = rig.run("check_for_updates", SurvivalTier::Normal).await;
    assert_eq!(second.result.unwrap()["new_commits"], 2);
    let event = rig.wake.take_next("agent").await.unwrap().unwrap();
    assert_eq!(event.cause, "upstream_update");
    assert!(
        event.reason.starts_with("2 new upstream commit(s) on main"),
        "{}",
        event.reason
    );
    // The same head again: nothing new to say.
    rig.run("check_for_updates", SurvivalTier::Normal).await;
    assert!(rig.wake.pending().await.unwrap().is_empty());
}

#[tokio::test]
async fn check_for_updates_watches_only_checkouts_inside_the_workspace_by_valid_names() {
    let rig = rig(None, Vec::new(), |_| {}).await;
    let (work, _upstream) = upstream_and_checkout(&rig);
    // A checkout outside the workspace, reached four ways.
    let outside = work.path().join("outside");
    git(
        work.path(),
        &[
            "clone",
            "-q",
            work.path().join("upstream").to_str().unwrap(),
            "outside",
        ],
    );
    std::os::unix::fs::symlink(&outside, rig._home.path("workspace/link")).unwrap();
    let refused = [
        format!("{{repo: {}}}", outside.display()),
        "{repo: ../workspace/checkout}".to_owned(),
        "{repo: checkout/../../..}".to_owned(),
        "{repo: link}".to_owned(),
        "{repo: checkout, branch: \"--upload-pack=touch /tmp/pwned\"}".to_owned(),
        "{repo: checkout, branch: \"main:refs/heads/evil\"}".to_owned(),
        "{repo: checkout, remote: \"../../x\"}".to_owned(),
    ];
    for params in refused {
        watch(&rig, &params).await;
        let run = rig.run("check_for_updates", SurvivalTier::Normal).await;
        assert_eq!(run.status, RunStatus::Failed, "{params}: {run:?}");
        let error = run.error.unwrap_or_default();
        assert!(
            error.contains("workspace") || error.contains("valid"),
            "{params}: {error}"
        );
    }
    // Nothing was fetched into the checkout but its own tracking branch, ever.
    let refs = std::process::Command::new("git")
        .args(["for-each-ref", "--format=%(refname)"])
        .current_dir(rig._home.path("workspace/checkout"))
        .output()
        .unwrap();
    let refs = String::from_utf8_lossy(&refs.stdout);
    assert!(!refs.contains("evil"), "{refs}");
}

#[tokio::test]
async fn refresh_models_keeps_what_the_providers_serve_and_what_is_missing() {
    let server = ScriptedModel::builder()
        .models(["small-model", "big-model"])
        .start()
        .await
        .unwrap();
    let endpoint = Endpoint {
        name: "local".into(),
        base_url: server.base_url(),
        api_key: "sk-test".into(),
    };
    let rig = rig(None, vec![endpoint], |config| {
        config.inference.model = Some("big-model".into());
        config.inference.low_compute_model = Some("tiny-model".into());
    })
    .await;
    let run = rig.run("refresh_models", SurvivalTier::Normal).await;
    assert_eq!(run.status, RunStatus::Ok, "{run:?}");
    let result = run.result.unwrap();
    assert_eq!(
        result["providers"]["local"],
        serde_json::json!(["small-model", "big-model"])
    );
    assert_eq!(
        result["configured_but_not_served"],
        serde_json::json!(["tiny-model"])
    );
    let kept: String = rig
        .db
        .lock()
        .unwrap()
        .conn()
        .query_row(
            "SELECT value FROM kv WHERE key = ?1",
            [heartbeat_tasks::AVAILABLE_MODELS_KEY],
            |r| r.get(0),
        )
        .unwrap();
    assert!(kept.contains("small-model"));
}

#[tokio::test]
async fn health_check_finds_a_loosened_wallet_and_wakes_the_agent() {
    let rig = rig(None, Vec::new(), |_| {}).await;
    let healthy = rig.run("health_check", SurvivalTier::Normal).await;
    assert_eq!(healthy.result.unwrap()["healthy"], true);
    let wallet = rig._home.path("wallet.json");
    std::fs::set_permissions(&wallet, std::fs::Permissions::from_mode(0o644)).unwrap();
    let sick = rig.run("health_check", SurvivalTier::Normal).await;
    let result = sick.result.unwrap();
    assert_eq!(result["healthy"], false);
    assert!(
        result["problems"][0]
            .as_str()
            .unwrap()
            .starts_with("wallet.json"),
        "{result}"
    );
    let event = rig.wake.take_next("agent").await.unwrap().unwrap();
    assert_eq!(event.cause, "health");
    // The same problem next firing: recorded, but the agent was already told.
    let still = rig.run("health_check", SurvivalTier::Normal).await;
    assert_eq!(still.result.unwrap()["healthy"], false);
    assert!(rig.wake.pending().await.unwrap().is_empty());
    // Fixed, then broken again: a recurrence is news.
    std::fs::set_permissions(&wallet, std::fs::Permissions::from_mode(0o600)).unwrap();
    let fixed = rig.run("health_check", SurvivalTier::Normal).await;
    assert_eq!(fixed.result.unwrap()["healthy"], true);
    std::fs::set_permissions(&wallet, std::fs::Permissions::from_mode(0o640)).unwrap();
    rig.run("health_check", SurvivalTier::Normal).await;
    let again = rig.wake.take_next("agent").await.unwrap().unwrap();
    assert_eq!(again.cause, "health");
}

#[test]
fn heartbeat_list_and_run_on_the_cli() {
    let home = TestHome::new();
    home.init();
    let list = json(&home.run(&["heartbeat", "list", "--json"]));
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|view| view["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "check_credits",
            "check_for_updates",
            "health_check",
            "heartbeat_ping",
            "refresh_models",
            "report_metrics"
        ]
    );
    assert!(list[0]["next_run_at"].as_i64().is_some());
    let out = home.run(&["heartbeat", "run", "report_metrics", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = json(&out);
    assert_eq!(run["status"], "ok");
    assert_eq!(run["trigger"], "manual");
    let list = json(&home.run(&["heartbeat", "list", "--json"]));
    let metrics = list
        .as_array()
        .unwrap()
        .iter()
        .find(|view| view["name"] == "report_metrics")
        .unwrap();
    assert_eq!(metrics["last_status"], "ok");

    let out = home.run(&["heartbeat", "run", "nope", "--json"]);
    assert!(!out.status.success());
    let error = error_json(&out);
    assert_eq!(error["code"], "INVALID_INPUT");
    assert!(
        error["hint"].as_str().unwrap().contains("report_metrics"),
        "{error}"
    );
}

/// `check_credits` over the real platform: a local platform behind its gateway, read by the
/// HTTP client the agent uses for a Conway endpoint; funding moves the tier, and a platform that
/// went away leaves the last balance in force.
#[tokio::test]
async fn check_credits_moves_the_tier_from_a_real_platform_balance() {
    use automaton_platform::credits::CreditGrant;
    use automaton_platform::{HttpPlatform, LocalPlatform, Platform};
    use automaton_runtime::platform_credits::PlatformCredits;

    let dir = tempfile::tempdir().unwrap();
    let local = LocalPlatform::open(
        &dir.path().join("platform"),
        Arc::new(automaton_tools::clock::SystemClock),
    )
    .unwrap();
    let token = local.ensure_admin_token().await.unwrap().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    let served = tokio::spawn(automaton_platform::gateway::serve(
        local.clone(),
        listener,
        stop.clone(),
    ));
    let client = HttpPlatform::with_retry(
        &url,
        &token,
        automaton_tools::resilience::RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        },
    )
    .unwrap();
    let grant = |micro: i64| CreditGrant {
        amount_micro_usd: micro,
        reason: "test funds".to_owned(),
    };
    client.grant_credits(&grant(300_000), None).await.unwrap();
    let source = Arc::new(PlatformCredits::over("conway", Arc::new(client)));
    let rig = rig(Some(source), Vec::new(), |_| {}).await;

    let run = rig.run("check_credits", SurvivalTier::Normal).await;
    assert_eq!(run.status, RunStatus::Ok, "{run:?}");
    let result = run.result.unwrap();
    assert_eq!(result["balance_micro_usdc"], 300_000);
    assert_eq!(result["source"], "conway");
    assert_eq!(*rig.tier.borrow(), SurvivalTier::LowCompute);

    local.grant_credits(&grant(10_000_000), None).await.unwrap();
    rig.run("check_credits", SurvivalTier::LowCompute).await;
    assert_eq!(*rig.tier.borrow(), SurvivalTier::High);

    stop.cancel();
    served.await.unwrap().unwrap();
    let run = rig.run("check_credits", SurvivalTier::High).await;
    assert_eq!(run.status, RunStatus::Failed, "{run:?}");
    assert!(run.error.unwrap().contains("stay in force"));
    assert_eq!(
        *rig.tier.borrow(),
        SurvivalTier::High,
        "the last balance stays"
    );
}

/// In `critical` the heartbeat sheds its non-essential work (recorded `skipped`) but keeps
/// what lets the automaton call for help and revive: the ping, the credit check, the health check.
#[tokio::test]
async fn a_critical_tick_skips_non_essential_tasks_and_keeps_the_ping() {
    let ledger = Arc::new(Ledger(Mutex::new(Ok(Usdc::cents(5)))));
    let rig = rig(Some(ledger), Vec::new(), |_| {}).await;
    rig.run("check_credits", SurvivalTier::Normal).await;
    let tier = *rig.tier.borrow();
    assert_eq!(
        tier,
        SurvivalTier::Critical,
        "the cached balance says critical"
    );
    // Past every entry's next firing.
    rig.clock.advance(7 * 3_600_000);
    let tick = rig.scheduler.tick(tier).await.unwrap();
    let status = |name: &str| {
        tick.runs
            .iter()
            .find(|run| run.schedule == name)
            .unwrap_or_else(|| panic!("{name} was not settled: {tick:?}"))
            .status
    };
    assert_eq!(status("report_metrics"), RunStatus::Skipped);
    assert_eq!(status("check_for_updates"), RunStatus::Skipped);
    assert_eq!(status("refresh_models"), RunStatus::Skipped);
    assert_eq!(status("heartbeat_ping"), RunStatus::Ok);
    assert_ne!(status("check_credits"), RunStatus::Skipped);
    assert_ne!(status("health_check"), RunStatus::Skipped);
}
