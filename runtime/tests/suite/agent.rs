//! The agent loop end to end: the real binary, a real home, the scripted model over real HTTP.

use super::*;
use automaton_test_support::{Reply, ScriptedCall, ScriptedModel};

async fn model_for(home: &TestHome) -> ScriptedModel {
    let constitution = std::fs::read_to_string(home.path("constitution.md")).unwrap();
    ScriptedModel::builder()
        .require_system_prefix(constitution.trim_end().to_owned())
        .start()
        .await
        .unwrap()
}

/// Runs `automaton run ARGS` against `model` and returns (exit ok, stdout JSON).
async fn run_agent(
    home: &TestHome,
    model: &ScriptedModel,
    args: &[&str],
) -> (bool, serde_json::Value) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_automaton"));
    command
        .arg("--home")
        .arg(home.root())
        .arg("run")
        .arg("--json")
        .args(args)
        .env("OPENAI_BASE_URL", model.base_url())
        .env("OPENAI_API_KEY", "sk-test")
        .env_remove("AUTOMATON_HOME");
    let out = command.output().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(&text).unwrap_or_else(|err| {
        panic!(
            "run printed no JSON ({err}): {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), report)
}

/// Starts an unbounded `automaton run --json` against `model`, stdout and stderr piped.
fn spawn_run(home: &TestHome, model: &ScriptedModel) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_automaton"))
        .arg("--home")
        .arg(home.root())
        .args(["run", "--json"])
        .env("OPENAI_BASE_URL", model.base_url())
        .env("OPENAI_API_KEY", "sk-test")
        .env_remove("AUTOMATON_HOME")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Sends `signal` to `run` and waits (at most `limit`) for it to exit.
async fn stop_with(
    run: tokio::process::Child,
    signal: rustix::process::Signal,
    limit: std::time::Duration,
) -> std::process::Output {
    let pid = run.id().unwrap();
    rustix::process::kill_process(rustix::process::Pid::from_raw(pid as i32).unwrap(), signal)
        .unwrap();
    tokio::time::timeout(limit, run.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("run stops promptly after {signal:?}"))
        .unwrap()
}

fn count(home: &TestHome, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(home.path("state.db")).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Changes `automaton.json` in place.
fn edit_config(home: &TestHome, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = home.path("automaton.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
}

fn write_call(i: usize) -> Reply {
    Reply::tool_call(
        format!("c{i}"),
        "write_file",
        format!(r#"{{"path":"notes/{i}.md","content":"note {i}"}}"#),
    )
}

#[tokio::test]
async fn a_twenty_turn_run_persists_every_turn_and_call() {
    let home = TestHome::new();
    home.init();
    let model = model_for(&home).await;
    model.push_all((0..20).map(write_call));
    let (ok, report) = run_agent(&home, &model, &["--max-turns", "20"]).await;
    assert!(ok, "{report}");
    assert_eq!(report["turns"], 20);
    assert_eq!(report["end"]["reason"], "max_turns");
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM turns WHERE state = 'completed'"
        ),
        20
    );
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM tool_calls WHERE status = 'succeeded' AND turn_id IS NOT NULL"
        ),
        20
    );
    assert_eq!(count(&home, "SELECT COUNT(*) FROM messages"), 60);
    assert_eq!(count(&home, "SELECT COUNT(*) FROM receipts"), 20);
    assert!(home.path("workspace/notes/19.md").exists());
    // Each request carried the history so far, and every tool result answered its call.
    let requests = model.requests();
    assert_eq!(requests.len(), 20);
    assert!(requests[19].messages().len() > requests[0].messages().len());
    model.assert_clean();
    let status = json(&home.run(&["status", "--json"]));
    assert_eq!(status["turns"], 20);
    assert_eq!(status["state"], "sleeping");
}

/// The history a run keeps between its turns is exactly what state.db gives a new run.
#[tokio::test]
async fn the_history_a_run_carries_is_what_state_db_gives_back() {
    let home = TestHome::new();
    home.init();
    let model = model_for(&home).await;
    model.push_all([
        Reply::tool_calls([
            ScriptedCall::new("p1", "write_file", r#"{"path":"a.md","content":"alpha"}"#),
            ScriptedCall::new("p2", "read_file", r#"{"path":"missing.md"}"#),
        ]),
        Reply::text("thinking out loud, no calls"),
        write_call(3),
        write_call(4),
    ]);
    let (ok, report) = run_agent(&home, &model, &["--max-turns", "3"]).await;
    assert!(ok, "{report}");
    let (ok, report) = run_agent(&home, &model, &["--max-turns", "1"]).await;
    assert!(ok, "{report}");
    let requests = model.requests();
    assert_eq!(requests.len(), 4);
    // Request 3 was built from the run's memory (turns 1 and 2), request 4 by a new run
    // reading state.db (turns 1 to 3): the first two turns must read the same.
    let from_memory = requests[2].messages();
    let from_db = requests[3].messages();
    let history = &from_memory[1..from_memory.len() - 1];
    assert!(history.len() >= 5, "{history:?}");
    assert_eq!(history, &from_db[1..=history.len()]);
    // The turn count the status layer shows is counted the same way.
    for (i, request) in requests.iter().enumerate() {
        let system = request.messages()[0]["content"].as_str().unwrap();
        assert!(
            system.contains(&format!("Turns so far: {i}.")),
            "request {i}: {system}"
        );
    }
    model.assert_clean();
}

/// Write-ahead, read from the run's own syscalls (strace): before each `write_file` creates
/// its file, the last thing written to state.db's log (the call's intent) has been synced; and
/// a turn waits for the disk once, not once per record.
#[tokio::test]
async fn an_effect_s_intent_is_on_disk_before_the_effect_happens() {
    const TURNS: usize = 4;
    let strace = std::process::Command::new("strace").arg("-V").output();
    assert!(
        strace.is_ok_and(|out| out.status.success()),
        "this test needs strace (`apt-get install strace`; .ci/run installs it)"
    );
    let home = TestHome::new();
    home.init();
    let model = model_for(&home).await;
    model.push_all((0..TURNS).map(|i| {
        Reply::tool_call(
            format!("w{i}"),
            "write_file",
            format!(r#"{{"path":"ahead/w-{i}.md","content":"note {i}"}}"#),
        )
    }));
    let trace = home.root().with_extension("strace");
    let out = tokio::process::Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-y",
            "-e",
            "trace=openat,pwrite64,fdatasync,fsync",
            "-o",
        ])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_automaton"))
        .arg("--home")
        .arg(home.root())
        .args(["run", "--json", "--max-turns", &TURNS.to_string()])
        .env("OPENAI_BASE_URL", model.base_url())
        .env("OPENAI_API_KEY", "sk-test")
        .env_remove("AUTOMATON_HOME")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trace = std::fs::read_to_string(&trace).unwrap();
    let wal = "state.db-wal>";
    // Each event in order: a write to the log, a sync of it, or a created note.
    let mut written_since_sync = false;
    let mut syncs = 0;
    let mut created = Vec::new();
    for line in trace.lines() {
        if line.contains("pwrite64(") && line.contains(wal) {
            written_since_sync = true;
        } else if (line.contains("fdatasync(") || line.contains("fsync(")) && line.contains(wal) {
            written_since_sync = false;
            syncs += 1;
        } else if line.contains("openat(") && line.contains("O_CREAT") && line.contains("/ahead/w-")
        {
            assert!(
                !written_since_sync,
                "a note was created while the log held unsynced writes (its intent?): {line}"
            );
            created.push(line.to_owned());
        }
    }
    assert_eq!(created.len(), TURNS, "{trace}");
    // One synced intent per turn, the syncs behind the turns and the run's own few (its start,
    // its state changes, the heartbeat's first ticks): far fewer than five a turn.
    assert!(syncs >= TURNS, "{syncs} syncs");
    assert!(
        syncs <= 3 * TURNS + 12,
        "{syncs} syncs of the log for {TURNS} turns"
    );
    model.assert_clean();
}

/// What `automaton prompt` shows is what the model gets: an active skill, fenced.
#[tokio::test]
async fn an_active_skill_reaches_the_model_inside_its_fence() {
    let home = TestHome::new();
    home.init();
    super::prompt::write_skill(
        &home,
        "shop-keeping",
        "auto-activate: true\n",
        "Price things fairly.",
    );
    let model = model_for(&home).await;
    model.push(Reply::text("noted"));
    let (ok, report) = run_agent(&home, &model, &["--max-turns", "1"]).await;
    assert!(ok, "{report}");
    let requests = model.requests();
    let system = requests[0].messages()[0]["content"].as_str().unwrap();
    assert!(
        system.contains(
            "<untrusted-skill name=\"shop-keeping\">\nPrice things fairly.\n</untrusted-skill>"
        ),
        "{system}"
    );
    assert!(system.contains("Inference spent today:"), "{system}");
    let shown = json(&home.run(&["prompt", "--json"]));
    let shown = shown["prompt"].as_str().unwrap();
    let skills_at = |text: &str| text.find("## Skills").unwrap();
    assert_eq!(
        &system[skills_at(system)..system.find("## How you work").unwrap()],
        &shown[skills_at(shown)..shown.find("## How you work").unwrap()]
    );
    model.assert_clean();
}

/// The anchor commits the receipt chain's head to git, and a stretch commits its receipts
/// without waiting for the disk (a killed one never syncs behind them): between the stretch's
/// exit (`exit_group`) and writing `audit-head.json`, the run syncs state.db's log itself.
/// Read from the syscalls (strace).
#[tokio::test]
async fn the_receipts_are_on_disk_before_their_head_is_anchored() {
    let strace = std::process::Command::new("strace").arg("-V").output();
    assert!(
        strace.is_ok_and(|out| out.status.success()),
        "this test needs strace (`apt-get install strace`; .ci/run installs it)"
    );
    let home = TestHome::new();
    home.init();
    let model = model_for(&home).await;
    model.push(write_call(0));
    let trace = home.root().with_extension("strace");
    let out = tokio::process::Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-y",
            "-e",
            "trace=fdatasync,fsync,rename,renameat,renameat2,exit_group",
            "-o",
        ])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_automaton"))
        .arg("--home")
        .arg(home.root())
        .args(["run", "--json", "--max-turns", "1"])
        .env("OPENAI_BASE_URL", model.base_url())
        .env("OPENAI_API_KEY", "sk-test")
        .env_remove("AUTOMATON_HOME")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trace = std::fs::read_to_string(&trace).unwrap();
    let mut synced_since_exit = false;
    let mut anchors = 0;
    for line in trace.lines() {
        if line.contains("exit_group(") {
            synced_since_exit = false;
        } else if (line.contains("fdatasync(") || line.contains("fsync("))
            && line.contains("state.db-wal>")
        {
            synced_since_exit = true;
        } else if line.contains("rename") && line.contains("\"audit-head.json\"") {
            assert!(
                synced_since_exit,
                "the head was anchored with the stretch's receipts not synced: {line}\n{trace}"
            );
            anchors += 1;
        }
    }
    assert_eq!(anchors, 1, "{trace}");
}

