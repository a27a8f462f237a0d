//! Decision time of the command-safety gate (`policy::command::check_command`).
//!
//! Plain `std::time` sampling (harness = false): each case is classified repeatedly and
//! the p50/p99 of the individual decision times are printed. The cases are a typical agent
//! command, a command touching protected paths, and a 1,000-sub-command chain, once fully
//! classified (limit raised to 2,000) and once refused by the default limit of 64. They run
//! as in production: the inode-based `ProtectedPaths` of a real temporary home, with the
//! working directory `<home>/workspace`. Target: p99 < 5 ms.
//!
//! Run with `cargo bench -p automaton-tools --bench command_policy`.

use std::error::Error;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use automaton_tools::policy::command::{CommandContext, DEFAULT_MAX_SUBCOMMANDS, check_command};
use automaton_tools::policy::path::ProtectedPaths;

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

/// A home like production's: protected files, a git repository, and the workspace.
fn home(root: &Path) -> Result<ProtectedPaths, Box<dyn Error>> {
    let user = root.join("user");
    let home = user.join(".automaton");
    for dir in [".git/hooks", "keys", "workspace/src"] {
        std::fs::create_dir_all(home.join(dir))?;
    }
    for file in [
        "wallet.json",
        "constitution.md",
        "state.db",
        "SOUL.md",
        "automaton.json",
        "heartbeat.yml",
        ".gitignore",
        ".git/HEAD",
        "workspace/notes.txt",
    ] {
        std::fs::write(home.join(file), "x")?;
    }
    Ok(ProtectedPaths::for_home(
        &home,
        &user,
        Path::new("/usr/local/bin/automaton"),
    ))
}

fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let root = std::fs::canonicalize(dir.path())?;
    let paths = home(&root)?;
    let cwd = paths.home().join("workspace");
    let chain = vec!["echo a"; 1_000].join("; ");
    let cases = [
        Case {
            name: "typical",
            command: "git log -n 5 | head -20 && ls -la src".to_owned(),
            subcommands: 3,
            max_subcommands: DEFAULT_MAX_SUBCOMMANDS,
        },
        Case {
            name: "paths",
            command: "cat ../constitution.md src/*.rs > out.txt && cp -r src /tmp/b && \
                      git -C .. log -n 3"
                .to_owned(),
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
            cwd: &cwd,
            runtime_pid: 4242,
            max_subcommands: case.max_subcommands,
            paths: &paths,
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
    Ok(())
}
