//! The runtime's own cost per agent turn: everything but the model's thinking.
//!
//! A home made by `init::init` in a temp dir, the scripted model (real HTTP on loopback)
//! answering each request at once with one `write_file` call to a new path, and the library's
//! `Agent::run` running turn after turn as a living agent does. A turn is timed from one model
//! request's arrival to the next's (the scripted model stamps each). The model's own latency
//! is measured apart by replaying the agent's last request body to it over a kept-alive
//! connection; overhead = turn time − that. Then `RUN_SAMPLES` one-turn runs
//! (`max_turns: Some(1)`, timed whole) show what starting and stopping a run adds (the
//! state flips `running` → `sleeping`, each a synced commit). Run twice: on an empty
//! state.db, and on one holding 100,000 earlier turns (a user, an assistant and a tool
//! message each). Target: overhead p50 < 2 ms per turn.
//!
//! After the whole turns, each step of a turn is timed alone (the same public functions the
//! loop calls, in its order) to show where the time goes.
//!
//! Reproduce (release profile; `TURNS` measured turns per scenario, default 300, at most
//! 420 because write_file is limited to 600 calls an hour):
//!
//! ```text
//! cargo bench -p automaton-runtime --bench turn_overhead
//! cargo bench -p automaton-runtime --bench turn_overhead -- 450
//! ```
//!
//! `bench/run-benchmarks.sh` runs it with the other figures (start-up, prompt tokens, sleep).

use automaton_runtime::agent::prompt::{self, PromptInputs, StatusFacts};
use automaton_runtime::agent::run::{Agent, RunEnd, RunOptions};
use automaton_runtime::agent::{history, tokens};
use automaton_runtime::config::parse_address;
use automaton_runtime::home::Home;
use automaton_runtime::inference::chat::WireRequest;
use automaton_runtime::inference::{ChatRequest, Message, Task, ToolCallRequest};
use automaton_runtime::init::{self, InitOptions};
use automaton_runtime::run_cmd;
use automaton_runtime::toolbox::{self, ProcessFacts};
use automaton_runtime::{preflight, state};
use automaton_test_support::{Reply, ScriptedModel};
use automaton_tools::clock::{Clock, SystemClock};
use automaton_tools::dispatch::{CallRequest, with_db};
use automaton_tools::tool::Provenance;
use std::error::Error;
use std::ffi::OsString;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

type BenchResult<T = ()> = Result<T, Box<dyn Error>>;

const CREATOR: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
/// Unmeasured turns first: tokenizer load, connection set-up, SQLite page cache.
const WARMUP_TURNS: usize = 20;
/// One-turn runs timed whole, for what a run's start and stop add.
const RUN_SAMPLES: usize = 50;
/// Rows seeded for the "long history" scenario.
const PRIOR_TURNS: usize = 100_000;
/// Rounds of the per-step breakdown.
const BREAKDOWN_ROUNDS: usize = 100;
/// write_file's rate limit is 600 an hour; warm-up, measured turns and breakdown share it.
const MAX_TURNS: usize = 600 - WARMUP_TURNS - RUN_SAMPLES - BREAKDOWN_ROUNDS - 10;
const OVERHEAD_TARGET_MS: f64 = 2.0;

#[tokio::main]
async fn main() -> BenchResult {
    // `cargo bench` passes `--bench`; the only other argument is the number of turns.
    let turns = match std::env::args().skip(1).find(|arg| !arg.starts_with('-')) {
        Some(text) => text.parse::<usize>()?,
        None => 300,
    };
    if turns == 0 || turns > MAX_TURNS {
        return Err(format!("turns must be 1..={MAX_TURNS}").into());
    }
    let exe = std::env::current_exe()?;
    let user_home = std::env::temp_dir();
    println!("turn_overhead: {turns} measured turns per scenario (+{WARMUP_TURNS} warm-up)\n");

    let empty = Scenario::new(&exe, &user_home)?;
    let fresh = empty.measure(turns).await?;
    fresh.print("empty state.db");

    let long = Scenario::new(&exe, &user_home)?;
    let seeded = Instant::now();
    long.seed_history(PRIOR_TURNS)?;
    println!(
        "seeded {PRIOR_TURNS} turns / {} messages in {:.1} s",
        PRIOR_TURNS * 3,
        seeded.elapsed().as_secs_f64()
    );
    let history = long.measure(turns).await?;
    history.print(&format!("{PRIOR_TURNS} prior turns"));

    println!(
        "ratio turn p50 (100k prior / empty): {:.2}x",
        history.turn.p50 / fresh.turn.p50
    );
    for (name, figures) in [("empty", &fresh), ("100k prior", &history)] {
        let overhead = figures.overhead_p50();
        println!(
            "target overhead p50 < {OVERHEAD_TARGET_MS} ms ({name}): {overhead:.3} ms — {}",
            if overhead < OVERHEAD_TARGET_MS {
                "met"
            } else {
                "MISSED"
            }
        );
    }
    Ok(())
}

