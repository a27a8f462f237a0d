//! The conversation as stored in `messages`, loaded back whole turns at a time so a turn's
//! tool calls and results always stay paired. Turns that no longer fit the context window
//! are summarised (extractively: what was called and how it ended), never silently dropped.

use super::tokens;
use crate::error::Result;
use crate::inference::{Message, ToolCallRequest};
use automaton_tools::db::StateDb;
use rusqlite::{Transaction, params};

/// One stored turn's messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnMessages {
    /// The turn.
    pub turn_id: i64,
    /// Its messages, in order.
    pub messages: Vec<Message>,
    /// Their tokens, as counted when they were stored.
    pub stored_tokens: usize,
}

impl TurnMessages {
    /// Tokens of the turn's messages (counted at write time; counted now for rows stored
    /// before counts were kept).
    pub fn tokens(&self) -> usize {
        if self.stored_tokens > 0 {
            return self.stored_tokens;
        }
        self.messages.iter().map(message_tokens).sum()
    }

    /// A one-line account of the turn, for the summary of dropped turns.
    pub fn summary_line(&self) -> String {
        let mut parts = Vec::new();
        // Calls by name in the order first made, so sixteen calls cost one phrase.
        let mut called: Vec<(&str, usize)> = Vec::new();
        let mut failed = 0;
        for message in &self.messages {
            match message {
                Message::Assistant {
                    content,
                    tool_calls,
                } => {
                    let thought: String = content
                        .lines()
                        .next()
                        .unwrap_or("")
                        .chars()
                        .take(80)
                        .collect();
                    if !thought.is_empty() {
                        parts.push(format!("thought \"{thought}\""));
                    }
                    for call in tool_calls {
                        match called.iter_mut().find(|(name, _)| *name == call.name) {
                            Some((_, count)) => *count += 1,
                            None => called.push((&call.name, 1)),
                        }
                    }
                }
                Message::Tool { content, .. } => {
                    if is_failed_result(content) {
                        failed += 1;
                    }
                }
                Message::User { content } => {
                    let first: String = content
                        .lines()
                        .next()
                        .unwrap_or("")
                        .chars()
                        .take(60)
                        .collect();
                    parts.push(format!("input \"{first}\""));
                }
                Message::System { .. } => {}
            }
        }
        for (name, count) in called {
            parts.push(if count == 1 {
                format!("called {name}")
            } else {
                format!("called {name} x{count}")
            });
        }
        match failed {
            0 => {}
            1 => parts.push("a call failed".to_owned()),
            n => parts.push(format!("{n} calls failed")),
        }
        format!("turn {}: {}", self.turn_id, parts.join(", "))
    }
}

/// One message's tokens, with the few tokens of its envelope.
pub fn message_tokens(message: &Message) -> usize {
    tokens::count(&message.text_for_counting()) + 4
}