#[tokio::test]
async fn a_forbidden_call_does_not_run_and_the_model_sees_why() {
    let home = TestHome::new();
    home.init();
    let model = model_for(&home).await;
    let wallet = home.path("wallet.json").display().to_string();
    model.push(Reply::tool_call(
        "c1",
        "exec",
        format!(r#"{{"command":"cat {wallet}"}}"#),
    ));
    model.push(Reply::tool_call(
        "c2",
        "exec",
        r#"{"command":"echo {not json"#,
    ));
    model.push(Reply::text("understood"));
    let (ok, report) = run_agent(&home, &model, &["--max-turns", "3"]).await;
    assert!(ok, "{report}");
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM tool_calls WHERE status = 'denied'"
        ),
        1
    );
    let second = model.requests()[1].body.to_string();
    assert!(
        second.contains("POLICY_DENIED"),
        "the refusal reached the model"
    );
    let third = model.requests()[2].body.to_string();
    assert!(
        third.contains("INVALID_ARGUMENTS"),
        "malformed arguments get an actionable error"
    );
    model.assert_clean();
}

#[tokio::test]
async fn idle_turns_force_a_sleep() {
    let home = TestHome::new();
    home.init();
    std::fs::create_dir_all(home.path("workspace")).unwrap();
    std::fs::write(home.path("workspace/README.md"), "hello").unwrap();
    let model = model_for(&home).await;
    for i in 0..3 {
        model.push(Reply::tool_call(
            format!("r{i}"),
            "read_file",
            format!(r#"{{"path":"README.md","offset":{i}}}"#),
        ));
    }
    let (ok, report) = run_agent(&home, &model, &["--until-sleep"]).await;
    assert!(ok, "{report}");
    assert_eq!(report["turns"], 3);
    assert_eq!(report["end"]["reason"], "slept");
    assert!(
        report["end"]["why"].as_str().unwrap().contains("idle"),
        "{report}"
    );
}

#[tokio::test]
async fn repeating_the_same_calls_is_called_out_then_stopped() {
    let home = TestHome::new();
    home.init();
    let model = model_for(&home).await;
    for _ in 0..4 {
        model.push(write_call(1));
    }
    let (ok, report) = run_agent(&home, &model, &["--until-sleep"]).await;
    assert!(ok, "{report}");
    assert_eq!(report["turns"], 4);
    assert!(
        report["end"]["why"].as_str().unwrap().contains("loop"),
        "{report}"
    );
    let fourth = model.requests()[3].messages()[0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        fourth.contains("same tool calls"),
        "the warning reached the model"
    );
    let third = model.requests()[2].messages()[0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!third.contains("same tool calls"));
}

#[tokio::test]
async fn the_sleep_tool_ends_the_run_and_the_wake_reason_reaches_the_model() {
    let home = TestHome::new();
    home.init();
    let model = model_for(&home).await;
    model.push(Reply::tool_calls([ScriptedCall::new(
        "s1",
        "sleep",
        r#"{"duration_seconds":600,"reason":"waiting for funds"}"#,
    )]));
    let (ok, report) = run_agent(&home, &model, &["--until-sleep"]).await;
    assert!(ok, "{report}");
    assert_eq!(report["end"]["reason"], "slept");
    assert_eq!(report["end"]["why"], "waiting for funds");
    let first = model.requests()[0].body.to_string();
    assert!(
        first.contains("the runtime started"),
        "the wake reason is in front of the model"
    );
}

#[tokio::test]
async fn sigterm_during_a_tool_call_leaves_a_consistent_record() {
    stop_during_a_tool_call(rustix::process::Signal::TERM).await;
}

/// Ctrl-C at a terminal stops a run exactly as SIGTERM does.
#[tokio::test]
async fn sigint_during_a_tool_call_leaves_a_consistent_record() {
    stop_during_a_tool_call(rustix::process::Signal::INT).await;
}

/// Sends `signal` to a run whose tool call is running: exit 0, the call and the turn
/// cancelled, nothing left running, the record verifies.
async fn stop_during_a_tool_call(signal: rustix::process::Signal) {
    let home = TestHome::new();
    home.init();
    let model = model_for(&home).await;
    model.push(Reply::tool_call("c1", "exec", r#"{"command":"sleep 30"}"#));
    let child = spawn_run(&home, &model);
    // Wait until the tool call is running.
    let db = home.path("state.db");
    let started = std::time::Instant::now();
    loop {
        let running = rusqlite::Connection::open(&db)
            .and_then(|c| {
                c.query_row(
                    "SELECT COUNT(*) FROM tool_calls WHERE status = 'running'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
            })
            .unwrap_or(0);
        if running == 1 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the call never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let out = stop_with(child, signal, std::time::Duration::from_secs(10)).await;
    assert!(out.status.success(), "exit 0 on {signal:?}");
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM tool_calls WHERE status = 'cancelled'"
        ),
        1
    );
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM turns WHERE state = 'cancelled'"
        ),
        1
    );
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM tool_calls WHERE status = 'running'"
        ),
        0
    );
    let status = json(&home.run(&["status", "--json"]));
    assert_eq!(status["state"], "sleeping");
    let audit = home.run(&["audit", "verify", "--json"]);
    assert!(audit.status.success(), "the record verifies after the stop");
}

