//! The local platform's credit ledger (`credit_ledger`, migration 0007): the balance is the
//! newest entry's `balance_after` (one indexed read); every change is one `BEGIN IMMEDIATE`
//! transaction that reads the balance and appends the entry, so concurrent charges never lose
//! an update and the balance never goes below zero. A charge larger than the balance takes
//! what is left and records the shortfall (the upstream was already paid when usage is
//! known); the inference proxy refuses before the call when the balance is not above zero.

use super::{LocalPlatform, Principal, store};
use crate::credits::{
    CreditBalance, CreditEntry, CreditGrant, CreditHistory, CreditKind, GrantedCredits,
    MAX_HISTORY_LIMIT,
};
use crate::error::{Error, ErrorCode, Result};
use rusqlite::{Connection, OptionalExtension, params};

/// The local platform's one account: its owner's. Sub-accounts (children) come later.
pub const OWNER_ACCOUNT: &str = "owner";

/// A charge to write: who pays, how much, and for what.
#[derive(Debug, Clone)]
pub struct Charge {
    /// The account.
    pub account: String,
    /// The cost, micro-USD (not negative).
    pub cost_micro_usd: i64,
    /// What was bought.
    pub kind: CreditKind,
    /// Why (e.g. `gpt-4o-mini: 1200 in, 300 out`).
    pub reason: String,
    /// What it is about (the request id).
    pub reference: Option<String>,
}

/// `CAPABILITY_MISSING` unless `who` is an admin: only the platform's admin token grants
/// credits; a scoped token never creates money, whatever capabilities it holds.
pub fn may_grant(who: &Principal) -> Result<()> {
    if who.admin {
        return Ok(());
    }
    Err(Error::new(
        ErrorCode::CapabilityMissing,
        "only the platform's admin token can grant credits: a scoped token never creates money",
    )
    .with_hint(
        "ask the platform's operator to run `automaton platform credits grant <USD> --reason TEXT`",
    ))
}

fn balance_of(conn: &Connection, account: &str) -> Result<CreditBalance> {
    let newest: Option<(i64, i64)> = conn
        .query_row(
            "SELECT balance_after_micro_usd, at FROM credit_ledger
             WHERE account = ?1 ORDER BY id DESC LIMIT 1",
            [account],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(match newest {
        Some((balance, at)) => CreditBalance::new(account, balance, Some(at)),
        None => CreditBalance::new(account, 0, None),
    })
}

/// Appends an entry of `amount` (signed) to `account` and returns it.
#[expect(
    clippy::too_many_arguments,
    reason = "one row's columns, named at the call"
)]
fn append(
    conn: &Connection,
    account: &str,
    now: i64,
    amount: i64,
    kind: CreditKind,
    reason: &str,
    reference: Option<&str>,
    shortfall: i64,
) -> Result<CreditEntry> {
    let before = balance_of(conn, account)?.balance_micro_usd;
    let after = before
        .checked_add(amount)
        .filter(|after| *after >= 0)
        .ok_or_else(|| {
            Error::new(
                ErrorCode::InternalError,
                format!("the ledger of {account} would leave its range ({before} + {amount})"),
            )
            .not_retryable()
        })?;
    conn.execute(
        "INSERT INTO credit_ledger (account, at, amount_micro_usd, kind, reason, reference, shortfall_micro_usd, balance_after_micro_usd)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![account, now, amount, kind.as_str(), reason, reference, shortfall, after],
    )?;
    Ok(CreditEntry {
        id: conn.last_insert_rowid(),
        account: account.to_owned(),
        at_ms: now,
        amount_micro_usd: amount,
        kind,
        reason: reason.to_owned(),
        reference: reference.map(str::to_owned),
        shortfall_micro_usd: shortfall,
        balance_after_micro_usd: after,
    })
}

impl LocalPlatform {
    /// The balance of `account`.
    pub async fn credit_balance(&self, account: &str) -> Result<CreditBalance> {
        let account = account.to_owned();
        self.on_db(move |db, _| balance_of(db.conn(), &account))
            .await
    }

