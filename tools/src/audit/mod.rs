//! The audit trail: every tool call writes an intent row (with its policy decision) before it
//! runs and a result row after; every state-changing call appends a content-addressed receipt
//! to a hash chain (seed 004). A crash between intent and result leaves a `running` row that
//! the next start reports as interrupted. [`verify`] walks the chain and names the first
//! broken link, so the creator can prove the record was not rewritten.

pub mod canonical;

use crate::policy::PolicyOutcome;
use crate::policy::engine::CallHistory;
use crate::tool::{Category, Effect, Provenance, RiskLevel};
use canonical::{canonical_json, sha256_hex};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;

/// The `prev_hash` of the first receipt.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Results are stored up to this many bytes (the hash covers exactly what is stored).
pub const STORED_RESULT_CAP: usize = 64 * 1024;

/// A call's lifecycle in `tool_calls.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    /// Intent written; running.
    Running,
    /// Finished with a result.
    Succeeded,
    /// Ran and failed.
    Failed,
    /// Refused by policy; nothing ran.
    Denied,
    /// Refused before policy (unknown tool, malformed arguments); nothing ran.
    Rejected,
    /// Stopped by cancellation or timeout.
    Cancelled,
    /// Found `running` at start: the runtime died mid-call.
    Interrupted,
}

impl CallStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Denied => "denied",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
            Self::Interrupted => "interrupted",
        }
    }
}

/// The intent of one call.
#[derive(Debug, Clone)]
pub struct Intent<'a> {
    /// The call id.
    pub call_id: &'a str,
    /// The turn, when run by the loop.
    pub turn_id: Option<i64>,
    /// The tool's name as called.
    pub tool: &'a str,
    /// Its category (`None` when the tool is unknown).
    pub category: Option<Category>,
    /// The call's risk (`None` when it was rejected before assessment).
    pub risk: Option<RiskLevel>,
    /// The call's effect (`None` when it was rejected before assessment).
    pub effect: Option<Effect>,
    /// Canonical JSON of the arguments.
    pub args_json: &'a str,
    /// Who caused it.
    pub provenance: Provenance,
    /// When, epoch ms.
    pub started_at: i64,
}

/// Writes the intent row and its policy decision. `status` is `Running` for an allowed call,
/// `Denied` or `Rejected` for one that will not run.
pub fn record_intent(
    tx: &Transaction<'_>,
    intent: &Intent<'_>,
    outcome: &PolicyOutcome,
    status: CallStatus,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO tool_calls (id, turn_id, name, args_json, provenance, decision, status,
             category, risk, effect, started_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        intent.call_id,
        intent.turn_id,
        intent.tool,
        intent.args_json,
        intent.provenance.to_string(),
        outcome.decision.as_str(),
        status.as_str(),
        intent.category.map(Category::as_str),
        intent.risk.map(RiskLevel::as_str),
        intent.effect.map(Effect::as_str),
        intent.started_at,
    ])?;
    tx.prepare_cached(
        "INSERT INTO policy_decisions (call_id, tool, provenance, decision, rules_json, decided_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        intent.call_id,
        intent.tool,
        intent.provenance.to_string(),
        outcome.decision.as_str(),
        serde_json::to_string(&outcome.verdict.rules).unwrap_or_else(|_| "[]".to_owned()),
        intent.started_at,
    ])?;
    Ok(())
}

/// How a call ended.
#[derive(Debug, Clone)]
pub struct Completion<'a> {
    /// The call id.
    pub call_id: &'a str,
    /// Its final status.
    pub status: CallStatus,
    /// The model-visible result (output or error JSON).
    pub result: &'a serde_json::Value,
    /// The error code, when it failed.
    pub error_code: Option<String>,
    /// How long it ran.
    pub duration_ms: i64,
    /// When it ended, epoch ms.
    pub ended_at: i64,
    /// Whether the call ran and could have changed state (then it gets a receipt).
    pub receipt: bool,
}

