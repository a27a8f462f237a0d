//! Decision time of the command-safety gate (`policy::command::check_command`).
//!
//! Plain `std::time` sampling (harness = false): each case is classified repeatedly and
//! the p50/p99 of the individual decision times are printed. The cases are a typical agent
//! command and a 1,000-sub-command chain, once fully classified (limit raised to 2,000) and
//! once refused by the default limit of 64. Target: p99 < 5 ms.
//!
//! Run with `cargo bench -p automaton-tools --bench command_policy`.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use automaton_tools::policy::command::{
    CommandContext, DEFAULT_MAX_SUBCOMMANDS, NamePathGuard, check_command,
};

const ITERATIONS: usize = 2_000;
const WARMUP: usize = 50;
const TARGET_P99: Duration = Duration::from_millis(5);

struct Case<'a> {
    name: &'a str,
    command: String,
    subcommands: u32,
    max_subcommands: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn main() {
    let home = Path::new("/root/.automaton");
    let user_home = Path::new("/root");
    let guard = NamePathGuard::new(home, user_home);
    let chain = vec!["echo a"; 1_000].join("; ");
    let cases = [
        Case {
            name: "typical",
            command: "git log -n 5 | head -20 && ls -la src".to_owned(),
            subcommands: 3,
            max_subcommands: DEFAULT_MAX_SUBCOMMANDS,
        },
        Case {
            name: "chain-1000 (limit 2000)",
            command: chain.clone(),
            subcommands: 1_000,
            max_subcommands: 2_000,
        },
        Case {
            name: "chain-1000 (limit 64)",
            command: chain,
            subcommands: 1_000,
            max_subcommands: DEFAULT_MAX_SUBCOMMANDS,
        },
    ];
    println!(
        "{:<26} {:>9} {:>11} {:>11} {:>11} {:>13} {:>9}",
        "case", "decision", "p50", "p99", "max", "p50/command", "p99<5ms"
    );
    for case in &cases {
        let ctx = CommandContext {
            home,
            user_home,
            cwd: Path::new("/root/project"),
            runtime_pid: 4242,
            runtime_exe: Path::new("/usr/local/bin/automaton"),
            max_subcommands: case.max_subcommands,
            paths: &guard,
        };
        let decision = check_command(&case.command, &ctx).decision();
        for _ in 0..WARMUP {
            black_box(check_command(black_box(&case.command), &ctx));
        }
        let mut samples = Vec::with_capacity(ITERATIONS);
        for _ in 0..ITERATIONS {
            let start = Instant::now();
            black_box(check_command(black_box(&case.command), &ctx));
            samples.push(start.elapsed());
        }
        samples.sort();
        let (p50, p99) = (percentile(&samples, 0.50), percentile(&samples, 0.99));
        println!(
            "{:<26} {:>9} {:>11.3?} {:>11.3?} {:>11.3?} {:>13.3?} {:>9}",
            case.name,
            decision.as_str(),
            p50,
            p99,
            samples[samples.len() - 1],
            p50 / case.subcommands,
            if p99 < TARGET_P99 { "yes" } else { "NO" },
        );
    }
}