    /// The ledger of `account`, newest first: at most `limit` entries (capped at
    /// [`MAX_HISTORY_LIMIT`]) older than entry `before`, when given.
    pub async fn credit_history_of(
        &self,
        account: &str,
        limit: usize,
        before: Option<i64>,
    ) -> Result<CreditHistory> {
        let account = account.to_owned();
        let limit = limit.clamp(1, MAX_HISTORY_LIMIT);
        self.on_db(move |db, _| {
            let mut stmt = db.conn().prepare(
                "SELECT id, at, amount_micro_usd, kind, reason, reference, shortfall_micro_usd, balance_after_micro_usd
                 FROM credit_ledger WHERE account = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
            )?;
            let entries = stmt
                .query_map(
                    params![account, before.unwrap_or(i64::MAX), limit as i64 + 1],
                    |r| {
                        let kind: String = r.get(3)?;
                        Ok(CreditEntry {
                            id: r.get(0)?,
                            account: account.clone(),
                            at_ms: r.get(1)?,
                            amount_micro_usd: r.get(2)?,
                            // The table's CHECK admits only the kinds there are.
                            kind: CreditKind::parse(&kind).unwrap_or(CreditKind::Inference),
                            reason: r.get(4)?,
                            reference: r.get(5)?,
                            shortfall_micro_usd: r.get(6)?,
                            balance_after_micro_usd: r.get(7)?,
                        })
                    },
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut entries = entries;
            let more = entries.len() > limit;
            entries.truncate(limit);
            let next_before = if more {
                entries.last().map(|entry| entry.id)
            } else {
                None
            };
            Ok(CreditHistory {
                account,
                entries,
                next_before,
            })
        })
        .await
    }

    /// Grants credits to the owner's account; only an admin creates money (a scoped token
    /// never does, whatever it holds). Idempotent under `idempotency_key`.
    pub async fn grant_credits_as(
        &self,
        who: &Principal,
        request: &CreditGrant,
        idempotency_key: Option<&str>,
    ) -> Result<GrantedCredits> {
        may_grant(who)?;
        request.validate()?;
        let request = request.clone();
        let key = idempotency_key.map(str::to_owned);
        let reference = who.token_id.clone();
        self.on_db(move |db, now| {
            db.write(|tx| {
                let wire = serde_json::json!({
                    "amount_micro_usd": request.amount_micro_usd,
                    "reason": request.reason,
                });
                store::idempotent(tx, key.as_deref(), "grantCredits", &wire, now, || {
                    let entry = append(
                        tx,
                        OWNER_ACCOUNT,
                        now,
                        request.amount_micro_usd,
                        CreditKind::Grant,
                        request.reason.trim(),
                        Some(&reference),
                        0,
                    )?;
                    Ok(GrantedCredits {
                        balance: CreditBalance::new(
                            OWNER_ACCOUNT,
                            entry.balance_after_micro_usd,
                            Some(now),
                        ),
                        entry,
                    })
                })
            })
        })
        .await
    }

    /// Charges `charge.cost_micro_usd` to the account: all of it when the balance covers it,
    /// else what is left, with the rest recorded as the entry's shortfall. Never below zero.
    pub async fn charge_credits(&self, charge: Charge) -> Result<CreditEntry> {
        if charge.cost_micro_usd < 0 {
            return Err(Error::new(
                ErrorCode::InternalError,
                format!(
                    "a charge of {} micro-USD is negative",
                    charge.cost_micro_usd
                ),
            )
            .not_retryable());
        }
        self.on_db(move |db, now| {
            db.write(|tx| {
                let balance = balance_of(tx, &charge.account)?.balance_micro_usd;
                let taken = charge.cost_micro_usd.min(balance);
                append(
                    tx,
                    &charge.account,
                    now,
                    -taken,
                    charge.kind,
                    &charge.reason,
                    charge.reference.as_deref(),
                    charge.cost_micro_usd - taken,
                )
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Platform;
    use automaton_tools::clock::SystemClock;
    use std::sync::Arc;

    fn platform() -> (tempfile::TempDir, LocalPlatform) {
        let dir = tempfile::tempdir().unwrap();
        let platform = LocalPlatform::open(&dir.path().join("p"), Arc::new(SystemClock)).unwrap();
        (dir, platform)
    }

    fn grant(micro: i64) -> CreditGrant {
        CreditGrant {
            amount_micro_usd: micro,
            reason: "test funds".to_owned(),
        }
    }

    fn charge(micro: i64, reference: &str) -> Charge {
        Charge {
            account: OWNER_ACCOUNT.to_owned(),
            cost_micro_usd: micro,
            kind: CreditKind::Inference,
            reason: "m: 10 in, 5 out".to_owned(),
            reference: Some(reference.to_owned()),
        }
    }

    #[tokio::test]
    async fn grants_and_charges_move_the_balance_and_never_below_zero() {
        let (_dir, platform) = platform();
        let empty = platform.credits().await.unwrap();
        assert_eq!(
            (
                empty.account.as_str(),
                empty.balance_micro_usd,
                empty.updated_at_ms
            ),
            (OWNER_ACCOUNT, 0, None)
        );
        let granted = platform
            .grant_credits(&grant(2_500_000), None)
            .await
            .unwrap();
        assert_eq!(granted.balance.balance_micro_usd, 2_500_000);
        assert_eq!(granted.balance.balance_cents, 250);
        assert_eq!(granted.entry.kind, CreditKind::Grant);

        let spent = platform
            .charge_credits(charge(1_000_000, "req-1"))
            .await
            .unwrap();
        assert_eq!(
            (spent.amount_micro_usd, spent.shortfall_micro_usd),
            (-1_000_000, 0)
        );
        assert_eq!(spent.balance_after_micro_usd, 1_500_000);
        // More than is left: takes the rest, records the shortfall, stops at zero.
        let over = platform
            .charge_credits(charge(2_000_000, "req-2"))
            .await
            .unwrap();
        assert_eq!(
            (over.amount_micro_usd, over.shortfall_micro_usd),
            (-1_500_000, 500_000)
        );
        assert_eq!(platform.credits().await.unwrap().balance_micro_usd, 0);
        let nothing = platform.charge_credits(charge(10, "req-3")).await.unwrap();
        assert_eq!(
            (nothing.amount_micro_usd, nothing.shortfall_micro_usd),
            (0, 10)
        );

        let history = platform.credit_history(2, None).await.unwrap();
        assert_eq!(history.entries.len(), 2);
        assert_eq!(history.entries[0].reference.as_deref(), Some("req-3"));
        let older = platform
            .credit_history(10, history.next_before)
            .await
            .unwrap();
        assert_eq!(older.entries.len(), 2, "{older:?}");
        assert_eq!(older.entries[1].kind, CreditKind::Grant);
        assert_eq!(older.next_before, None);

        // The ledger is append-only, even to a direct write.
        let tampered = platform
            .on_db(|db, _| {
                db.conn()
                    .execute("UPDATE credit_ledger SET balance_after_micro_usd = 99", [])
                    .map_err(Error::from)
            })
            .await;
        assert!(tampered.is_err());
    }

    #[tokio::test]
    async fn a_grant_replays_under_its_key_and_bad_grants_are_refused() {
        let (_dir, platform) = platform();
        let first = platform
            .grant_credits(&grant(1_000_000), Some("g-1"))
            .await
            .unwrap();
        let again = platform
            .grant_credits(&grant(1_000_000), Some("g-1"))
            .await
            .unwrap();
        assert_eq!(first, again);
        assert_eq!(
            platform.credits().await.unwrap().balance_micro_usd,
            1_000_000
        );
        let other = platform
            .grant_credits(&grant(2_000_000), Some("g-1"))
            .await
            .unwrap_err();
        assert_eq!(other.code, ErrorCode::Conflict);
        for bad in [
            grant(0),
            grant(-5),
            CreditGrant {
                amount_micro_usd: 1,
                reason: " ".to_owned(),
            },
        ] {
            let err = platform.grant_credits(&bad, None).await.unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidInput, "{bad:?}");
        }
        let scoped = Principal {
            token_id: "tok_scoped".to_owned(),
            admin: false,
            capabilities: crate::model::Capability::ALL.into_iter().collect(),
            projects: None,
        };
        let refused = platform
            .grant_credits_as(&scoped, &grant(1), None)
            .await
            .unwrap_err();
        assert_eq!(refused.code, ErrorCode::CapabilityMissing);
        assert_eq!(
            platform.credits().await.unwrap().balance_micro_usd,
            1_000_000
        );
    }

    #[tokio::test]
    async fn concurrent_charges_lose_no_update() {
        let (dir, platform) = platform();
        // A second platform on the same file: its own connection, so the two really race
        // on the database and only the IMMEDIATE transaction keeps them apart.
        let other = LocalPlatform::open(&dir.path().join("p"), Arc::new(SystemClock)).unwrap();
        platform
            .grant_credits(&grant(1_000_000), None)
            .await
            .unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..50 {
            let platform = if n % 2 == 0 {
                platform.clone()
            } else {
                other.clone()
            };
            tasks.spawn(async move {
                platform
                    .charge_credits(charge(7_000, &format!("r{n}")))
                    .await
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap().unwrap();
        }
        assert_eq!(
            platform.credits().await.unwrap().balance_micro_usd,
            1_000_000 - 50 * 7_000
        );
        let history = platform.credit_history(200, None).await.unwrap();
        assert_eq!(history.entries.len(), 51);
        // Each entry's balance follows from the one before it.
        for pair in history.entries.windows(2) {
            assert_eq!(
                pair[1].balance_after_micro_usd + pair[0].amount_micro_usd,
                pair[0].balance_after_micro_usd
            );
        }
    }
}
