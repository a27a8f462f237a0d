//! The `automaton` binary. The only place that reads the process environment: it resolves
//! the home, installs logging, dispatches the command and turns errors into an exit status.

use automaton_runtime::cli::{
    AuditCommand, Cli, Command, ConfigCommand, HeartbeatCommand, InitArgs, PolicyCommand,
};
use automaton_runtime::config::parse_address;
use automaton_runtime::error::{Error, Result};
use automaton_runtime::home::Home;
use automaton_runtime::init::{InitOptions, init};
use automaton_runtime::output::{OutputMode, print_error, print_json};
use automaton_runtime::run_cmd::RunBounds;
use automaton_runtime::setup::DetectedEnvironment;
use automaton_runtime::toolbox::{self, ProcessFacts};
use automaton_runtime::{
    config, doctor, heartbeat_host, inspect, logging, platform_cmd, prompt_cmd, run_cmd, setup,
    status, stretch,
};
use automaton_tools::clock::SystemClock;
use automaton_treasury::Passphrase;
use clap::Parser;
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    // Everything the runtime creates is private unless it says otherwise.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let mode = OutputMode::detect(cli.json);
    let home = Home::resolve(
        cli.home.clone(),
        std::env::var_os("AUTOMATON_HOME").map(Into::into),
        std::env::home_dir(),
    );
    let Some(home) = home else {
        print_error(
            mode,
            &Error::InvalidInput {
                message: "cannot find a home directory for the automaton".to_owned(),
                hint: "pass --home DIR or set AUTOMATON_HOME".to_owned(),
            },
        );
        return ExitCode::FAILURE;
    };
    let log_level = config::AutomatonConfig::load(&home.config())
        .map(|config| config.log_level.as_filter())
        .unwrap_or("info");
    logging::init(home.logs(), log_level);
    match run(cli.command, &home, mode) {
        Ok(code) => code,
        Err(err) => {
            tracing::warn!(code = ?err.code(), error = %err, "command failed");
            print_error(mode, &err);
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command, home: &Home, mode: OutputMode) -> Result<ExitCode> {
    let clock = SystemClock;
    match command {
        Command::Init(args) => {
            let report = init(home, init_options(args)?, &clock)?;
            match mode {
                OutputMode::Json => print_json(&report),
                OutputMode::Human if report.created => println!(
                    "Created {} at {}\n  address: {}\n  creator: {}\nFund it by sending USDC on Base to {}.",
                    report.name,
                    report.home.display(),
                    report.address,
                    report.creator,
                    report.address
                ),
                OutputMode::Human => {
                    println!(
                        "{} already lives at {} ({}); nothing was changed.",
                        report.name,
                        report.home.display(),
                        report.address
                    );
                    for note in &report.ignored {
                        println!("  note: {note}");
                    }
                }
            }
        }
        Command::Setup => {
            let env = DetectedEnvironment {
                sandbox_id: std::env::var("CONWAY_SANDBOX_ID")
                    .ok()
                    .filter(|v| !v.is_empty()),
                openai_key_in_env: std::env::var_os("OPENAI_API_KEY").is_some(),
            };
            let report = setup::run(home, &env, &clock)?;
            if mode == OutputMode::Json {
                print_json(&report);
            }
        }
        Command::Status => {
            status::print(
                &status::gather(home, &process_facts(), Arc::new(clock))?,
                mode,
            );
        }
        Command::Policy(PolicyCommand::Check {
            tool,
            args,
            provenance,
        }) => {
            require_home(home)?;
            let toolbox = toolbox::build(home, &process_facts(), Arc::new(clock))?;
            print_json(&inspect::policy_check(&toolbox, &tool, &args, &provenance)?);
        }
        Command::Audit(AuditCommand::Verify) => {
            require_home(home)?;
            let toolbox = toolbox::build(home, &process_facts(), Arc::new(clock))?;
            let report = inspect::audit_verify(home, &toolbox)?;
            inspect::print_audit(&report, mode);
            if !report.chain.ok {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Run {
            max_turns,
            until_sleep,
        } => {
            let summary = until_signal(|cancel| async move {
                run_cmd::run(
                    home,
                    &process_facts(),
                    Arc::new(clock),
                    RunBounds {
                        max_turns,
                        until_sleep,
                    },
                    cancel,
                    mode,
                )
                .await
            })?;
            run_cmd::print(&summary, mode);
        }
        Command::Stretch {
            max_turns,
            wake_stdin,
            parent_pid,
        } => {
            if let Some(parent_pid) = parent_pid {
                stretch::bind_to_parent(parent_pid)?;
            }
            require_home(home)?;
            let wake_reason = if wake_stdin {
                let mut reason = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut reason)
                    .map_err(Error::io("reading the wake reason from", "stdin"))?;
                Some(reason).filter(|reason| !reason.trim().is_empty())
            } else {
                None
            };
            let report = until_signal(|cancel| async move {
                stretch::run_here(
                    home,
                    &process_facts(),
                    Arc::new(clock),
                    max_turns,
                    wake_reason,
                    &cancel,
                )
                .await
            })?;
            print_json(&report);
        }
        Command::Heartbeat(command) => {
            require_home(home)?;
            let outcome = until_signal(|cancel| async move {
                let host = heartbeat_host::for_cli(home, &process_facts(), Arc::new(clock))?;
                match command {
                    HeartbeatCommand::List => {
                        heartbeat_host::print_list(&host.list(home).await?, mode);
                        Ok(ExitCode::SUCCESS)
                    }
                    HeartbeatCommand::Run { name } => {
                        let report = tokio::select! {
                            report = host.run_now(home, &name) => report?,
                            () = cancel.cancelled() => return Err(Error::InvalidInput {
                                message: format!("`heartbeat run {name}` was interrupted before the task finished"),
                                hint: "its run is recorded as failed when the lease lapses; run it again, or see `automaton heartbeat list`".to_owned(),
                            }),
                        };
                        print_json(&report);
                        Ok(if report.status == automaton_heartbeat::RunStatus::Ok {
                            ExitCode::SUCCESS
                        } else {
                            ExitCode::FAILURE
                        })
                    }
                }
            })?;
            return Ok(outcome);
        }
        Command::Platform(command) => {
            let facts = process_facts();
            let mut connector = platform_cmd::Connector::new(
                facts.env.clone(),
                facts.user_home.clone(),
                facts.exe.clone(),
            );
            // A home's automaton.json may name a Conway gateway.
            if home.is_initialized()
                && let Ok(config) = automaton_runtime::config::AutomatonConfig::load(&home.config())
            {
                connector = connector.with_config(&config, home)?;
            }
            return until_signal(|cancel| async move {
                platform_cmd::run_cli(command, &connector, mode, cancel).await
            });
        }
        Command::Prompt => {
            let report = prompt_cmd::build(home, &process_facts(), Arc::new(clock))?;
            prompt_cmd::print(&report, mode);
        }
        Command::Tools => {
            require_home(home)?;
            let toolbox = toolbox::build(home, &process_facts(), Arc::new(clock))?;
            let lines = inspect::tool_lines(&toolbox);
            match mode {
                OutputMode::Json => print_json(&lines),
                OutputMode::Human => {
                    for line in lines {
                        println!(
                            "{:<14} {:<9} {:<8} {}",
                            line.name, line.category, line.risk, line.description
                        );
                    }
                }
            }
        }
        Command::Doctor => {
            let report = doctor::examine(home);
            doctor::print(&report, mode);
            if !report.healthy {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Config(ConfigCommand::Schema) => print!("{}", config::json_schema()),
    }
    Ok(ExitCode::SUCCESS)
}

/// A command line clap refused: help and version print as usual; anything else is a
/// `{code, message, hint}` error in JSON mode (exit 2, like clap).
fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let json_requested = std::env::args().any(|arg| arg == "--json");
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) || OutputMode::detect(json_requested) == OutputMode::Human
    {
        err.exit();
    }
    let message = err
        .render()
        .to_string()
        .lines()
        .next()
        .unwrap_or("invalid command line")
        .trim_start_matches("error: ")
        .to_owned();
    let body = serde_json::json!({
        "code": "INVALID_INPUT",
        "message": message,
        "hint": "run `automaton --help` (or `automaton <command> --help`) for the commands and flags, with examples",
    });
    eprintln!("{body}");
    ExitCode::from(2)
}

/// Runs `work` on a fresh async runtime with a token that SIGTERM or SIGINT cancels.
fn until_signal<T, F, Fut>(work: F) -> Result<T>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let runtime =
        tokio::runtime::Runtime::new().map_err(Error::io("starting", "the async runtime"))?;
    let result = runtime.block_on(async {
        let cancel = CancellationToken::new();
        let signals = cancel.clone();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(Error::io("listening for", "SIGTERM"))?;
        let listener = tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            tracing::info!("shutdown requested");
            signals.cancel();
        });
        let result = work(cancel).await;
        listener.abort();
        result
    });
    // A blocking task still running (a git fetch, a slow disk) must not hold the exit.
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    result
}