/// Stores the result, and for a state-changing call appends its receipt. Returns the receipt
/// hash when one was written.
pub fn record_completion(
    tx: &Transaction<'_>,
    completion: &Completion<'_>,
) -> rusqlite::Result<Option<String>> {
    let result_json = cap(canonical_json(completion.result));
    let summary: String = result_json.chars().take(500).collect();
    tx.prepare_cached(
        "UPDATE tool_calls SET status = ?2, result_json = ?3, result_summary = ?4, error_code = ?5,
             duration_ms = ?6, ended_at = ?7
         WHERE id = ?1",
    )?
    .execute(params![
        completion.call_id,
        completion.status.as_str(),
        result_json,
        summary,
        completion.error_code,
        completion.duration_ms,
        completion.ended_at,
    ])?;
    if !completion.receipt {
        return Ok(None);
    }
    let (tool, args_json, decision, provenance): (String, String, String, String) = tx
        .prepare_cached(
            "SELECT name, args_json, decision, provenance FROM tool_calls WHERE id = ?1",
        )?
        .query_row([completion.call_id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?;
    let prev_hash: String = tx
        .prepare_cached("SELECT hash FROM receipts ORDER BY seq DESC LIMIT 1")?
        .query_row([], |row| row.get(0))
        .optional()?
        .unwrap_or_else(|| GENESIS_HASH.to_owned());
    let receipt = Receipt {
        prev_hash,
        call_id: completion.call_id.to_owned(),
        tool,
        args_hash: sha256_hex(args_json.as_bytes()),
        result_hash: sha256_hex(result_json.as_bytes()),
        decision,
        provenance,
        time: completion.ended_at,
    };
    let hash = receipt.hash();
    tx.prepare_cached("INSERT INTO receipts (call_id, prev_hash, tool, args_hash, result_hash, decision, provenance, created_at, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")?.execute(params![
            receipt.call_id,
            receipt.prev_hash,
            receipt.tool,
            receipt.args_hash,
            receipt.result_hash,
            receipt.decision,
            receipt.provenance,
            receipt.time,
            hash,
        ],
    )?;
    Ok(Some(hash))
}

fn cap(mut text: String) -> String {
    if text.len() > STORED_RESULT_CAP {
        let mut end = STORED_RESULT_CAP;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("…[truncated]");
    }
    text
}

/// What a receipt commits to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    /// The previous receipt's hash ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// The call.
    pub call_id: String,
    /// The tool.
    pub tool: String,
    /// SHA-256 of the stored canonical arguments.
    pub args_hash: String,
    /// SHA-256 of the stored canonical result.
    pub result_hash: String,
    /// The policy decision.
    pub decision: String,
    /// Who caused the call (so outside input cannot later be passed off as the agent's own).
    pub provenance: String,
    /// When, epoch ms.
    pub time: i64,
}

impl Receipt {
    /// SHA-256 over the canonical JSON of the receipt's fields.
    pub fn hash(&self) -> String {
        let value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        sha256_hex(canonical_json(&value).as_bytes())
    }
}

/// A call whose intent was written but whose result never was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterruptedCall {
    /// The call id.
    pub call_id: String,
    /// The tool.
    pub tool: String,
    /// When it started, epoch ms.
    pub started_at: i64,
}

/// Calls still `running` (call at start, before any new call: they were cut off).
pub fn running_calls(conn: &Connection) -> rusqlite::Result<Vec<InterruptedCall>> {
    calls_with_status(conn, CallStatus::Running)
}

/// Calls a previous start found cut off.
pub fn interrupted_calls(conn: &Connection) -> rusqlite::Result<Vec<InterruptedCall>> {
    calls_with_status(conn, CallStatus::Interrupted)
}

fn calls_with_status(
    conn: &Connection,
    status: CallStatus,
) -> rusqlite::Result<Vec<InterruptedCall>> {
    let mut stmt = conn.prepare(
        "SELECT id, name, started_at FROM tool_calls WHERE status = ?1 ORDER BY started_at",
    )?;
    stmt.query_map([status.as_str()], |row| {
        Ok(InterruptedCall {
            call_id: row.get(0)?,
            tool: row.get(1)?,
            started_at: row.get(2)?,
        })
    })?
    .collect()
}

/// Marks every `running` call as `interrupted` (at start, when no call can be running).
pub fn mark_interrupted(tx: &Transaction<'_>, now_ms: i64) -> rusqlite::Result<usize> {
    tx.prepare_cached(
        "UPDATE tool_calls SET status = 'interrupted', ended_at = ?1 WHERE status = 'running'",
    )?
    .execute([now_ms])
}

/// The first broken link of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenLink {
    /// The receipt's sequence number (0 when the problem is a call without a receipt).
    pub seq: i64,
    /// The call concerned.
    pub call_id: String,
    /// What is wrong.
    pub problem: String,
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// True when every link holds.
    pub ok: bool,
    /// Receipts checked.
    pub receipts: u64,
    /// The hash of the last receipt (the head of the chain).
    pub head: String,
    /// The first broken link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_broken: Option<BrokenLink>,
}