/// A shutdown while the model thinks does not wait for it: the turn ends cancelled with its
/// input kept, the state is sleeping, and the process exits 0 at once.
#[tokio::test]
async fn sigterm_while_the_model_thinks_stops_at_once_and_records_the_turn() {
    let home = TestHome::new();
    home.init();
    let model = model_for(&home).await;
    model.push(Reply::text("too late").delayed(60_000));
    let child = spawn_run(&home, &model);
    wait_until(
        "the model is asked",
        std::time::Duration::from_secs(20),
        || !model.requests().is_empty(),
    )
    .await;
    let stopping = std::time::Instant::now();
    let out = stop_with(
        child,
        rustix::process::Signal::TERM,
        std::time::Duration::from_secs(20),
    )
    .await;
    assert!(out.status.success(), "exit 0 on SIGTERM");
    assert!(
        stopping.elapsed() < std::time::Duration::from_secs(10),
        "it did not wait for the model: {:?}",
        stopping.elapsed()
    );
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM turns WHERE state = 'cancelled' AND ended_at IS NOT NULL"
        ),
        1
    );
    assert_eq!(
        count(&home, "SELECT COUNT(*) FROM turns WHERE state = 'running'"),
        0
    );
    assert_eq!(
        count(&home, "SELECT COUNT(*) FROM messages WHERE role = 'user'"),
        1
    );
    let status = json(&home.run(&["status", "--json"]));
    assert_eq!(status["state"], "sleeping");
}

