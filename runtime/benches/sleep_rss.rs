//! What a sleeping `automaton run` costs the machine: resident memory and CPU time.
//!
//! Starts the scripted model, initialises a home in a temp dir, spawns the (release) binary
//! `automaton run` against the model, whose every answer is a `sleep` call for 600 s, waits
//! until state.db says the agent sleeps after its turn, lets it settle, then reads `VmRSS`,
//! `VmHWM` (peak RSS), `RssAnon`/`RssFile` and `Threads` from `/proc/PID/status` and the CPU
//! time (`utime + stime` of `/proc/PID/stat`) spent over a 60 s window of sleep (the heartbeat driver keeps beating in it). Ends it with
//! SIGTERM and checks it exits cleanly. Target: sleeping RSS < 20 MB.
//!
//! The turns themselves run in a separate stretch process (`automaton stretch`) that exits
//! when the agent sleeps, so what is measured is everything that stays resident between
//! turns; a thinking stretch peaks around 60 MB (the tokenizer's vocabulary is most of it).
//!
//! Reproduce (the bench profile builds the binary with release settings):
//!
//! ```text
//! cargo bench -p automaton-runtime --bench sleep_rss
//! ```
//!
//! `bench/run-benchmarks.sh` runs it with the other figures (start-up, prompt tokens, turns).

use automaton_runtime::config::parse_address;
use automaton_runtime::home::Home;
use automaton_runtime::init::{self, InitOptions};
use automaton_test_support::{Reply, ScriptedModel};
use automaton_tools::clock::SystemClock;
use std::error::Error;
use std::time::{Duration, Instant};

type BenchResult<T = ()> = Result<T, Box<dyn Error>>;

const CREATOR: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
/// How long the sleeping process is watched for CPU use.
const WINDOW: Duration = Duration::from_secs(60);
/// `/proc/PID/stat` counts CPU time in USER_HZ ticks, 100 a second on every Linux ABI.
const TICKS_PER_SECOND: f64 = 100.0;
const RSS_TARGET_KB: u64 = 20 * 1024;

#[tokio::main]
async fn main() -> BenchResult {
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
    let model = ScriptedModel::start().await?;
    model.set_fallback(Some(Reply::tool_call(
        "s1",
        "sleep",
        r#"{"duration_seconds":600,"reason":"benchmark: sleeping"}"#,
    )));

    let started = Instant::now();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_automaton"))
        .arg("--home")
        .arg(home.root())
        .args(["run", "--json"])
        .env("OPENAI_BASE_URL", model.base_url())
        .env("OPENAI_API_KEY", "sk-bench")
        .env_remove("AUTOMATON_HOME")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or("the runtime exited at once")?;

    wait_until_asleep(&home, &mut child).await?;
    let asleep_after = started.elapsed();
    // The loop records the anchor after the run ends; let that finish before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = ProcStatus::read(pid)?;
    let cpu_before = cpu_ticks(pid)?;
    tokio::time::sleep(WINDOW).await;
    let cpu_after = cpu_ticks(pid)?;
    let after = ProcStatus::read(pid)?;

    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait()).await??;

    let requests = model.requests().len();
    #[expect(clippy::cast_precision_loss, reason = "tick counts are far below 2^52")]
    let cpu_ms = (cpu_after.saturating_sub(cpu_before)) as f64 / TICKS_PER_SECOND * 1000.0;
    println!("sleep_rss: `automaton run` asleep after its first turn");
    println!(
        "  asleep after          {:8.0} ms (model requests: {requests})",
        asleep_after.as_secs_f64() * 1000.0
    );
    for (name, status) in [("settled", &before), ("after 60 s", &after)] {
        println!(
            "  {name:<10} VmRSS {:6} KiB  VmHWM {:6} KiB  RssAnon {:6} KiB  RssFile {:6} KiB  threads {}",
            status.vm_rss, status.vm_hwm, status.rss_anon, status.rss_file, status.threads
        );
    }
    println!(
        "  CPU over {} s of sleep: {cpu_ms:.0} ms (utime+stime, 10 ms resolution)",
        WINDOW.as_secs()
    );
    println!("  exit after SIGTERM: {exit}");
    println!(
        "target sleeping RSS < {} MB: VmRSS {:.1} MB, peak {:.1} MB — {}",
        RSS_TARGET_KB / 1024,
        kib_to_mb(after.vm_rss),
        kib_to_mb(after.vm_hwm),
        if after.vm_rss < RSS_TARGET_KB {
            "met"
        } else {
            "MISSED"
        }
    );
    if !exit.success() {
        return Err(format!("the runtime exited with {exit} after SIGTERM").into());
    }
    Ok(())
}

#[expect(clippy::cast_precision_loss, reason = "KiB counts are far below 2^52")]
fn kib_to_mb(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Polls state.db until the agent has finished a turn and its state is `sleeping`.
async fn wait_until_asleep(home: &Home, child: &mut tokio::process::Child) -> BenchResult {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait()? {
            return Err(format!("the runtime exited before sleeping: {status}").into());
        }
        let asleep = rusqlite::Connection::open(home.state_db())
            .and_then(|conn| {
                conn.query_row(
                    "SELECT (SELECT COUNT(*) FROM turns WHERE state = 'completed') > 0
                        AND (SELECT value FROM kv WHERE key = 'agent_state') = 'sleeping'",
                    [],
                    |row| row.get::<_, bool>(0),
                )
            })
            .unwrap_or(false);
        if asleep {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("the runtime did not fall asleep within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The memory lines of `/proc/PID/status`, in KiB.
struct ProcStatus {
    vm_rss: u64,
    vm_hwm: u64,
    rss_anon: u64,
    rss_file: u64,
    threads: u64,
}

impl ProcStatus {
    fn read(pid: u32) -> BenchResult<Self> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| -> BenchResult<u64> {
            let line = text
                .lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .ok_or_else(|| format!("/proc/{pid}/status has no {name}"))?;
            let number = line.split_whitespace().next().unwrap_or_default();
            Ok(number.parse()?)
        };
        Ok(Self {
            vm_rss: field("VmRSS")?,
            vm_hwm: field("VmHWM")?,
            rss_anon: field("RssAnon")?,
            rss_file: field("RssFile")?,
            threads: field("Threads")?,
        })
    }
}

/// User plus system CPU time of the process, in ticks.
fn cpu_ticks(pid: u32) -> BenchResult<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; the fields after it are plain numbers.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or("malformed /proc/PID/stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the whole line; `fields` starts at field 3.
    let utime: u64 = fields.get(11).ok_or("no utime")?.parse()?;
    let stime: u64 = fields.get(12).ok_or("no stime")?.parse()?;
    Ok(utime + stime)
}
