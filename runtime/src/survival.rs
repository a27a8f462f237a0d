//! Survival tiers (seed 003): how well funded the automaton is, decided from its credit
//! balance, and what that changes.
//!
//! Each reading of the balance goes through [`observe`]: it is cached in `kv` with when and
//! where it was read, so an unreachable source leaves the last known value in place, shown as
//! stale, and moves nothing; the tier follows from [`SurvivalThresholds`], except that a
//! balance at zero is critical until fresh readings have shown zero for `deadAfterZeroMs` (one
//! hour) continuously — no gap between readings longer than half that — and only then dead; any
//! positive balance revives. Every change of tier is a `tier_changes` row.
//!
//! What a tier changes is read from [`current`] by the parts it concerns: the router uses the
//! cheaper model at low compute and below, the heartbeat multiplies its intervals and sheds
//! tasks, `run` starts no stretch while dead, and the prompt tells the model.

use crate::config::SurvivalThresholds;
use automaton_tools::db::StateDb;
use automaton_tools::money::Usdc;
use automaton_tools::survival::SurvivalTier;
use rusqlite::{OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};

/// The kv key of the last balance read.
const BALANCE_KEY: &str = "credits_balance";
/// The kv key of the moment the balance was first seen at zero in the current stretch at zero.
const ZERO_SINCE_KEY: &str = "credits_zero_since";
/// The kv key of the current tier.
const TIER_KEY: &str = "survival_tier";

/// A balance as last read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedBalance {
    /// The balance, micro-USDC.
    pub balance_micro_usdc: Usdc,
    /// When it was read, epoch ms.
    pub observed_at_ms: i64,
    /// Where it was read from.
    pub source: String,
}

/// The automaton's standing, as `status`, the prompt and the heartbeat see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Standing {
    /// The tier; `None` until a balance has ever been read.
    pub tier: Option<SurvivalTier>,
    /// The last balance read, if any.
    pub balance: Option<CachedBalance>,
    /// Whether that reading is older than `staleAfterMs`.
    pub stale: bool,
    /// Since when the balance has been zero, if it is.
    pub zero_since_ms: Option<i64>,
}

impl Standing {
    /// The tier to act on: an automaton whose balance was never read acts as normal.
    pub fn effective_tier(&self) -> SurvivalTier {
        self.tier.unwrap_or(SurvivalTier::Normal)
    }

    /// Whether the router should use the cheaper model.
    pub fn low_compute(&self) -> bool {
        self.effective_tier() <= SurvivalTier::LowCompute
    }
}

/// What one observation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observation {
    /// The standing after it.
    pub standing: Standing,
    /// The tier before, when it changed.
    pub changed_from: Option<Option<SurvivalTier>>,
    /// The read error, when the source failed and the cache was used.
    pub error: Option<String>,
}

/// The balance and tier lines of the prompt's status layer.
pub fn describe(standing: &Standing, now_ms: i64) -> (Option<String>, Option<String>) {
    let balance = standing.balance.as_ref().map(|cached| {
        let age_min = (now_ms - cached.observed_at_ms).max(0) / 60_000;
        let stale = if standing.stale {
            " — stale: the source has not answered since"
        } else {
            ""
        };
        format!(
            "{} (read {age_min} min ago from {}{stale})",
            cached.balance_micro_usdc, cached.source
        )
    });
    let tier = standing.tier.map(|tier| {
        let meaning = match tier {
            SurvivalTier::High | SurvivalTier::Normal => "ordinary operation",
            SurvivalTier::LowCompute => {
                "the cheaper model is in use and the heartbeat is slower; shed non-essential work and look for income"
            }
            SurvivalTier::Critical => {
                "near zero: distress is being signalled; do only what brings funding, and tell your creator"
            }
            SurvivalTier::Dead => "dead: the loop stops until funding arrives",
        };
        format!("{tier} ({meaning})")
    });
    (balance, tier)
}