#[tokio::test]
async fn cutting_the_newest_receipts_is_caught_by_the_anchor_in_git() {
    let home = TestHome::new();
    home.init();
    let model = model_for(&home).await;
    model.push_all((0..3).map(write_call));
    let (ok, report) = run_agent(&home, &model, &["--max-turns", "3"]).await;
    assert!(ok, "{report}");
    let anchor: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home.path("audit-head.json")).unwrap())
            .unwrap();
    assert_eq!(anchor["receipts"], 3);
    let tracked = automaton_runtime::home_git::tracked_paths(&home.root()).unwrap();
    assert!(
        tracked.contains(&"audit-head.json".to_owned()),
        "the head is committed"
    );
    let out = home.run(&["audit", "verify", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Remove the newest call and its receipt together: the chain alone still verifies...
    let conn = rusqlite::Connection::open(home.path("state.db")).unwrap();
    conn.execute_batch(
        "CREATE TEMP TABLE victim AS SELECT call_id FROM receipts WHERE seq = 3;
         DELETE FROM receipts WHERE seq = 3;
         DELETE FROM policy_decisions WHERE call_id IN (SELECT call_id FROM victim);
         DELETE FROM tool_calls WHERE id IN (SELECT call_id FROM victim);",
    )
    .unwrap();
    // ...but not against the head anchored in the home's history.
    let out = home.run(&["audit", "verify", "--json"]);
    assert!(!out.status.success());
    let report = json(&out);
    assert_eq!(report["first_broken"]["seq"], 3);
    assert!(
        report["first_broken"]["problem"]
            .as_str()
            .unwrap()
            .contains("removed"),
        "{report}"
    );
}

#[tokio::test]
async fn switch_model_is_respected_on_the_next_turn_and_after_a_restart() {
    let home = TestHome::new();
    home.init();
    let model = model_for(&home).await;
    model.push(Reply::tool_call(
        "m1",
        "switch_model",
        r#"{"model":"cheap-model"}"#,
    ));
    model.push(write_call(1));
    let (ok, report) = run_agent(&home, &model, &["--max-turns", "2"]).await;
    assert!(ok, "{report}");
    model.push(write_call(2));
    let (ok, report) = run_agent(&home, &model, &["--max-turns", "1"]).await;
    assert!(ok, "{report}");
    let models: Vec<String> = model
        .requests()
        .iter()
        .map(|r| r.body["model"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(models[0], "gpt-4o-mini", "the default before any choice");
    assert_eq!(models[1], "cheap-model");
    assert_eq!(models[2], "cheap-model", "the choice survives a restart");
}

/// Prices the default model and caps the hour, as a creator would in automaton.json.
fn price_model_and_cap_hour(home: &TestHome, hourly_cap_micro_usdc: u64) {
    edit_config(home, |config| {
        config["models"] = serde_json::json!([{
            "name": "gpt-4o-mini",
            "contextWindow": 128000,
            "inputPricePerMillionMicroUsdc": 2_000_000,
            "outputPricePerMillionMicroUsdc": 8_000_000,
            "supportsTools": true
        }]);
        config["inference"]["maxTokensPerCall"] = 100.into();
        config["inference"]["hourlyMaxMicroUsdc"] = hourly_cap_micro_usdc.into();
    });
}

#[tokio::test]
async fn a_budget_refusal_stops_calls_and_reaches_the_next_context() {
    let home = TestHome::new();
    home.init();
    price_model_and_cap_hour(&home, 250_000);
    let model = model_for(&home).await;
    // 120k prompt tokens at $2/M and 1k completion tokens at $8/M: $0.248 of a $0.25 hour.
    model.push(write_call(1).with_usage(120_000, 1_000));
    model.push(write_call(2));
    let (ok, report) = run_agent(&home, &model, &["--max-turns", "3", "--until-sleep"]).await;
    assert!(ok, "{report}");
    assert_eq!(report["turns"], 2, "{report}");
    assert_eq!(report["end"]["reason"], "inference_unavailable", "{report}");
    assert!(
        report["end"]["message"].as_str().unwrap().contains("hour"),
        "{report}"
    );
    let first_spend = count(&home, "SELECT MIN(created_at) FROM inference_costs");
    assert_eq!(
        report["end"]["retry_at_ms"],
        first_spend + 3_600_001,
        "the run rests until the hour has room: {report}"
    );
    assert_eq!(report["end"]["budget"], "hour", "{report}");
    assert_eq!(model.requests().len(), 1, "the refused call was never sent");
    assert_eq!(
        count(&home, "SELECT COUNT(*) FROM turns WHERE state = 'failed'"),
        1
    );

    // The creator raises the cap; the next turn's context says what happened.
    price_model_and_cap_hour(&home, 25_000_000);
    let (ok, report) = run_agent(&home, &model, &["--max-turns", "1"]).await;
    assert!(ok, "{report}");
    let requests = model.requests();
    let system = requests[1].body["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.contains("your last inference call was not made: the hour budget refused it"),
        "{system}"
    );
    // Told once.
    model.push(write_call(3));
    let (ok, _) = run_agent(&home, &model, &["--max-turns", "1"]).await;
    assert!(ok);
    let requests = model.requests();
    let system = requests[2].body["messages"][0]["content"].as_str().unwrap();
    assert!(!system.contains("your last inference call was not made"));
}

/// The daily cap refuses a call the way the hourly one does, and the run rests until a day
/// after the spend that filled it.
#[tokio::test]
async fn the_daily_inference_cap_refuses_a_call() {
    let home = TestHome::new();
    home.init();
    price_model_and_cap_hour(&home, 25_000_000);
    edit_config(&home, |config| {
        config["inference"]["dailyMaxMicroUsdc"] = 250_000.into();
    });
    let model = model_for(&home).await;
    // $0.248 of a $0.25 day, well inside the hour's $25.
    model.push(write_call(1).with_usage(120_000, 1_000));
    model.push(write_call(2));
    let (ok, report) = run_agent(&home, &model, &["--max-turns", "3", "--until-sleep"]).await;
    assert!(ok, "{report}");
    assert_eq!(report["turns"], 2, "{report}");
    assert_eq!(report["end"]["reason"], "inference_unavailable", "{report}");
    assert_eq!(report["end"]["budget"], "day", "{report}");
    assert!(
        report["end"]["message"].as_str().unwrap().contains("day"),
        "{report}"
    );
    let first_spend = count(&home, "SELECT MIN(created_at) FROM inference_costs");
    assert_eq!(
        report["end"]["retry_at_ms"],
        first_spend + 86_400_001,
        "the run rests until the day has room: {report}"
    );
    assert_eq!(model.requests().len(), 1, "the refused call was never sent");
}

#[tokio::test]
async fn a_call_over_the_per_call_cap_with_no_history_left_to_cut_waits_for_the_creator() {
    let home = TestHome::new();
    home.init();
    price_model_and_cap_hour(&home, 25_000_000);
    edit_config(&home, |config| {
        // Less than the constitution, the prompt and the tool list cost on their own.
        config["inference"]["perCallMaxMicroUsdc"] = 1_000.into();
    });
    let model = model_for(&home).await;
    let (ok, report) = run_agent(&home, &model, &["--until-sleep"]).await;
    assert!(ok, "{report}");
    assert_eq!(report["end"]["reason"], "inference_unavailable", "{report}");
    assert_eq!(report["end"]["budget"], "per_call", "{report}");
    assert!(report["end"].get("retry_at_ms").is_none(), "{report}");
    assert!(
        report["end"]["hint"]
            .as_str()
            .unwrap()
            .contains("perCallMaxMicroUsdc"),
        "{report}"
    );
    assert!(model.requests().is_empty(), "nothing was sent");
}

/// A context-window error, in the shapes OpenAI, llama.cpp and Anthropic's compatible endpoint
/// send it, makes the loop summarise the older half of the history and ask again.
#[tokio::test]
async fn a_context_window_error_compacts_the_history_and_asks_again() {
    let shapes = [
        Reply::ContextLengthExceeded,
        // llama.cpp: an integer `code`, which OpenAI clients cannot decode as theirs.
        Reply::Status {
            status: 400,
            body: serde_json::json!({"error": {"code": 400, "type": "exceed_context_size_error",
                "message": "the request exceeds the available context size, try increasing it",
                "n_prompt_tokens": 9000, "n_ctx": 8192}}),
            retry_after: None,
        },
        Reply::Status {
            status: 400,
            body: serde_json::json!({"type": "error", "error": {"type": "invalid_request_error",
                "message": "prompt is too long: 215000 tokens > 200000 maximum"}}),
            retry_after: None,
        },
    ];
    for shape in shapes {
        let home = TestHome::new();
        home.init();
        let model = model_for(&home).await;
        model.push_all((0..4).map(write_call));
        model.push(shape.clone());
        model.push(Reply::text("done"));
        model.push(write_call(9));
        let (ok, report) = run_agent(&home, &model, &["--max-turns", "6"]).await;
        assert!(ok, "{shape:?}: {report}");
        assert_eq!(report["turns"], 6, "{shape:?}: {report}");
        let requests = model.requests();
        assert_eq!(requests.len(), 7, "{shape:?}");
        let (refused, retried, next) = (&requests[4], &requests[5], &requests[6]);
        assert!(
            retried.messages().len() < refused.messages().len(),
            "{shape:?}: the retry carries less history"
        );
        let system = retried.messages()[0]["content"].as_str().unwrap();
        assert!(
            system.contains("## Earlier turns (summarised)\nturn 1: "),
            "{shape:?}: {system}"
        );
        // The run keeps the smaller budget: the next turn does not send it all again.
        assert!(
            next.messages().len() < refused.messages().len() + 2,
            "{shape:?}"
        );
        model.assert_clean();
    }
}

/// With no history left to cut, a prompt the model rejects stops the loop for an hour with
/// what the creator must change.
#[tokio::test]
async fn a_prompt_that_never_fits_waits_an_hour_naming_the_setting() {
    let home = TestHome::new();
    home.init();
    let model = model_for(&home).await;
    model.push(Reply::ContextLengthExceeded);
    let (ok, report) = run_agent(&home, &model, &["--until-sleep"]).await;
    assert!(ok, "{report}");
    assert_eq!(report["end"]["reason"], "inference_unavailable", "{report}");
    let hint = report["end"]["hint"].as_str().unwrap();
    assert!(hint.contains("contextWindow"), "{report}");
    let retry_at = report["end"]["retry_at_ms"].as_i64().unwrap();
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    assert!(retry_at > now + 3_000_000, "{report}");
    assert_eq!(model.requests().len(), 1, "no retry without history to cut");
}

/// No turn leaves the model's view without a trace: past the 50 it carries whole, 30 keep a
/// summary line each and everything older is counted, in a long run and in a new run alike.
#[tokio::test]
async fn turns_beyond_the_context_are_summarised_never_dropped() {
    let home = TestHome::new();
    home.init();
    let model = model_for(&home).await;
    model.push_all((0..86).map(write_call));
    let (ok, report) = run_agent(&home, &model, &["--max-turns", "85"]).await;
    assert!(ok, "{report}");
    let (ok, report) = run_agent(&home, &model, &["--max-turns", "1"]).await;
    assert!(ok, "{report}");
    // Without the digest the last run left, the next one counts it all from state.db.
    let kept = rusqlite::Connection::open(home.path("state.db"))
        .unwrap()
        .execute("DELETE FROM kv WHERE key = 'history_digest'", [])
        .unwrap();
    assert_eq!(kept, 1, "the runs left their digest");
    model.push(write_call(86));
    let (ok, report) = run_agent(&home, &model, &["--max-turns", "1"]).await;
    assert!(ok, "{report}");
    let requests = model.requests();
    assert_eq!(requests.len(), 87);
    // Turn 85 of the long run, from its memory; turn 86, by a new run from the digest the
    // long run left; turn 87, from state.db alone.
    for (request, digest, first_line, first_whole) in [
        (
            &requests[84],
            "turns 1 to 4 (4 turns): write_file x4; 0 calls failed",
            5,
            35,
        ),
        (
            &requests[85],
            "turns 1 to 5 (5 turns): write_file x5; 0 calls failed",
            6,
            36,
        ),
        (
            &requests[86],
            "turns 1 to 6 (6 turns): write_file x6; 0 calls failed",
            7,
            37,
        ),
    ] {
        let system = request.messages()[0]["content"].as_str().unwrap();
        let summary = system
            .split("## Earlier turns (summarised)\n")
            .nth(1)
            .unwrap_or_else(|| panic!("no summary: {system}"));
        let lines: Vec<&str> = summary.lines().collect();
        assert_eq!(lines[0], digest, "{summary}");
        assert_eq!(lines.len(), 31, "{summary}");
        assert!(
            lines[1].starts_with(&format!("turn {first_line}: ")),
            "{summary}"
        );
        assert!(
            lines[30].starts_with(&format!("turn {}: ", first_whole - 1)),
            "{summary}"
        );
        // The first turn carried whole is the one after the last summary line.
        let first_input = request.messages()[2]["tool_calls"][0]["function"]["arguments"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            first_input.contains(&format!("notes/{}.md", first_whole - 1)),
            "{first_input}"
        );
    }
    model.assert_clean();
}

/// `inference.maxToolCallsPerTurn` bounds a turn: the calls past it are not run and the model
/// is told so in their results; a bound of 0 is refused naming the key.
#[tokio::test]
async fn calls_past_the_per_turn_cap_are_not_run_and_the_model_is_told() {
    let home = TestHome::new();
    home.init();
    edit_config(&home, |config| {
        config["inference"]["maxToolCallsPerTurn"] = 2.into();
    });
    let model = model_for(&home).await;
    model.push(Reply::tool_calls((0..3).map(|i| {
        ScriptedCall::new(
            format!("k{i}"),
            "write_file",
            format!(r#"{{"path":"capped/{i}.md","content":"x"}}"#),
        )
    })));
    model.push(Reply::text("ok"));
    let (ok, report) = run_agent(&home, &model, &["--max-turns", "2"]).await;
    assert!(ok, "{report}");
    assert_eq!(count(&home, "SELECT COUNT(*) FROM tool_calls"), 2);
    assert!(home.path("workspace/capped/1.md").exists());
    assert!(!home.path("workspace/capped/2.md").exists());
    let second = &model.requests()[1];
    let third = second
        .messages()
        .iter()
        .find(|m| m["role"] == "tool" && m["tool_call_id"] == "k2")
        .expect("the third call is answered");
    let content = third["content"].as_str().unwrap();
    assert!(
        content.contains("QUOTA_EXCEEDED") && content.contains("only 2 tool calls"),
        "{content}"
    );
    model.assert_clean();

    edit_config(&home, |config| {
        config["inference"]["maxToolCallsPerTurn"] = 0.into();
    });
    let out = home.run(&["status", "--json"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("inference.maxToolCallsPerTurn"),
        "{}",
        stderr(&out)
    );
}

/// Polls `probe` every 50 ms until it is true, failing after `limit`.
async fn wait_until(what: &str, limit: std::time::Duration, mut probe: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !probe() {
        assert!(started.elapsed() < limit, "timed out waiting until {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_crashed_stretch_is_restarted_and_a_second_run_is_refused() {
    let home = TestHome::new();
    home.init();
    let model = model_for(&home).await;
    model.push(Reply::tool_call("c1", "exec", r#"{"command":"sleep 30"}"#));
    model.set_fallback(Some(Reply::tool_call(
        "s1",
        "sleep",
        r#"{"duration_seconds":600,"reason":"resting"}"#,
    )));
    let run = spawn_run(&home, &model);
    let pid = run.id().unwrap();
    wait_until("the call runs", std::time::Duration::from_secs(20), || {
        count(
            &home,
            "SELECT COUNT(*) FROM tool_calls WHERE status = 'running'",
        ) == 1
    })
    .await;

    // One run per home.
    let second = spawn_run(&home, &model).wait_with_output().await.unwrap();
    assert!(!second.status.success());
    let error: serde_json::Value = serde_json::from_slice(&second.stderr).unwrap();
    assert_eq!(error["code"], "BUSY", "{error}");
    assert!(
        error["hint"]
            .as_str()
            .unwrap()
            .contains("one automaton runs one home")
    );

    // The stretch (the thinking child of `run`) dies hard in the middle of the call.
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    let stretch: i32 = children.split_whitespace().next().unwrap().parse().unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(stretch).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    // `run` marks the call interrupted and starts a new stretch after its backoff.
    wait_until(
        "a new stretch asks the model",
        std::time::Duration::from_secs(30),
        || model.requests().len() >= 2,
    )
    .await;
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM tool_calls WHERE status = 'interrupted'"
        ),
        1
    );
    let request = &model.requests()[1];
    let messages = request.body["messages"].as_array().unwrap();
    let last = messages.last().unwrap()["content"].as_str().unwrap();
    assert!(last.contains("ended in a crash"), "{last}");

    let out = stop_with(
        run,
        rustix::process::Signal::TERM,
        std::time::Duration::from_secs(20),
    )
    .await;
    assert!(out.status.success(), "exit 0 on SIGTERM");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["interrupted_calls"], 1, "{summary}");
    assert_eq!(summary["stretches"], 2, "{summary}");
}

/// The pid of `run`'s stretch (its only child), once it has one.
fn stretch_of(run_pid: u32) -> i32 {
    let children =
        std::fs::read_to_string(format!("/proc/{run_pid}/task/{run_pid}/children")).unwrap();
    children.split_whitespace().next().unwrap().parse().unwrap()
}

/// Whether some process holds the home's stretch lock.
fn stretch_lock_held(home: &TestHome) -> bool {
    let file = std::fs::File::open(home.path("stretch.lock")).unwrap();
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared) {
        Ok(()) => false,
        Err(rustix::io::Errno::WOULDBLOCK) => true,
        Err(err) => panic!("{err}"),
    }
}

#[tokio::test]
async fn a_stretch_whose_run_dies_stops_and_a_new_run_waits_for_it() {
    let home = TestHome::new();
    home.init();
    let model = model_for(&home).await;
    model.push(Reply::tool_call("c1", "exec", r#"{"command":"sleep 30"}"#));
    model.set_fallback(Some(Reply::tool_call(
        "s1",
        "sleep",
        r#"{"duration_seconds":600,"reason":"resting"}"#,
    )));
    let mut run = spawn_run(&home, &model);
    let pid = run.id().unwrap();
    wait_until("the call runs", std::time::Duration::from_secs(20), || {
        count(
            &home,
            "SELECT COUNT(*) FROM tool_calls WHERE status = 'running'",
        ) == 1
    })
    .await;
    assert!(stretch_lock_held(&home));
    let stretch = stretch_of(pid);

    // While a stretch holds the lock, no run starts beside it, even with the run lock free.
    run.start_kill().unwrap();
    run.wait().await.unwrap();
    // The orphaned stretch was sent SIGTERM by the kernel: it cancels its call, persists the
    // turn and exits, releasing the lock.
    wait_until(
        "the orphaned stretch exits",
        std::time::Duration::from_secs(20),
        || !stretch_lock_held(&home),
    )
    .await;
    assert!(
        std::fs::read_to_string(format!("/proc/{stretch}/stat"))
            .map_or(true, |stat| stat.contains(") Z ")),
        "the stretch is gone"
    );
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM tool_calls WHERE status = 'running'"
        ),
        0,
        "the stretch settled its own call"
    );
    assert_eq!(
        count(&home, "SELECT COUNT(*) FROM turns WHERE state = 'running'"),
        0
    );
    // A new run starts and its stretch thinks again.
    let (ok, report) = run_agent(&home, &model, &["--until-sleep"]).await;
    assert!(ok, "{report}");
    assert_eq!(report["interrupted_calls"], 0, "{report}");
    assert_eq!(report["end"]["reason"], "slept", "{report}");
}

#[tokio::test]
async fn a_run_refuses_to_start_beside_a_stretch_still_finishing() {
    let home = TestHome::new();
    home.init();
    let model = model_for(&home).await;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(home.path("stretch.lock"))
        .unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();
    let out = spawn_run(&home, &model).wait_with_output().await.unwrap();
    assert!(!out.status.success());
    let error: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(error["code"], "BUSY", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("stretch"),
        "{error}"
    );
    assert!(error["hint"].as_str().unwrap().contains("wait"), "{error}");
    assert!(model.requests().is_empty());
    drop(lock);
    model.push(write_call(1));
    let (ok, report) = run_agent(&home, &model, &["--max-turns", "1"]).await;
    assert!(ok, "{report}");
}

/// Runs `automaton stretch --json --wake-stdin` with `reason` on stdin.
async fn stretch_with_wake(
    home: &TestHome,
    model: &ScriptedModel,
    reason: &str,
    parent_pid: Option<u32>,
) -> std::process::Output {
    use tokio::io::AsyncWriteExt;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_automaton"));
    command
        .arg("--home")
        .arg(home.root())
        .args(["stretch", "--json", "--max-turns", "1", "--wake-stdin"])
        .env("OPENAI_BASE_URL", model.base_url())
        .env("OPENAI_API_KEY", "sk-test")
        .env_remove("AUTOMATON_HOME")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(pid) = parent_pid {
        command.arg("--parent-pid").arg(pid.to_string());
    }
    let mut child = command.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(reason.as_bytes()).await.unwrap();
    drop(stdin);
    child.wait_with_output().await.unwrap()
}

#[tokio::test]
async fn a_wake_reason_arrives_on_stdin_and_is_delivered_only_once_a_model_reads_it() {
    let home = TestHome::new();
    home.init();
    let model = model_for(&home).await;
    let reason = "the tier changed; the reason is long and private ".repeat(50);

    // The provider refuses the request: the reason was read by no model.
    model.push(Reply::status(400, "bad request"));
    let out = stretch_with_wake(&home, &model, &reason, Some(std::process::id())).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["end"]["reason"], "inference_unavailable", "{report}");
    assert_eq!(report["wake_delivered"], false, "{report}");

    // The next attempt carries it to the model, and says so.
    model.push(write_call(1));
    let out = stretch_with_wake(&home, &model, &reason, Some(std::process::id())).await;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["wake_delivered"], true, "{report}");
    let request = model.requests().last().unwrap().clone();
    let last = request.body["messages"].as_array().unwrap().last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(last.contains(reason.trim_end()), "{last}");

    // A stretch whose parent is not who it says refuses to run.
    let out = stretch_with_wake(&home, &model, "x", Some(1)).await;
    assert!(!out.status.success());
    let error: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert!(
        error["message"].as_str().unwrap().contains("is gone"),
        "{error}"
    );
}

/// Records a balance reading the way the heartbeat's credit check does.
fn read_balance(home: &TestHome, micro_usdc: u64, at_ms: i64) {
    let mut db = automaton_tools::db::StateDb::open(
        &home.path("state.db"),
        automaton_runtime::state::ALL_SCHEMAS,
    )
    .unwrap();
    automaton_runtime::survival::observe(
        &mut db,
        &automaton_runtime::config::SurvivalThresholds::default(),
        Ok(automaton_tools::money::Usdc(micro_usdc)),
        "test",
        at_ms,
    )
    .unwrap();
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn tiers_change_the_model_the_prompt_and_whether_the_loop_runs() {
    let home = TestHome::new();
    home.init();
    edit_config(&home, |config| {
        config["inference"]["model"] = "big-model".into();
        config["inference"]["lowComputeModel"] = "cheap-model".into();
    });
    let model = model_for(&home).await;

    // $0.30: low compute — the cheaper model, and the model is told.
    read_balance(&home, 300_000, now_ms());
    model.push(write_call(1));
    let (ok, report) = run_agent(&home, &model, &["--max-turns", "1"]).await;
    assert!(ok, "{report}");
    let request = &model.requests()[0];
    assert_eq!(request.body["model"], "cheap-model");
    let system = request.body["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("Survival tier: low_compute"), "{system}");
    assert!(system.contains("Balance: $0.30"), "{system}");

    // An hour at zero: dead — no stretch, no model call, the state says so.
    for minutes_ago in [61, 41, 21, 1] {
        read_balance(&home, 0, now_ms() - minutes_ago * 60_000);
    }
    read_balance(&home, 0, now_ms());
    let (ok, report) = run_agent(&home, &model, &["--until-sleep"]).await;
    assert!(ok, "{report}");
    assert_eq!(report["end"]["reason"], "dead", "{report}");
    assert_eq!(report["stretches"], 0, "{report}");
    assert_eq!(model.requests().len(), 1);
    let status = json(&home.run(&["status", "--json"]));
    assert_eq!(status["survival"]["tier"], "dead", "{status}");
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM tier_changes WHERE to_tier = 'dead'"
        ),
        1
    );

    // Funded: revived, the creator's model again.
    read_balance(&home, 20_000_000, now_ms());
    model.push(write_call(2));
    let (ok, report) = run_agent(&home, &model, &["--max-turns", "1"]).await;
    assert!(ok, "{report}");
    assert_eq!(model.requests()[1].body["model"], "big-model");
    assert_eq!(
        json(&home.run(&["status", "--json"]))["survival"]["tier"],
        "high"
    );
}

#[tokio::test]
async fn a_wake_event_from_another_process_wakes_a_sleeping_run() {
    let home = TestHome::new();
    home.init();
    let model = model_for(&home).await;
    model.set_fallback(Some(Reply::tool_call(
        "s1",
        "sleep",
        r#"{"duration_seconds":600,"reason":"nothing to do"}"#,
    )));
    let run = spawn_run(&home, &model);
    wait_until(
        "the agent sleeps",
        std::time::Duration::from_secs(20),
        || {
            model.requests().len() == 1
                && count(
                    &home,
                    "SELECT COUNT(*) FROM kv WHERE key = 'agent_state' AND value = 'sleeping'",
                ) == 1
        },
    )
    .await;

    // Another process (here, the test) raises an event through the same table.
    let db = automaton_tools::db::StateDb::open(
        &home.path("state.db"),
        automaton_runtime::state::ALL_SCHEMAS,
    )
    .unwrap();
    let wake = automaton_heartbeat::WakeEvents::new(
        std::sync::Arc::new(std::sync::Mutex::new(db)),
        std::sync::Arc::new(automaton_tools::clock::SystemClock),
    );
    wake.raise(
        automaton_heartbeat::WakeRequest::new("inbox", "a customer wrote to you"),
        "test",
    )
    .await
    .unwrap();
    wait_until(
        "the run wakes for the event",
        std::time::Duration::from_secs(15),
        || model.requests().len() >= 2,
    )
    .await;
    let request = &model.requests()[1];
    let system = request.body["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("a customer wrote to you"), "{system}");
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM wake_events WHERE consumed_by = 'agent'"
        ),
        1,
        "consumed exactly once"
    );
    let out = stop_with(
        run,
        rustix::process::Signal::TERM,
        std::time::Duration::from_secs(20),
    )
    .await;
    assert!(out.status.success());
}

#[tokio::test]
async fn the_agent_changes_what_its_heartbeat_runs_with_modify_heartbeat() {
    let home = TestHome::new();
    home.init();
    let model = model_for(&home).await;
    model.push(Reply::tool_call(
        "h1",
        "modify_heartbeat",
        r#"{"action":"disable","name":"report_metrics"}"#,
    ));
    let (ok, report) = run_agent(&home, &model, &["--max-turns", "1"]).await;
    assert!(ok, "{report}");
    let yaml = std::fs::read_to_string(home.path("heartbeat.yml")).unwrap();
    let config = automaton_heartbeat::HeartbeatConfig::parse(&yaml).unwrap();
    let entry = config
        .entries
        .iter()
        .find(|entry| entry.name == "report_metrics")
        .unwrap();
    assert!(!entry.enabled, "{yaml}");
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM heartbeat_schedules WHERE name = 'report_metrics' AND enabled = 0"
        ),
        1,
        "the table the scheduler runs from changed with the file"
    );
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM tool_calls WHERE name = 'modify_heartbeat' AND status = 'succeeded'"
        ),
        1
    );
}