/// Appends a turn's messages (inside the turn's transaction) and returns their tokens as
/// stored, which is what [`recent_turns`] will read back as the turn's `stored_tokens`.
pub fn append(
    tx: &Transaction<'_>,
    turn_id: i64,
    messages: &[Message],
    now_ms: i64,
) -> rusqlite::Result<usize> {
    let mut stored_tokens = 0_usize;
    for message in messages {
        let (role, content, calls, call_id) = match message {
            Message::System { .. } => continue,
            Message::User { content } => ("user", content.clone(), None, None),
            Message::Assistant {
                content,
                tool_calls,
            } => (
                "assistant",
                content.clone(),
                Some(serde_json::to_string(tool_calls).unwrap_or_else(|_| "[]".to_owned())),
                None,
            ),
            Message::Tool {
                tool_call_id,
                content,
            } => ("tool", content.clone(), None, Some(tool_call_id.clone())),
        };
        let counted = message_tokens(message);
        stored_tokens = stored_tokens.saturating_add(counted);
        let tokens = i64::try_from(counted).unwrap_or(i64::MAX);
        tx.prepare_cached(
            "INSERT INTO messages (turn_id, role, content, tool_calls_json, tool_call_id, tokens, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![turn_id, role, content, calls, call_id, tokens, now_ms])?;
    }
    Ok(stored_tokens)
}

/// A turn just appended, as [`recent_turns`] would read it back: the messages [`append`]
/// stored (system messages are not) with the tokens it returned. `None` when it stored none
/// (a turn whose inference failed), as such a turn has no rows to read back.
pub fn as_stored(
    turn_id: i64,
    messages: Vec<Message>,
    stored_tokens: usize,
) -> Option<TurnMessages> {
    let messages: Vec<Message> = messages
        .into_iter()
        .filter(|message| !matches!(message, Message::System { .. }))
        .collect();
    (!messages.is_empty()).then_some(TurnMessages {
        turn_id,
        messages,
        stored_tokens,
    })
}

/// The most recent `limit` turns' messages, oldest first.
pub fn recent_turns(db: &StateDb, limit: usize) -> Result<Vec<TurnMessages>> {
    turns_before(db, i64::MAX, limit)
}

/// The `limit` turns with messages just before turn `before`, oldest first.
pub fn turns_before(db: &StateDb, before: i64, limit: usize) -> Result<Vec<TurnMessages>> {
    // The limit is written into the SQL, not bound: SQLite plans with a bound LIMIT's value,
    // so binding it would re-prepare the cached statement on every call.
    let mut stmt = db.conn().prepare_cached(&format!(
        "SELECT turn_id, role, content, tool_calls_json, tool_call_id, tokens FROM messages
         WHERE turn_id IN (SELECT DISTINCT turn_id FROM messages WHERE turn_id < ?1
                           ORDER BY turn_id DESC LIMIT {limit})
         ORDER BY id"
    ))?;
    let rows = stmt.query_map([before], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, Option<String>>(3)?,
            row.get::<_, Option<String>>(4)?,
            row.get::<_, i64>(5)?,
        ))
    })?;
    let mut turns: Vec<TurnMessages> = Vec::new();
    // A turn with any message stored before counts were kept is counted afresh.
    let mut uncounted = std::collections::BTreeSet::new();
    for row in rows {
        let (turn_id, role, content, calls, call_id, stored) = row?;
        if stored <= 0 {
            uncounted.insert(turn_id);
        }
        let stored = usize::try_from(stored).unwrap_or(0);
        let message = match role.as_str() {
            "assistant" => Message::Assistant {
                content,
                tool_calls: calls
                    .and_then(|text| serde_json::from_str::<Vec<ToolCallRequest>>(&text).ok())
                    .unwrap_or_default(),
            },
            "tool" => Message::Tool {
                tool_call_id: call_id.unwrap_or_default(),
                content,
            },
            _ => Message::User { content },
        };
        match turns.last_mut() {
            Some(turn) if turn.turn_id == turn_id => {
                turn.messages.push(message);
                turn.stored_tokens += stored;
            }
            _ => turns.push(TurnMessages {
                turn_id,
                messages: vec![message],
                stored_tokens: stored,
            }),
        }
    }
    for turn in &mut turns {
        if uncounted.contains(&turn.turn_id) {
            turn.stored_tokens = 0;
        }
    }
    Ok(turns)
}

/// What the turns older than a context's summary lines add up to: how many, which tools they
/// called how often, how many calls failed. Built from state.db when a run starts and folded
/// forward as turns age out of the context, so no turn ever leaves the model's view without
/// a trace.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Digest {
    /// The oldest and newest turn it covers.
    pub span: Option<(i64, i64)>,
    /// Turns covered.
    pub turns: u64,
    /// Calls by tool name.
    pub calls: std::collections::BTreeMap<String, u64>,
    /// Calls that did not succeed.
    pub failed_calls: u64,
}

impl Digest {
    /// Adds a turn leaving the summary lines.
    pub fn fold(&mut self, turn: &TurnMessages) {
        self.turns += 1;
        self.span = Some(match self.span {
            Some((first, last)) => (first.min(turn.turn_id), last.max(turn.turn_id)),
            None => (turn.turn_id, turn.turn_id),
        });
        for message in &turn.messages {
            match message {
                Message::Assistant { tool_calls, .. } => {
                    for call in tool_calls {
                        *self.calls.entry(call.name.clone()).or_default() += 1;
                    }
                }
                Message::Tool { content, .. } if is_failed_result(content) => {
                    self.failed_calls += 1;
                }
                _ => {}
            }
        }
    }