/// The tier a positive or zero balance means, before the dead grace period.
pub fn tier_for(balance: Usdc, thresholds: &SurvivalThresholds) -> SurvivalTier {
    if balance > thresholds.high_above_micro_usdc {
        SurvivalTier::High
    } else if balance > thresholds.normal_above_micro_usdc {
        SurvivalTier::Normal
    } else if balance > thresholds.low_compute_above_micro_usdc {
        SurvivalTier::LowCompute
    } else {
        SurvivalTier::Critical
    }
}

fn kv_get(tx: &rusqlite::Connection, key: &str) -> rusqlite::Result<Option<String>> {
    tx.query_row("SELECT value FROM kv WHERE key = ?1", [key], |row| {
        row.get(0)
    })
    .optional()
}

fn kv_put(tx: &Transaction<'_>, key: &str, value: &str, now_ms: i64) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO kv (key, value, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        params![key, value, now_ms],
    )
    .map(|_| ())
}

fn read_standing(
    conn: &rusqlite::Connection,
    thresholds: &SurvivalThresholds,
    now_ms: i64,
) -> rusqlite::Result<Standing> {
    let tier = kv_get(conn, TIER_KEY)?.and_then(|name| name.parse().ok());
    let balance = kv_get(conn, BALANCE_KEY)?
        .and_then(|text| serde_json::from_str::<CachedBalance>(&text).ok());
    let zero_since_ms = kv_get(conn, ZERO_SINCE_KEY)?.and_then(|text| text.parse().ok());
    let stale = balance
        .as_ref()
        .is_some_and(|cached| now_ms - cached.observed_at_ms > thresholds.stale_after_ms);
    Ok(Standing {
        tier,
        balance,
        stale,
        zero_since_ms,
    })
}

/// The standing now, from the cache.
pub fn current(
    db: &StateDb,
    thresholds: &SurvivalThresholds,
    now_ms: i64,
) -> rusqlite::Result<Standing> {
    read_standing(db.conn(), thresholds, now_ms)
}