/// A stretch killed outright (SIGKILL after the stop grace) leaves its turn `running` and
/// `agent_state` `running`; `status` must not call that a run, and the next run repairs both.
#[tokio::test]
async fn a_turn_a_killed_stretch_left_running_is_marked_interrupted_by_the_next_run() {
    let home = TestHome::new();
    home.init();
    {
        let conn = rusqlite::Connection::open(home.path("state.db")).unwrap();
        conn.execute_batch(
            "INSERT INTO turns (started_at, state, input_source) VALUES (1000, 'running', 'wake');
             INSERT INTO kv (key, value, updated_at) VALUES ('agent_state', 'running', 1000)
                 ON CONFLICT (key) DO UPDATE SET value = 'running';",
        )
        .unwrap();
    }
    let status = json(&home.run(&["status", "--json"]));
    assert_eq!(status["state"], "interrupted", "no run holds the home");
    let model = model_for(&home).await;
    model.push(write_call(0));
    let (ok, report) = run_agent(&home, &model, &["--max-turns", "1"]).await;
    assert!(ok, "{report}");
    assert_eq!(report["turns"], 1);
    assert_eq!(
        count(
            &home,
            "SELECT COUNT(*) FROM turns WHERE started_at = 1000 AND state = 'interrupted' AND ended_at IS NOT NULL"
        ),
        1
    );
    assert_eq!(
        count(&home, "SELECT COUNT(*) FROM turns WHERE state = 'running'"),
        0
    );
    let status = json(&home.run(&["status", "--json"]));
    assert_eq!(status["state"], "sleeping");
}

