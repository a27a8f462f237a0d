//! Commands a creator uses to ask about the tool system without running anything:
//! `policy check` ("would this call be allowed, and why?"), `audit verify` (has the record
//! been rewritten?) and `tools` (what can the agent do, and what does it cost in tokens?).

use crate::error::{Error, Result};
use crate::output::{OutputMode, print_json};
use crate::toolbox::Toolbox;
use automaton_tools::audit;
use automaton_tools::tool::{Provenance, ToolError};
use serde::Serialize;

/// One rule in `policy check`'s answer.
#[derive(Debug, Serialize)]
pub struct CheckedRule {
    /// The gate.
    pub gate: String,
    /// The rule's id.
    pub rule: String,
    /// What it decided.
    pub decision: String,
    /// Why.
    pub reason: String,
}

/// `policy check`'s answer.
#[derive(Debug, Serialize)]
pub struct PolicyCheck {
    /// The effective decision.
    pub decision: String,
    /// The call's risk level (`null` when the call could not be assessed).
    pub risk: Option<String>,
    /// Every matched rule.
    pub rules: Vec<CheckedRule>,
}

/// Evaluates a call without running or recording it.
pub fn policy_check(
    toolbox: &Toolbox,
    tool: &str,
    args: &str,
    provenance: &str,
) -> Result<PolicyCheck> {
    let provenance: Provenance = provenance.parse().map_err(|message| Error::InvalidInput {
        message,
        hint: "pass --provenance self (the default), creator, heartbeat, parent, child or external:<source>".to_owned(),
    })?;
    let args: serde_json::Value =
        serde_json::from_str(args).map_err(|err| Error::InvalidInput {
            message: format!("--args is not JSON: {err}"),
            hint: "pass the arguments as a JSON object, e.g. --args '{\"command\":\"ls -la\"}'"
                .to_owned(),
        })?;
    let db = toolbox.lock_db()?;
    let answer = match toolbox
        .dispatcher
        .evaluate(tool, &args, provenance, None, &db)
    {
        Ok(evaluation) => PolicyCheck {
            decision: evaluation.outcome.decision.as_str().to_owned(),
            risk: Some(evaluation.assessment.risk.as_str().to_owned()),
            rules: evaluation
                .outcome
                .verdict
                .rules
                .into_iter()
                .map(|rule| CheckedRule {
                    gate: rule.gate,
                    rule: rule.rule,
                    decision: rule.decision.as_str().to_owned(),
                    reason: rule.reason,
                })
                .collect(),
        },
        Err(err) => PolicyCheck {
            decision: "forbid".to_owned(),
            risk: None,
            rules: vec![CheckedRule {
                gate: "dispatch".to_owned(),
                rule: serde_json::to_value(err.code())
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_lowercase))
                    .unwrap_or_default(),
                decision: "forbid".to_owned(),
                reason: format!("{err}; {}", hint_of(&err)),
            }],
        },
    };
    Ok(answer)
}

fn hint_of(err: &ToolError) -> String {
    match err {
        ToolError::RespondToModel(e) => e.hint.clone(),
        ToolError::Denied { .. } | ToolError::Cancelled { .. } | ToolError::Fatal(_) => {
            String::new()
        }
    }
}

/// `audit verify`'s answer.
#[derive(Debug, Serialize)]
pub struct AuditReport {
    /// The chain check.
    #[serde(flatten)]
    pub chain: audit::VerifyReport,
    /// Calls whose intent was recorded but whose result never was.
    pub interrupted: Vec<audit::InterruptedCall>,
}

/// Walks the receipt chain.
pub fn audit_verify(home: &crate::home::Home, toolbox: &Toolbox) -> Result<AuditReport> {
    let db = toolbox.lock_db()?;
    let mut chain = audit::verify(db.conn())?;
    if chain.ok
        && let Some(broken) = crate::anchor::check(home, &db)?
    {
        chain.ok = false;
        chain.first_broken = Some(broken);
    }
    let mut interrupted = audit::interrupted_calls(db.conn())?;
    interrupted.extend(audit::running_calls(db.conn())?);
    Ok(AuditReport { chain, interrupted })
}

/// Prints the audit report.
pub fn print_audit(report: &AuditReport, mode: OutputMode) {
    match mode {
        OutputMode::Json => print_json(report),
        OutputMode::Human => {
            if report.chain.ok {
                println!(
                    "The record is intact: {} receipts, head {}.",
                    report.chain.receipts, report.chain.head
                );
            } else if let Some(broken) = &report.chain.first_broken {
                println!(
                    "BROKEN at receipt {} (call {}): {}",
                    broken.seq, broken.call_id, broken.problem
                );
            }
            for call in &report.interrupted {
                println!(
                    "interrupted: {} ({}) started at {} never finished",
                    call.call_id, call.tool, call.started_at
                );
            }
        }
    }
}

/// One line of `automaton tools`.
#[derive(Debug, Serialize)]
pub struct ToolLine {
    /// The name.
    pub name: String,
    /// Its category.
    pub category: String,
    /// Its base risk level.
    pub risk: String,
    /// Its description.
    pub description: String,
}

/// The registered tools.
pub fn tool_lines(toolbox: &Toolbox) -> Vec<ToolLine> {
    toolbox
        .dispatcher
        .registry()
        .specs()
        .into_iter()
        .map(|spec| ToolLine {
            name: spec.name.to_string(),
            category: spec.category.as_str().to_owned(),
            risk: spec.risk.as_str().to_owned(),
            description: spec.description.clone(),
        })
        .collect()
}