/// Walks the receipt chain from the start and checks every link against itself, its
/// predecessor and the tool call it covers.
pub fn verify(conn: &Connection) -> rusqlite::Result<VerifyReport> {
    let mut stmt = conn.prepare(
        "SELECT r.seq, r.call_id, r.prev_hash, r.tool, r.args_hash, r.result_hash, r.decision,
                r.created_at, r.hash, c.id, c.name, c.args_json, c.result_json, c.decision,
                r.provenance, c.provenance
         FROM receipts r LEFT JOIN tool_calls c ON c.id = r.call_id
         ORDER BY r.seq",
    )?;
    let mut rows = stmt.query([])?;
    let mut prev = GENESIS_HASH.to_owned();
    let mut expected_seq = 1_i64;
    let mut count = 0_u64;
    let broken = |seq: i64, call_id: &str, problem: String, count: u64, head: &str| VerifyReport {
        ok: false,
        receipts: count,
        head: head.to_owned(),
        first_broken: Some(BrokenLink {
            seq,
            call_id: call_id.to_owned(),
            problem,
        }),
    };
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let receipt = Receipt {
            call_id: row.get(1)?,
            prev_hash: row.get(2)?,
            tool: row.get(3)?,
            args_hash: row.get(4)?,
            result_hash: row.get(5)?,
            decision: row.get(6)?,
            provenance: row.get(14)?,
            time: row.get(7)?,
        };
        let stored_hash: String = row.get(8)?;
        let call_id = receipt.call_id.clone();
        if seq != expected_seq {
            return Ok(broken(
                seq,
                &call_id,
                format!("receipt {expected_seq} is missing: the chain jumps to {seq}"),
                count,
                &prev,
            ));
        }
        if receipt.prev_hash != prev {
            return Ok(broken(
                seq,
                &call_id,
                "prev_hash does not match the previous receipt: a receipt was removed, inserted or rewritten".to_owned(),
                count,
                &prev,
            ));
        }
        if receipt.hash() != stored_hash {
            return Ok(broken(
                seq,
                &call_id,
                "the receipt's fields do not hash to its stored hash: the receipt was edited"
                    .to_owned(),
                count,
                &prev,
            ));
        }
        let call: Option<String> = row.get(9)?;
        if call.is_none() {
            return Ok(broken(
                seq,
                &call_id,
                "the tool call this receipt covers is missing from tool_calls".to_owned(),
                count,
                &prev,
            ));
        }
        let name: String = row.get(10)?;
        let args_json: String = row.get(11)?;
        let result_json: Option<String> = row.get(12)?;
        let decision: String = row.get(13)?;
        let call_provenance: String = row.get(15)?;
        let checks = [
            (name == receipt.tool, "tool_calls.name was edited"),
            (
                sha256_hex(args_json.as_bytes()) == receipt.args_hash,
                "tool_calls.args_json was edited",
            ),
            (
                sha256_hex(result_json.unwrap_or_default().as_bytes()) == receipt.result_hash,
                "tool_calls.result_json was edited",
            ),
            (
                decision == receipt.decision,
                "tool_calls.decision was edited",
            ),
            (
                call_provenance == receipt.provenance,
                "tool_calls.provenance was edited",
            ),
        ];
        if let Some((_, problem)) = checks.iter().find(|(ok, _)| !ok) {
            return Ok(broken(seq, &call_id, (*problem).to_owned(), count, &prev));
        }
        prev = stored_hash;
        expected_seq += 1;
        count += 1;
    }
    let missing: Option<String> = conn
        .query_row(
            "SELECT id FROM tool_calls
             WHERE effect != 'read_only' AND status IN ('succeeded', 'failed', 'cancelled')
               AND id NOT IN (SELECT call_id FROM receipts)
             ORDER BY started_at LIMIT 1",
            [],
            |row| row.get(0),
        )
        .optional()?;
    if let Some(call_id) = missing {
        return Ok(broken(
            0,
            &call_id,
            "this state-changing call has no receipt: its receipt was removed".to_owned(),
            count,
            &prev,
        ));
    }
    Ok(VerifyReport {
        ok: true,
        receipts: count,
        head: prev,
        first_broken: None,
    })
}

/// Rate-limit counts from `tool_calls`.
pub struct SqlHistory<'a>(pub &'a Connection);

impl CallHistory for SqlHistory<'_> {
    fn allowed_since(&self, category: Category, since_ms: i64) -> u64 {
        self.0
            .prepare_cached(
                "SELECT COUNT(*) FROM tool_calls WHERE category = ?1 AND decision = 'allow' AND started_at >= ?2",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![category.as_str(), since_ms], |row| row.get::<_, i64>(0))
            })
            // A history that cannot be read must not lift the limits: fail closed.
            .map_or(u64::MAX, |n| n.max(0) as u64)
    }

    fn allowed_in_turn(&self, category: Category, turn_id: i64) -> u64 {
        self.0
            .prepare_cached(
                "SELECT COUNT(*) FROM tool_calls WHERE category = ?1 AND decision = 'allow' AND turn_id = ?2",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![category.as_str(), turn_id], |row| row.get::<_, i64>(0))
            })
            // A history that cannot be read must not lift the limits: fail closed.
            .map_or(u64::MAX, |n| n.max(0) as u64)
    }
}

/// Records who wrote the file at `path`.
pub fn record_content_provenance(
    tx: &Transaction<'_>,
    path: &str,
    provenance: Provenance,
    call_id: &str,
    now_ms: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO content_provenance (path, provenance, call_id, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (path) DO UPDATE SET provenance = excluded.provenance,
             call_id = excluded.call_id, updated_at = excluded.updated_at")?.execute(params![path, provenance.to_string(), call_id, now_ms],
    )?;
    Ok(())
}

/// Who last wrote the file at `path` through a tool, if anyone did.
pub fn content_provenance(conn: &Connection, path: &str) -> rusqlite::Result<Option<Provenance>> {
    let text: Option<String> = conn
        .query_row(
            "SELECT provenance FROM content_provenance WHERE path = ?1",
            [path],
            |row| row.get(0),
        )
        .optional()?;
    Ok(text.and_then(|text| text.parse().ok()))
}
