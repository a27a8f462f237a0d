//! `automaton status`: who this automaton is and how it stands, from the home and state.db.

use crate::config::AutomatonConfig;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::output::{OutputMode, print_json};
use crate::toolbox::{self, ProcessFacts};
use crate::{constitution, state};
use automaton_heartbeat::HeartbeatConfig;
use automaton_tools::clock::Clock;
use serde::Serialize;
use std::sync::Arc;

/// The agent's state before its first run.
const NEVER_RUN: &str = "created";

/// The status document (`automaton status --json`).
#[derive(Debug, Serialize)]
pub struct StatusReport {
    /// The automaton's name.
    pub name: String,
    /// Its wallet address (EIP-55).
    pub address: String,
    /// The creator's address (EIP-55).
    pub creator: String,
    /// The agent's lifecycle state as last recorded (`created` before the first run;
    /// `interrupted` when the record says `running` but no run holds the home).
    pub state: String,
    /// Turns recorded in state.db.
    pub turns: i64,
    /// Tools registered (the policy still judges each call).
    pub tools: usize,
    /// Tool calls whose intent was recorded but whose result never was (cut off by a crash,
    /// or running right now in another process).
    pub unfinished_calls: usize,
    /// Skills that loaded, and how many failed to.
    pub skills: SkillCounts,
    /// Heartbeat entries.
    pub heartbeats: HeartbeatCounts,
    /// Configured inference providers, in failover order.
    pub providers: Vec<String>,
    /// The model agent turns use (the creator's choice, else the first configured, else the
    /// runtime's default).
    pub model: String,
    /// Inference spent in the last 24 hours, micro-USDC.
    pub inference_spent_today_micro_usdc: u64,
    /// The survival tier, the last balance read (with when and where), and whether it is stale.
    pub survival: crate::survival::Standing,
    /// When this report was taken, epoch ms.
    pub as_of_ms: i64,
    /// The runtime's version.
    pub version: &'static str,
    /// The constitution check.
    pub constitution: ConstitutionStatus,
    /// Whether the wallet is encrypted at rest.
    pub wallet_encrypted: bool,
    /// The home directory.
    pub home: String,
}

/// Skill counts.
#[derive(Debug, Serialize)]
pub struct SkillCounts {
    /// Skills that loaded.
    pub loaded: usize,
    /// SKILL.md files that failed to load.
    pub failed: usize,
}

/// Heartbeat counts.
#[derive(Debug, Serialize)]
pub struct HeartbeatCounts {
    /// Enabled entries.
    pub enabled: usize,
    /// All entries.
    pub total: usize,
}