/// Records one reading of the balance from `source` (or its failure) and moves the tier.
pub fn observe(
    db: &mut StateDb,
    thresholds: &SurvivalThresholds,
    reading: Result<Usdc, String>,
    source: &str,
    now_ms: i64,
) -> Result<Observation, automaton_tools::Error> {
    db.write(|tx| {
        let before = read_standing(tx, thresholds, now_ms)?;
        let balance = match &reading {
            // The source is unreachable: the last known balance and tier stay in force, and
            // nothing moves — a cached value proves no time at zero and no funding.
            Err(error) => {
                return Ok(Observation {
                    standing: before,
                    changed_from: None,
                    error: Some(error.clone()),
                });
            }
            Ok(balance) => {
                let cached = CachedBalance {
                    balance_micro_usdc: *balance,
                    observed_at_ms: now_ms,
                    source: source.to_owned(),
                };
                let text = serde_json::to_string(&cached)
                    .map_err(|err| rusqlite::Error::ToSqlConversionFailure(Box::new(err)))?;
                kv_put(tx, BALANCE_KEY, &text, now_ms)?;
                *balance
            }
        };
        let mut zero_since = before.zero_since_ms;
        let (tier, reason) = if balance == Usdc::ZERO {
            // Time at zero is continuous only while fresh readings keep coming: a gap longer
            // than half the grace period (the source was down, the process was stopped) starts
            // the count again.
            let previous_reading = before.balance.as_ref().map(|cached| cached.observed_at_ms);
            let gap_broken = previous_reading
                .is_none_or(|at| now_ms - at > thresholds.dead_after_zero_ms / 2);
            if zero_since.is_none() || gap_broken {
                zero_since = Some(now_ms);
                kv_put(tx, ZERO_SINCE_KEY, &now_ms.to_string(), now_ms)?;
            }
            match zero_since {
                Some(since) if now_ms - since >= thresholds.dead_after_zero_ms => (
                    SurvivalTier::Dead,
                    format!(
                        "the balance has been zero since {since} (epoch ms), for at least {} ms",
                        thresholds.dead_after_zero_ms
                    ),
                ),
                _ => (
                    SurvivalTier::Critical,
                    "the balance is zero; dead after the grace period unless funded".to_owned(),
                ),
            }
        } else {
            if zero_since.is_some() {
                tx.execute("DELETE FROM kv WHERE key = ?1", [ZERO_SINCE_KEY])?;
            }
            let tier = tier_for(balance, thresholds);
            let reason = if before.tier == Some(SurvivalTier::Dead) {
                format!("funded: the balance is {balance} again")
            } else {
                format!("the balance is {balance}")
            };
            (tier, reason)
        };
        let changed_from = (before.tier != Some(tier)).then_some(before.tier);
        if changed_from.is_some() {
            kv_put(tx, TIER_KEY, tier.as_str(), now_ms)?;
            tx.execute(
                "INSERT INTO tier_changes (from_tier, to_tier, balance_micro_usdc, reason, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    before.tier.map(SurvivalTier::as_str),
                    tier.as_str(),
                    i64::try_from(balance.atoms()).unwrap_or(i64::MAX),
                    reason,
                    now_ms
                ],
            )?;
            tracing::info!(from = ?before.tier, to = %tier, %balance, "survival tier changed");
        }
        Ok(Observation {
            standing: read_standing(tx, thresholds, now_ms)?,
            changed_from,
            error: None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use automaton_tools::db::StateDb;

    const MINUTE: i64 = 60_000;

    fn db() -> (tempfile::TempDir, StateDb) {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(&dir.path().join("state.db"), crate::state::ALL_SCHEMAS).unwrap();
        (dir, db)
    }

    fn changes(db: &StateDb) -> Vec<(Option<String>, String)> {
        let mut statement = db
            .conn()
            .prepare("SELECT from_tier, to_tier FROM tier_changes ORDER BY id")
            .unwrap();
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn thresholds_follow_seed_003() {
        let t = SurvivalThresholds::default();
        assert_eq!(tier_for(Usdc::dollars(6), &t), SurvivalTier::High);
        assert_eq!(tier_for(Usdc::dollars(5), &t), SurvivalTier::Normal);
        assert_eq!(tier_for(Usdc::cents(51), &t), SurvivalTier::Normal);
        assert_eq!(tier_for(Usdc::cents(50), &t), SurvivalTier::LowCompute);
        assert_eq!(tier_for(Usdc::cents(11), &t), SurvivalTier::LowCompute);
        assert_eq!(tier_for(Usdc::cents(10), &t), SurvivalTier::Critical);
        assert_eq!(tier_for(Usdc::ZERO, &t), SurvivalTier::Critical);
    }

    #[test]
    fn dead_takes_a_continuous_hour_at_zero_and_funding_revives() {
        let (_dir, mut db) = db();
        let t = SurvivalThresholds::default();
        let start = 1_000_000;
        let first = observe(&mut db, &t, Ok(Usdc::ZERO), "test", start).unwrap();
        assert_eq!(first.standing.tier, Some(SurvivalTier::Critical));
        assert_eq!(first.changed_from, Some(None));
        for minute in 1..=59 {
            let seen =
                observe(&mut db, &t, Ok(Usdc::ZERO), "test", start + minute * MINUTE).unwrap();
            assert_eq!(
                seen.standing.tier,
                Some(SurvivalTier::Critical),
                "minute {minute}"
            );
        }
        let dead = observe(&mut db, &t, Ok(Usdc::ZERO), "test", start + 60 * MINUTE).unwrap();
        assert_eq!(dead.standing.tier, Some(SurvivalTier::Dead));
        assert_eq!(dead.changed_from, Some(Some(SurvivalTier::Critical)));
        let revived = observe(
            &mut db,
            &t,
            Ok(Usdc::dollars(1)),
            "test",
            start + 61 * MINUTE,
        )
        .unwrap();
        assert_eq!(revived.standing.tier, Some(SurvivalTier::Normal));
        assert_eq!(revived.standing.zero_since_ms, None);
        assert_eq!(
            changes(&db),
            vec![
                (None, "critical".to_owned()),
                (Some("critical".to_owned()), "dead".to_owned()),
                (Some("dead".to_owned()), "normal".to_owned()),
            ]
        );
        let reason: String = db
            .conn()
            .query_row(
                "SELECT reason FROM tier_changes ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(reason.starts_with("funded"), "{reason}");
    }

    #[test]
    fn a_positive_reading_in_the_hour_restarts_the_grace_period() {
        let (_dir, mut db) = db();
        let t = SurvivalThresholds::default();
        observe(&mut db, &t, Ok(Usdc::ZERO), "test", 0).unwrap();
        observe(&mut db, &t, Ok(Usdc::cents(1)), "test", 30 * MINUTE).unwrap();
        observe(&mut db, &t, Ok(Usdc::ZERO), "test", 40 * MINUTE).unwrap();
        observe(&mut db, &t, Ok(Usdc::ZERO), "test", 65 * MINUTE).unwrap();
        let later = observe(&mut db, &t, Ok(Usdc::ZERO), "test", 90 * MINUTE).unwrap();
        assert_eq!(
            later.standing.tier,
            Some(SurvivalTier::Critical),
            "50 minutes at zero"
        );
        let dead = observe(&mut db, &t, Ok(Usdc::ZERO), "test", 100 * MINUTE).unwrap();
        assert_eq!(dead.standing.tier, Some(SurvivalTier::Dead));
    }

    #[test]
    fn an_unreachable_source_keeps_the_last_balance_and_shows_it_stale() {
        let (_dir, mut db) = db();
        let t = SurvivalThresholds::default();
        assert_eq!(current(&db, &t, 0).unwrap().tier, None);
        let unknown = observe(&mut db, &t, Err("down".into()), "test", 0).unwrap();
        assert_eq!(
            unknown.standing.tier, None,
            "nothing known, nothing invented"
        );
        assert_eq!(unknown.standing.effective_tier(), SurvivalTier::Normal);
        observe(&mut db, &t, Ok(Usdc::cents(30)), "test", 1_000).unwrap();
        let failed = observe(&mut db, &t, Err("connection refused".into()), "test", 2_000).unwrap();
        assert_eq!(failed.error.as_deref(), Some("connection refused"));
        assert_eq!(failed.standing.tier, Some(SurvivalTier::LowCompute));
        assert!(failed.standing.low_compute());
        assert_eq!(
            failed.standing.balance.as_ref().unwrap().observed_at_ms,
            1_000
        );
        assert!(!failed.standing.stale);
        let much_later = current(&db, &t, 1_000 + t.stale_after_ms + 1).unwrap();
        assert!(much_later.stale);
        assert_eq!(changes(&db).len(), 1, "a failed read changes nothing");
    }

    #[test]
    fn an_outage_or_a_gap_at_zero_does_not_count_toward_death() {
        let (_dir, mut db) = db();
        let t = SurvivalThresholds::default();
        observe(&mut db, &t, Ok(Usdc::ZERO), "test", 0).unwrap();
        // The source is down for 61 minutes: the cache proves nothing.
        for minute in 1..=61 {
            let seen = observe(&mut db, &t, Err("down".into()), "test", minute * MINUTE).unwrap();
            assert_eq!(
                seen.standing.tier,
                Some(SurvivalTier::Critical),
                "minute {minute}"
            );
        }
        // The first fresh reading after a 61-minute gap starts the count again.
        let back = observe(&mut db, &t, Ok(Usdc::ZERO), "test", 62 * MINUTE).unwrap();
        assert_eq!(back.standing.tier, Some(SurvivalTier::Critical));
        assert_eq!(back.standing.zero_since_ms, Some(62 * MINUTE));
        // Readings every 20 minutes (a slowed heartbeat) are continuous.
        for step in 1..=3 {
            observe(
                &mut db,
                &t,
                Ok(Usdc::ZERO),
                "test",
                (62 + 20 * step) * MINUTE,
            )
            .unwrap();
        }
        assert_eq!(
            current(&db, &t, 122 * MINUTE).unwrap().tier,
            Some(SurvivalTier::Dead)
        );
    }
}