    /// Adds the turns another digest covers.
    pub fn merge(&mut self, other: Self) {
        self.turns += other.turns;
        self.failed_calls += other.failed_calls;
        for (name, count) in other.calls {
            *self.calls.entry(name).or_default() += count;
        }
        self.span = match (self.span, other.span) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (span, None) | (None, span) => span,
        };
    }

    /// The digest as one summary line, `None` when it covers nothing.
    pub fn line(&self) -> Option<String> {
        let (first, last) = self.span?;
        let mut calls: Vec<(&String, &u64)> = self.calls.iter().collect();
        calls.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        let called = if calls.is_empty() {
            "no tool calls".to_owned()
        } else {
            calls
                .iter()
                .map(|(name, count)| format!("{name} x{count}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        Some(format!(
            "turns {first} to {last} ({} turns): {called}; {} calls failed",
            self.turns, self.failed_calls
        ))
    }
}

/// The kv key of the digest a run leaves for the next: `{"before": <turn id>, "digest": …}`.
const DIGEST_KEY: &str = "history_digest";

/// The digest of every turn with messages before turn `before`: the one the last run left
/// in kv, with the turns since read from state.db, so a run's start reads only what is new.
pub fn digest_before(db: &StateDb, before: i64) -> Result<Digest> {
    let kept: Option<String> = db
        .conn()
        .query_row("SELECT value FROM kv WHERE key = ?1", [DIGEST_KEY], |row| {
            row.get(0)
        })
        .ok();
    let kept = kept.and_then(|text| serde_json::from_str::<KeptDigest>(&text).ok());
    match kept {
        Some(KeptDigest {
            before: upto,
            mut digest,
        }) if upto <= before => {
            digest.merge(digest_between(db, upto, before)?);
            Ok(digest)
        }
        _ => digest_between(db, i64::MIN, before),
    }
}

