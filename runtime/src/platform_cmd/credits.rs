//! `automaton platform credits …`: the account's prepaid balance that inference through the
//! platform spends — the balance (the default), the ledger, and grants (the admin's alone).
//! Amounts are typed in USD (`5`, `0.25`) and carried as integer micro-USD.

use super::{platform_error, print};
use crate::cli::CreditsCommand;
use crate::error::Result;
use crate::output::OutputMode;
use automaton_platform::Platform;
use automaton_platform::credits::{CreditGrant, format_usd, parse_usd};

/// Runs one `credits` command (`None`: the balance).
pub async fn run(
    platform: &dyn Platform,
    command: Option<CreditsCommand>,
    mode: OutputMode,
) -> Result<()> {
    let fail = platform_error;
    match command.unwrap_or(CreditsCommand::Balance) {
        CreditsCommand::Balance => {
            let balance = platform.credits().await.map_err(fail)?;
            print(&balance, mode, |b| {
                format!(
                    "{} has {} in credits{}",
                    b.account,
                    format_usd(b.balance_micro_usd),
                    b.updated_at_ms.map_or_else(
                        || " (never funded)".to_owned(),
                        |at| format!(" (changed at {at} ms)")
                    )
                )
            });
        }
        CreditsCommand::History { limit, before } => {
            let history = platform.credit_history(limit, before).await.map_err(fail)?;
            print(&history, mode, |h| {
                let mut out = format!("{}'s credits, newest first", h.account);
                for entry in &h.entries {
                    out.push_str(&format!(
                        "\n  #{:<6} {:>14} {:<9} balance {:>14}  {}{}",
                        entry.id,
                        format_usd(entry.amount_micro_usd),
                        entry.kind.as_str(),
                        format_usd(entry.balance_after_micro_usd),
                        entry.reason,
                        if entry.shortfall_micro_usd > 0 {
                            format!(" (short {})", format_usd(entry.shortfall_micro_usd))
                        } else {
                            String::new()
                        }
                    ));
                }
                if let Some(before) = h.next_before {
                    out.push_str(&format!("\n  older: --before {before}"));
                }
                out
            });
        }
        CreditsCommand::Grant { amount, reason } => {
            let request = CreditGrant {
                amount_micro_usd: parse_usd(&amount).map_err(fail)?,
                reason,
            };
            request.validate().map_err(fail)?;
            let granted = platform.grant_credits(&request, None).await.map_err(fail)?;
            print(&granted, mode, |g| {
                format!(
                    "granted {} to {}; the balance is {}",
                    format_usd(g.entry.amount_micro_usd),
                    g.balance.account,
                    format_usd(g.balance.balance_micro_usd)
                )
            });
        }
    }
    Ok(())
}