/// The constitution check.
#[derive(Debug, Serialize)]
pub struct ConstitutionStatus {
    /// True when the file matches its pinned hash and mode.
    pub intact: bool,
    /// The pinned SHA-256.
    pub sha256: String,
    /// What is wrong, when not intact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Gathers the status of the home.
pub fn gather(home: &Home, facts: &ProcessFacts, clock: Arc<dyn Clock>) -> Result<StatusReport> {
    if !home.is_initialized() {
        return Err(Error::NotInitialized(home.root().to_owned()));
    }
    let config = AutomatonConfig::load(&home.config())?;
    let check = constitution::verify(&home.constitution(), &config.constitution_sha256);
    let now_ms = clock.now_ms();
    let toolbox = toolbox::build(home, facts, clock)?;
    let tools = toolbox.dispatcher.registry().len();
    let db = toolbox.lock_db()?;
    let mut agent_state =
        state::kv_get(&db, "agent_state")?.unwrap_or_else(|| NEVER_RUN.to_owned());
    // A killed run leaves `running` behind (the next run repairs it); no lock held means no
    // run is going on whatever the record says.
    if agent_state == "running" && !crate::run_cmd::HomeLock::home_in_use(home)? {
        agent_state = state::INTERRUPTED.to_owned();
    }
    let turns = state::turn_count(&db)?;
    let spent_today = state::inference_spent_since(&db, now_ms - 86_400_000)?;
    let standing = crate::survival::current(&db, &config.survival, now_ms)?;
    let unfinished_calls = automaton_tools::audit::running_calls(db.conn())?.len()
        + automaton_tools::audit::interrupted_calls(db.conn())?.len();
    let heartbeat = HeartbeatConfig::load(&home.heartbeat()).map_err(|err| Error::HomeFile {
        file: "heartbeat.yml",
        message: err.to_string(),
        hint: err.hint(),
    })?;
    let skills = automaton_skills::load_skills(&home.skills());
    Ok(StatusReport {
        name: config.name.clone(),
        address: config.wallet_address.to_checksum(None),
        creator: config.creator_address.to_checksum(None),
        state: agent_state,
        turns,
        tools,
        unfinished_calls,
        skills: SkillCounts {
            loaded: skills.skills.len(),
            failed: skills.errors.len(),
        },
        heartbeats: HeartbeatCounts {
            enabled: heartbeat.entries.iter().filter(|e| e.enabled).count(),
            total: heartbeat.entries.len(),
        },
        providers: config.providers.iter().map(|p| p.name.clone()).collect(),
        model: config
            .inference
            .model
            .clone()
            .or_else(|| config.models.first().map(|m| m.name.clone()))
            .unwrap_or_else(|| crate::inference::router::DEFAULT_MODEL.to_owned()),
        inference_spent_today_micro_usdc: spent_today.atoms(),
        survival: standing,
        as_of_ms: now_ms,
        version: env!("CARGO_PKG_VERSION"),
        constitution: ConstitutionStatus {
            intact: check.is_ok(),
            sha256: config.constitution_sha256.clone(),
            problem: check.err().map(|problem| problem.to_string()),
        },
        wallet_encrypted: config.wallet_encrypted,
        home: home.root().display().to_string(),
    })
}

/// Prints the status in `mode`.
pub fn print(report: &StatusReport, mode: OutputMode) {
    match mode {
        OutputMode::Json => print_json(report),
        OutputMode::Human => {
            let constitution = if report.constitution.intact {
                "intact".to_owned()
            } else {
                format!(
                    "TAMPERED ({})",
                    report.constitution.problem.as_deref().unwrap_or("unknown")
                )
            };
            let providers = if report.providers.is_empty() {
                "none configured".to_owned()
            } else {
                report.providers.join(", ")
            };
            println!("=== AUTOMATON STATUS ===");
            println!("Name:         {}", report.name);
            println!("Address:      {}", report.address);
            println!("Creator:      {}", report.creator);
            println!("State:        {}", report.state);
            println!("Turns:        {}", report.turns);
            println!("Tools:        {}", report.tools);
            if report.unfinished_calls > 0 {
                println!(
                    "Unfinished:   {} tool calls never finished (see `automaton audit verify`)",
                    report.unfinished_calls
                );
            }
            println!(
                "Skills:       {} loaded, {} failed",
                report.skills.loaded, report.skills.failed
            );
            println!(
                "Heartbeats:   {} enabled / {} total",
                report.heartbeats.enabled, report.heartbeats.total
            );
            println!("Providers:    {providers}");
            println!("Model:        {}", report.model);
            println!(
                "Spent today:  {} on inference",
                automaton_tools::money::Usdc(report.inference_spent_today_micro_usdc)
            );
            let (balance, tier) = crate::survival::describe(&report.survival, report.as_of_ms);
            println!(
                "Tier:         {}",
                tier.unwrap_or_else(|| "unknown (no balance read yet)".to_owned())
            );
            println!(
                "Balance:      {}",
                balance.unwrap_or_else(|| "unknown (no credit source has answered yet)".to_owned())
            );
            println!("Constitution: {constitution}");
            println!(
                "Wallet:       {}",
                if report.wallet_encrypted {
                    "encrypted"
                } else {
                    "plaintext (0600)"
                }
            );
            println!("Home:         {}", report.home);
            println!("Version:      {}", report.version);
        }
    }
}