/// Leaves `digest`, which covers every turn before `before`, for the next run.
pub fn keep_digest(db: &mut StateDb, before: i64, digest: &Digest, now_ms: i64) -> Result<()> {
    let text = serde_json::to_string(&KeptDigest {
        before,
        digest: digest.clone(),
    })
    .map_err(|err| crate::error::Error::InvalidInput {
        message: format!("the history digest does not serialise: {err}"),
        hint: "report this as a bug".to_owned(),
    })?;
    crate::state::kv_set(db, DIGEST_KEY, &text, now_ms)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct KeptDigest {
    before: i64,
    digest: Digest,
}

/// Whether a tool message says its call failed: the dispatcher's results are `{"ok": …}` or
/// `{"error": …}` (also for a call past the per-turn cap, which never reached the dispatcher).
fn is_failed_result(content: &str) -> bool {
    content.trim_start().starts_with("{\"error\"")
}

/// The digest of the turns with messages in `[from, before)`, read from their messages as
/// [`Digest::fold`] reads a turn in memory, so both count a turn the same way.
fn digest_between(db: &StateDb, from: i64, before: i64) -> Result<Digest> {
    // Turns with messages are the finished ones (a failed turn stores none), read from the
    // turns table's own key rather than by scanning every message.
    let (turns, first, last): (i64, Option<i64>, Option<i64>) = db.conn().query_row(
        "SELECT COUNT(*), MIN(id), MAX(id) FROM turns
         WHERE id >= ?1 AND id < ?2 AND state IN ('completed', 'cancelled')",
        [from, before],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )?;
    let mut digest = Digest {
        span: first.zip(last),
        turns: u64::try_from(turns).unwrap_or(0),
        ..Digest::default()
    };
    let mut stmt = db.conn().prepare_cached(
        "SELECT json_extract(call.value, '$.name'), COUNT(*)
         FROM messages, json_each(messages.tool_calls_json) AS call
         WHERE messages.turn_id >= ?1 AND messages.turn_id < ?2
           AND messages.role = 'assistant' AND messages.tool_calls_json IS NOT NULL
         GROUP BY 1",
    )?;
    let rows = stmt.query_map([from, before], |row| {
        Ok((row.get::<_, Option<String>>(0)?, row.get::<_, i64>(1)?))
    })?;
    for row in rows {
        let (tool, count) = row?;
        *digest.calls.entry(tool.unwrap_or_default()).or_default() +=
            u64::try_from(count).unwrap_or(0);
    }
    let failed: i64 = db.conn().query_row(
        "SELECT COUNT(*) FROM messages WHERE turn_id >= ?1 AND turn_id < ?2
           AND role = 'tool' AND ltrim(content) LIKE '{\"error\"%'",
        [from, before],
        |row| row.get(0),
    )?;
    digest.failed_calls = u64::try_from(failed).unwrap_or(0);
    Ok(digest)
}

/// Keeps the newest turns that fit `budget` tokens; the rest become summary lines. Also
/// returns the tokens of the kept turns, so callers need not count them again.
pub fn fit(turns: Vec<TurnMessages>, budget: usize) -> (Vec<TurnMessages>, Vec<String>, usize) {
    let mut kept = Vec::new();
    let mut used = 0;
    let mut dropped = Vec::new();
    for turn in turns.into_iter().rev() {
        let size = turn.tokens();
        if dropped.is_empty() && used + size <= budget {
            used += size;
            kept.push(turn);
        } else {
            dropped.push(turn.summary_line());
        }
    }
    kept.reverse();
    dropped.reverse();
    (kept, dropped, used)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::home::Home;

    fn message(turn: i64) -> Vec<Message> {
        vec![
            Message::User {
                content: format!("input {turn}"),
            },
            Message::Assistant {
                content: String::new(),
                tool_calls: vec![ToolCallRequest {
                    id: format!("c{turn}"),
                    name: "exec".into(),
                    arguments: "{}".into(),
                }],
            },
            Message::Tool {
                tool_call_id: format!("c{turn}"),
                content: "{}".into(),
            },
        ]
    }

    #[test]
    fn a_turn_as_appended_is_the_turn_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = crate::state::open(&Home::at(dir.path().to_owned())).unwrap();
        let mut messages = vec![Message::System {
            content: "not stored".into(),
        }];
        messages.extend(message(7));
        let stored_tokens = db
            .write(|tx| {
                tx.execute(
                    "INSERT INTO turns (id, started_at, state, input_source) VALUES (7, 0, 'completed', 'self')",
                    [],
                )?;
                append(tx, 7, &messages, 0)
            })
            .unwrap();
        let read_back = recent_turns(&db, 1).unwrap();
        assert_eq!(read_back.len(), 1);
        assert_eq!(
            as_stored(7, messages, stored_tokens).as_ref(),
            read_back.first()
        );
        assert_eq!(as_stored(8, Vec::new(), 0), None);
    }

    #[test]
    fn recent_turns_are_the_newest_whole_turns_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = crate::state::open(&Home::at(dir.path().to_owned())).unwrap();
        for turn in 1..=5 {
            db.write(|tx| {
                tx.execute(
                    "INSERT INTO turns (id, started_at, state, input_source) VALUES (?1, 0, 'completed', 'self')",
                    [turn],
                )?;
                append(tx, turn, &message(turn), 0)
            })
            .unwrap();
        }
        for limit in [2, 2, 3] {
            let turns = recent_turns(&db, limit).unwrap();
            let ids: Vec<i64> = turns.iter().map(|t| t.turn_id).collect();
            let expected: Vec<i64> = (6 - i64::try_from(limit).unwrap()..=5).collect();
            assert_eq!(ids, expected);
            for turn in &turns {
                assert_eq!(turn.messages, message(turn.turn_id));
                assert!(turn.stored_tokens > 0);
            }
        }
    }

    /// A turn counts the same in the digest whether a run folded it from memory or the next
    /// run read it from state.db: here a call past the per-turn cap, answered QUOTA_EXCEEDED
    /// and never dispatched (so no `tool_calls` row).
    #[test]
    fn a_turn_folds_into_the_digest_as_state_db_counts_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = crate::state::open(&Home::at(dir.path().to_owned())).unwrap();
        let mut turn = message(1);
        turn[2] = Message::Tool {
            tool_call_id: "c1".into(),
            content: r#"{"error":{"code":"QUOTA_EXCEEDED","message":"only 16 tool calls run per turn; this one was not run"}}"#.into(),
        };
        let stored_tokens = db
            .write(|tx| {
                tx.execute(
                    "INSERT INTO turns (id, started_at, state, input_source) VALUES (1, 0, 'completed', 'self')",
                    [],
                )?;
                append(tx, 1, &turn, 0)
            })
            .unwrap();
        let mut folded = Digest::default();
        folded.fold(&as_stored(1, turn, stored_tokens).unwrap());
        let read = digest_between(&db, i64::MIN, 2).unwrap();
        assert_eq!(folded, read, "{:?} vs {:?}", folded.line(), read.line());
    }
}