/// Without a provider the run cannot think, but it says so on stderr in one line even in JSON
/// mode (stdout is kept for the final report), keeps its heartbeat beating, and stops cleanly.
#[tokio::test]
async fn a_run_without_a_provider_says_why_on_stderr_and_keeps_beating() {
    use tokio::io::AsyncBufReadExt;
    let home = TestHome::new();
    home.init();
    // `init` schedules nothing; the run's heartbeat driver does, from heartbeat.yml.
    assert_eq!(count(&home, "SELECT COUNT(*) FROM heartbeat_schedules"), 0);
    let mut run = tokio::process::Command::new(env!("CARGO_BIN_EXE_automaton"))
        .arg("--home")
        .arg(home.root())
        .args(["run", "--json"])
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("AUTOMATON_HOME")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(run.stderr.take().unwrap()).lines();
    let notice = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("stderr ended early");
            if line.contains("OPENAI_API_KEY") {
                return line;
            }
        }
    })
    .await
    .expect("the run names OPENAI_API_KEY on stderr");
    let notice: serde_json::Value = serde_json::from_str(&notice).unwrap();
    assert!(
        notice["notice"]
            .as_str()
            .unwrap()
            .contains("no inference provider"),
        "{notice}"
    );
    wait_until(
        "the heartbeat scheduled its tasks",
        std::time::Duration::from_secs(20),
        || {
            count(
                &home,
                "SELECT COUNT(*) FROM heartbeat_schedules WHERE name = 'heartbeat_ping' AND next_run_at IS NOT NULL",
            ) == 1
        },
    )
    .await;
    let out = stop_with(
        run,
        rustix::process::Signal::TERM,
        std::time::Duration::from_secs(10),
    )
    .await;
    assert!(out.status.success(), "exit 0 on SIGTERM");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["end"]["reason"], "no_provider", "{report}");
}