/// One initialised home in its own temp dir.
struct Scenario {
    _dir: tempfile::TempDir,
    home: Home,
    facts: ProcessFacts,
}

impl Scenario {
    fn new(exe: &std::path::Path, user_home: &std::path::Path) -> BenchResult<Self> {
        let dir = tempfile::tempdir()?;
        let home = Home::at(dir.path().join("home"));
        init::init(
            &home,
            InitOptions {
                name: Some("Bench".to_owned()),
                genesis_prompt: Some("Build small web tools and sell them.".to_owned()),
                creator: Some(parse_address(CREATOR)?),
                ..InitOptions::default()
            },
            &SystemClock,
        )?;
        Ok(Self {
            _dir: dir,
            home,
            facts: ProcessFacts {
                env: Vec::new(),
                user_home: user_home.to_owned(),
                exe: exe.to_owned(),
                pid: std::process::id(),
            },
        })
    }

    /// Inserts `count` completed turns, each with a user, an assistant (one write_file call)
    /// and a tool message shaped like the ones the loop stores, in one transaction.
    fn seed_history(&self, count: usize) -> BenchResult {
        drop(state::open(&self.home)?);
        let mut conn = rusqlite::Connection::open(self.home.state_db())?;
        let tx = conn.transaction()?;
        {
            let mut turn = tx.prepare(
                "INSERT INTO turns (started_at, ended_at, state, input_source, input, thinking,
                     prompt_tokens, completion_tokens)
                 VALUES (?1, ?1, 'completed', 'self', ?2, '', 3000, 20)",
            )?;
            let mut message = tx.prepare(
                "INSERT INTO messages (turn_id, role, content, tool_calls_json, tool_call_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            let input = "Continue working toward your purpose. Act with tools, or sleep if there is nothing useful to do.";
            let start = SystemClock.now_ms() - i64::try_from(count)? * 60_000;
            for i in 0..count {
                let at = start + i64::try_from(i)? * 60_000;
                turn.execute(rusqlite::params![at, input])?;
                let turn_id = tx.last_insert_rowid();
                let call = ToolCallRequest {
                    id: format!("h{i}"),
                    name: "write_file".to_owned(),
                    arguments: format!(r#"{{"path":"history/{i}.md","content":"note {i}"}}"#),
                };
                let calls = serde_json::to_string(&[&call])?;
                let written = format!("note {i}").len();
                let result = format!(
                    r#"{{"ok":true,"result":{{"path":"history/{i}.md","bytes_written":{written}}}}}"#
                );
                message.execute(rusqlite::params![
                    turn_id,
                    "user",
                    input,
                    None::<String>,
                    None::<String>,
                    at
                ])?;
                message.execute(rusqlite::params![
                    turn_id,
                    "assistant",
                    "",
                    calls,
                    None::<String>,
                    at
                ])?;
                message.execute(rusqlite::params![
                    turn_id,
                    "tool",
                    result,
                    None::<String>,
                    call.id,
                    at
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Runs one run of `WARMUP_TURNS + turns` turns, timing the measured ones request to
    /// request, then `RUN_SAMPLES` one-turn runs, then the model's own latency on the same
    /// request body.
    async fn measure(&self, turns: usize) -> BenchResult<Figures> {
        let model = ScriptedModel::start().await?;
        let steady_turns = WARMUP_TURNS + turns;
        model.push_all((0..steady_turns + RUN_SAMPLES).map(|i| {
            Reply::tool_call(
                format!("c{i}"),
                "write_file",
                format!(r#"{{"path":"notes/{i}.md","content":"note {i}"}}"#),
            )
        }));
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let config = preflight::verify_home(&self.home)?;
        toolbox::prepare_workspace(&self.home)?;
        let toolbox = toolbox::build(&self.home, &self.facts, Arc::clone(&clock))?;
        let env: Vec<(OsString, OsString)> = vec![
            ("OPENAI_BASE_URL".into(), model.base_url().into()),
            ("OPENAI_API_KEY".into(), "sk-bench".into()),
        ];
        let inference =
            run_cmd::inference_for(&config, &self.home, &env, &toolbox, Arc::clone(&clock))?;
        let agent = Agent {
            home: &self.home,
            config: &config,
            toolbox: &toolbox,
            inference: &inference,
            clock,
        };
        let cancel = CancellationToken::new();
        let steady = RunOptions {
            max_turns: Some(u32::try_from(steady_turns)?),
            ..RunOptions::default()
        };
        let report = agent.run(&steady, &cancel, None).await?;
        if usize::try_from(report.turns)? != steady_turns || report.end != RunEnd::MaxTurns {
            return Err(format!("the run ended early: {report:?}").into());
        }
        let arrivals: Vec<Instant> = model
            .requests()
            .iter()
            .map(|request| request.received_at)
            .collect();
        let turn_samples: Vec<Duration> = arrivals
            .windows(2)
            .skip(WARMUP_TURNS)
            .map(|pair| pair[1] - pair[0])
            .collect();

        let one_turn = RunOptions {
            max_turns: Some(1),
            ..RunOptions::default()
        };
        let mut run_samples = Vec::with_capacity(RUN_SAMPLES);
        for i in 0..RUN_SAMPLES {
            let started = Instant::now();
            let report = agent.run(&one_turn, &cancel, None).await?;
            run_samples.push(started.elapsed());
            if report.turns != 1 || report.end != RunEnd::MaxTurns {
                return Err(format!("one-turn run {i} ended early: {report:?}").into());
            }
        }
        let succeeded: i64 = toolbox.lock_db()?.conn().query_row(
            "SELECT COUNT(*) FROM tool_calls WHERE status = 'succeeded'",
            [],
            |row| row.get(0),
        )?;
        if usize::try_from(succeeded)? != steady_turns + RUN_SAMPLES {
            return Err(format!(
                "only {succeeded} of {} write_file calls succeeded",
                steady_turns + RUN_SAMPLES
            )
            .into());
        }
        let violations = model.violations();
        if !violations.is_empty() {
            return Err(format!("the scripted model saw: {violations:?}").into());
        }
        let request_bytes = model
            .requests()
            .last()
            .map(|request| request.body.to_string())
            .ok_or("the model saw no request")?;
        let model_latency = model_latency(&model, &request_bytes, turns).await?;
        let steps = breakdown(&agent, &model, &config).await?;
        Ok(Figures {
            turn: Stats::of(turn_samples),
            run: Stats::of(run_samples),
            model: Stats::of(model_latency),
            request_bytes: request_bytes.len(),
            steps,
        })
    }
}

/// Each step of a turn (as `run.rs` takes them) timed alone, `BREAKDOWN_ROUNDS` times, so the
/// turn's time can be laid out by where it goes. A copy of the loop's sequence, kept to the
/// library's public functions: if the loop changes, this layout may drift from it, which is
/// why the turn itself is measured whole above.
#[expect(
    clippy::too_many_lines,
    reason = "one turn's steps, read top to bottom"
)]
async fn breakdown(
    agent: &Agent<'_>,
    model: &ScriptedModel,
    config: &automaton_runtime::config::AutomatonConfig,
) -> BenchResult<Vec<(&'static str, Stats)>> {
    let mut laps = Laps::default();
    let input = "Continue working toward your purpose. Act with tools, or sleep if there is nothing useful to do.";
    let cancel = CancellationToken::new();
    for i in 0..BREAKDOWN_ROUNDS {
        let started = Instant::now();
        preflight::verify_constitution(agent.home, config)?;
        laps.add("verify constitution (sha256 of the file)", started);

        let started = Instant::now();
        let (prior, history_turns) = with_db(&agent.toolbox.db, |db| {
            let prior: i64 = db
                .conn()
                .query_row("SELECT COUNT(*) FROM turns", [], |row| row.get(0))?;
            let history =
                history::recent_turns(db, 50).map_err(|err| automaton_tools::Error::Corrupt {
                    path: "state.db".into(),
                    detail: err.to_string(),
                })?;
            Ok((prior, history))
        })
        .await?;
        laps.add(
            "state.db reads (COUNT turns, last 50 turns; a run's first turn only)",
            started,
        );

        let started = Instant::now();
        with_db(&agent.toolbox.db, |_| Ok(())).await?;
        laps.add(
            "one hop to the blocking pool (empty with_db; ~13 per turn)",
            started,
        );

        let started = Instant::now();
        with_db(&agent.toolbox.db, move |db| {
            // A value that changes every round: writing the value a key holds commits nothing.
            state::kv_set(db, "bench", &i.to_string(), 0).map_err(|err| {
                automaton_tools::Error::Corrupt {
                    path: "state.db".into(),
                    detail: err.to_string(),
                }
            })
        })
        .await?;
        laps.add(
            "one synced state.db write txn (x1 per turn: write_file's intent)",
            started,
        );

        let started = Instant::now();
        with_db(&agent.toolbox.db, move |db| {
            db.write_unsynced(|tx| {
                tx.execute(
                    "INSERT INTO kv (key, value, updated_at) VALUES ('bench_unsynced', ?1, 0)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [i.to_string()],
                )
            })?;
            Ok(())
        })
        .await?;
        laps.add(
            "one unsynced write txn (x4 per turn: start, cost, result, end; synced behind)",
            started,
        );

        let started = Instant::now();
        let specs = agent.toolbox.dispatcher.registry().specs();
        let tools: Vec<serde_json::Value> = specs.iter().map(|s| s.to_openai_function()).collect();
        let tool_tokens: usize = tools.iter().map(|t| tokens::count(&t.to_string())).sum();
        laps.add(
            "tool specs to JSON + their tokens (a run's first turn only)",
            started,
        );

        let started = Instant::now();
        let constitution = std::fs::read_to_string(agent.home.constitution())?;
        let soul = std::fs::read_to_string(agent.home.soul())?;
        laps.add("read constitution + soul", started);

        let started = Instant::now();
        let status = StatusFacts {
            turns: prior,
            ..StatusFacts::default()
        };
        let layers = prompt::assemble(&PromptInputs {
            config,
            constitution: &constitution,
            soul: &soul,
            skills: &[],
            tools: &specs,
            status: &status,
        });
        let system = prompt::render(&layers);
        laps.add("prompt::assemble + render (counts each layer)", started);

        let started = Instant::now();
        let fixed = tokens::count(&system) + tool_tokens + tokens::count(input);
        laps.add("tokens: system prompt + input", started);

        let started = Instant::now();
        let budget = usize::try_from(
            agent
                .inference
                .choose_model(Task::AgentTurn, false, None)
                .context_window,
        )?
        .saturating_sub(4096 + fixed);
        let (kept, dropped, history_tokens) = history::fit(history_turns, budget);
        laps.add("tokens: history::fit (50 turns)", started);
        if !dropped.is_empty() {
            return Err(format!("{} turns were dropped from the history", dropped.len()).into());
        }

        let mut messages = vec![Message::System { content: system }];
        messages.extend(kept.into_iter().flat_map(|turn| turn.messages));
        messages.push(Message::User {
            content: input.to_owned(),
        });
        // As the loop does: the layers' and the stored history's counts, no recount.
        let estimated = fixed + history_tokens;

        model.push(Reply::tool_call(
            format!("b{i}"),
            "write_file",
            format!(r#"{{"path":"breakdown/{i}.md","content":"note {i}"}}"#),
        ));
        let started = Instant::now();
        let answer = agent
            .inference
            .chat(&ChatRequest {
                task: Task::AgentTurn,
                low_compute: false,
                model_override: None,
                messages: &messages,
                tools: &tools,
                estimated_prompt_tokens: u64::try_from(estimated)?,
                turn_id: None,
            })
            .await
            .map_err(|failure| failure.to_string())?;
        laps.add(
            "Inference::chat (model included; see bare request)",
            started,
        );

        // Two parts of `Inference::chat` that are not the HTTP exchange, timed alone.
        let started = Instant::now();
        let body = WireRequest {
            model: &agent
                .inference
                .choose_model(Task::AgentTurn, false, None)
                .name,
            messages: &messages,
            max_tokens: 4096,
            stream: false,
            tools: &tools,
            tool_choice: Some("auto"),
        };
        let wire = serde_json::to_vec(&body)?;
        laps.add(
            "  of which: request JSON (WireRequest, serialised once)",
            started,
        );
        if wire.is_empty() {
            return Err("empty request body".into());
        }
        let started = Instant::now();
        agent.inference.spent_today().await?;
        laps.add(
            "  of which: budget check (one ledger read, as spent_today)",
            started,
        );

        let call = answer
            .completion
            .tool_calls
            .first()
            .ok_or("the model answered without a call")?;
        let started = Instant::now();
        let record = agent
            .toolbox
            .dispatcher
            .dispatch(
                CallRequest {
                    name: call.name.clone(),
                    arguments: call.arguments.clone(),
                    provenance: Provenance::SelfDirected,
                    turn_id: None,
                    timeout: None,
                },
                &cancel,
            )
            .await;
        laps.add("dispatch write_file (policy, audit, receipt)", started);
        if let Err(err) = record.result {
            return Err(format!("write_file failed: {err}").into());
        }

        // Two parts of the dispatch, timed alone: the policy (here on this thread, without
        // the hop to the blocking pool) and the tool's own file work.
        let args: serde_json::Value = serde_json::from_str(&call.arguments)?;
        let started = Instant::now();
        {
            let db = agent.toolbox.lock_db()?;
            agent.toolbox.dispatcher.evaluate(
                &call.name,
                &args,
                Provenance::SelfDirected,
                None,
                &db,
            )?;
        }
        laps.add(
            "  of which: assess + policy (Dispatcher::evaluate)",
            started,
        );
        let started = Instant::now();
        let dir = toolbox::workspace(agent.home).join("breakdown-io");
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::write(dir.join(format!("{i}.md")), format!("note {i}")).await?;
        laps.add(
            "  of which: the file work (tokio::fs mkdir -p + write)",
            started,
        );
    }
    Ok(laps.into_stats())
}

/// Samples per named step, in first-seen order.
#[derive(Default)]
struct Laps(Vec<(&'static str, Vec<Duration>)>);

impl Laps {
    fn add(&mut self, name: &'static str, started: Instant) {
        let took = started.elapsed();
        match self.0.iter_mut().find(|(known, _)| *known == name) {
            Some((_, samples)) => samples.push(took),
            None => self.0.push((name, vec![took])),
        }
    }

    fn into_stats(self) -> Vec<(&'static str, Stats)> {
        self.0
            .into_iter()
            .map(|(name, samples)| (name, Stats::of(samples)))
            .collect()
    }
}

/// The scripted model's own latency: the same request body, the same kind of reply, over a
/// kept-alive connection, `WARMUP_TURNS` unmeasured first.
async fn model_latency(
    model: &ScriptedModel,
    body: &str,
    count: usize,
) -> BenchResult<Vec<Duration>> {
    let client = reqwest::Client::new();
    let url = format!("{}/chat/completions", model.base_url());
    let mut samples = Vec::with_capacity(count);
    for i in 0..WARMUP_TURNS + count {
        model.push(Reply::tool_call(
            format!("m{i}"),
            "write_file",
            format!(r#"{{"path":"notes/m{i}.md","content":"note {i}"}}"#),
        ));
        let started = Instant::now();
        let response = client
            .post(&url)
            .header("content-type", "application/json")
            .header("authorization", "Bearer sk-bench")
            .body(body.to_owned())
            .send()
            .await?;
        let status = response.status();
        let reply = response.bytes().await?;
        let took = started.elapsed();
        if !status.is_success() || reply.is_empty() {
            return Err(format!("the scripted model answered {status}").into());
        }
        if i >= WARMUP_TURNS {
            samples.push(took);
        }
    }
    Ok(samples)
}

/// Median and 99th percentile, in milliseconds.
struct Stats {
    p50: f64,
    p99: f64,
}

impl Stats {
    fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        let at = |q: f64| {
            let last = samples.len().saturating_sub(1);
            // Nearest rank; the sample counts here are far below f64's exact-integer range.
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss,
                reason = "a rank below a few thousand"
            )]
            let rank = ((last as f64) * q).round() as usize;
            samples
                .get(rank.min(last))
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        Self {
            p50: at(0.50),
            p99: at(0.99),
        }
    }
}

struct Figures {
    /// A turn of a running agent, request to request (the model's answer included).
    turn: Stats,
    /// A whole one-turn run: start, the turn, stop.
    run: Stats,
    model: Stats,
    request_bytes: usize,
    steps: Vec<(&'static str, Stats)>,
}

impl Figures {
    fn overhead_p50(&self) -> f64 {
        self.turn.p50 - self.model.p50
    }

    fn print(&self, name: &str) {
        println!("== {name} (request body {} bytes)", self.request_bytes);
        println!(
            "  turn (request to request)   p50 {:8.3} ms   p99 {:8.3} ms",
            self.turn.p50, self.turn.p99
        );
        println!(
            "  model alone (bare request)  p50 {:8.3} ms   p99 {:8.3} ms",
            self.model.p50, self.model.p99
        );
        println!(
            "  overhead (turn - model)     p50 {:8.3} ms   p99 {:8.3} ms",
            self.overhead_p50(),
            self.turn.p99 - self.model.p99
        );
        println!(
            "  a one-turn run ({RUN_SAMPLES} runs)   p50 {:8.3} ms   p99 {:8.3} ms   (start + stop add ~{:.3} ms)",
            self.run.p50,
            self.run.p99,
            self.run.p50 - self.turn.p50
        );
        println!("  where it goes (each step alone, {BREAKDOWN_ROUNDS} rounds):");
        for (step, stats) in &self.steps {
            println!(
                "    {step:<66} p50 {:8.3} ms   p99 {:8.3} ms",
                stats.p50, stats.p99
            );
        }
        println!();
    }
}