/// How long exiting waits for blocking work still in flight.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

fn require_home(home: &Home) -> Result<()> {
    if home.is_initialized() {
        Ok(())
    } else {
        Err(Error::NotInitialized(home.root().to_owned()))
    }
}

/// What the tool system needs to know about this process.
fn process_facts() -> ProcessFacts {
    let exe = std::env::current_exe().unwrap_or_else(|_| "automaton".into());
    ProcessFacts {
        env: std::env::vars_os().collect(),
        user_home: std::env::home_dir().unwrap_or_else(|| "/".into()),
        exe: std::fs::canonicalize(&exe).unwrap_or(exe),
        pid: std::process::id(),
    }
}

fn init_options(args: InitArgs) -> Result<InitOptions> {
    let genesis_prompt = match (args.genesis_prompt, args.genesis_file) {
        (Some(text), _) => Some(text),
        (None, Some(path)) => {
            Some(std::fs::read_to_string(&path).map_err(Error::io("reading", &path))?)
        }
        (None, None) => None,
    };
    let creator = args
        .creator
        .map(|text| {
            parse_address(text.trim()).map_err(|message| Error::InvalidInput {
                message: format!("--creator: {message}"),
                hint: "pass the creator's address as 0x + 40 hex digits (EIP-55 or lower-case)"
                    .to_owned(),
            })
        })
        .transpose()?;
    let passphrase = match (
        args.encrypt_wallet,
        args.passphrase_file,
        args.passphrase_fd,
    ) {
        (false, _, _) => None,
        (true, Some(path), _) => Some(Passphrase::from_file(&path)?),
        (true, None, Some(fd)) => Some(Passphrase::from_fd(fd)?),
        (true, None, None) => {
            return Err(Error::InvalidInput {
                message: "--encrypt-wallet needs a passphrase source".to_owned(),
                hint: "add --passphrase-file FILE or --passphrase-fd N (never an environment variable)".to_owned(),
            });
        }
    };
    Ok(InitOptions {
        name: args.name,
        genesis_prompt,
        creator,
        creator_message: args.creator_message,
        passphrase,
        ..InitOptions::default()
    })
}