/// The prompt a turn sends fits the model's window: the "Earlier turns (summarised)" section
/// (the digest, the 30 older turns' lines, the recent turns `fit` left out) is inside the
/// budget, not added on top of a history already fitted to it.
#[tokio::test]
async fn the_summary_section_is_inside_the_window_budget() {
    const WINDOW: usize = 30_000;
    let home = TestHome::new();
    home.init();
    edit_config(&home, |config| {
        config["models"] = serde_json::json!([{
            "name": "gpt-4o-mini",
            "contextWindow": WINDOW,
            "inputPricePerMillionMicroUsdc": 0,
            "outputPricePerMillionMicroUsdc": 0,
            "supportsTools": true
        }]);
    });
    let model = model_for(&home).await;
    // 16 calls a turn (the cap) to a tool that does not exist: cheap to answer, never
    // read-only, never the same twice, and each one a long summary line.
    let turns = 82;
    model.push_all((0..turns).map(|turn| {
        Reply::tool_calls((0..16).map(|i| {
            ScriptedCall::new(
                format!("c{turn}_{i}"),
                "a_tool_whose_rather_long_name_does_not_exist_anywhere",
                format!(r#"{{"turn":{turn},"i":{i}}}"#),
            )
        }))
    }));
    let (ok, report) = run_agent(&home, &model, &["--max-turns", &turns.to_string()]).await;
    assert!(ok, "{report}");
    let count = automaton_runtime::agent::tokens::count;
    let last = model.requests().pop().unwrap();
    let mut sent = 0;
    for message in last.messages() {
        sent += 4 + count(message["content"].as_str().unwrap_or(""));
        for call in message["tool_calls"].as_array().into_iter().flatten() {
            sent += count(&call["function"].to_string());
        }
    }
    for tool in last.body["tools"].as_array().into_iter().flatten() {
        sent += count(&tool.to_string());
    }
    let system = last.messages()[0]["content"].as_str().unwrap();
    let summary = system
        .split("## Earlier turns (summarised)\n")
        .nth(1)
        .unwrap();
    assert!(
        sent <= WINDOW,
        "a prompt of about {sent} tokens was sent to a {WINDOW}-token window; its summary section alone is {} tokens in {} lines ({} of them whole turns carried)",
        count(summary),
        summary.lines().count(),
        last.messages()
            .iter()
            .filter(|m| m["role"] == "user")
            .count()
            - 1
    );
}

/// "Every attempt is a row in inference_costs" (ARCHITECTURE, Inference), the one a shutdown
/// abandons too: the provider has the prompt and bills it, and the hourly and daily caps are
/// counted from those rows.
#[tokio::test]
async fn an_inference_call_a_shutdown_abandons_is_still_an_attempt_on_record() {
    let home = TestHome::new();
    home.init();
    let model = model_for(&home).await;
    model.push(
        Reply::text("too late")
            .with_usage(50_000, 10)
            .delayed(60_000),
    );
    let child = spawn_run(&home, &model);
    wait_until(
        "the model is asked",
        std::time::Duration::from_secs(20),
        || !model.requests().is_empty(),
    )
    .await;
    let out = stop_with(
        child,
        rustix::process::Signal::TERM,
        std::time::Duration::from_secs(20),
    )
    .await;
    assert!(out.status.success(), "exit 0 on SIGTERM");
    assert_eq!(
        model.requests().len(),
        1,
        "the provider was sent the prompt"
    );
    assert_eq!(
        count(&home, "SELECT COUNT(*) FROM inference_costs"),
        1,
        "the abandoned attempt is not on record"
    );
}
