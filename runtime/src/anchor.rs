//! Anchoring the receipt chain in the home's git history. The chain proves that no receipt
//! was edited or removed *before* its head; removing the newest receipts together with their
//! calls would leave a shorter chain that still verifies. So at the end of every stretch of
//! turns the head (count and hash) is written to `audit-head.json` and committed: a chain
//! that no longer reaches a committed head was cut, and `git log audit-head.json` shows when
//! each head was recorded. The creator can push the home's history elsewhere to keep a copy
//! the agent cannot touch.

use crate::error::{Error, Result};
use crate::home::{Home, PRIVATE_FILE_MODE};
use crate::home_git;
use automaton_tools::audit::BrokenLink;
use automaton_tools::db::StateDb;
use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};

/// The anchor file's name in the home.
pub const ANCHOR_FILE: &str = "audit-head.json";

/// The recorded head of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// Receipts in the chain at the time (the head's sequence number).
    pub receipts: i64,
    /// The head receipt's hash.
    pub head: String,
    /// When it was recorded, epoch ms.
    pub anchored_at_ms: i64,
}

fn head(db: &StateDb) -> Result<Option<(i64, String)>> {
    Ok(db
        .conn()
        .query_row(
            "SELECT seq, hash FROM receipts ORDER BY seq DESC LIMIT 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?)
}

/// Records the current head in `audit-head.json` and commits it (no-op when unchanged),
/// after putting state.db's committed receipts on disk.
pub fn record(home: &Home, db: &StateDb, author: &str, now_ms: i64) -> Result<()> {
    let Some((receipts, head)) = head(db)? else {
        return Ok(());
    };
    if read(home)?.is_some_and(|anchor| anchor.receipts == receipts && anchor.head == head) {
        return Ok(());
    }
    // The head is about to become a commitment in git, but a stretch commits its receipts
    // without waiting for the disk and may have died before its sync behind them ran: put
    // them on disk first, so no anchor names a receipt a power cut can still take away.
    let database = home.state_db();
    automaton_tools::db::sync_wal(&database).map_err(Error::io(
        "putting on disk the write-ahead log of",
        &database,
    ))?;
    let anchor = Anchor {
        receipts,
        head: head.clone(),
        anchored_at_ms: now_ms,
    };
    let path = home.root().join(ANCHOR_FILE);
    let mut text = serde_json::to_string_pretty(&anchor).unwrap_or_default();
    text.push('\n');
    automaton_tools::secure_fs::write_atomic(&path, text.as_bytes(), PRIVATE_FILE_MODE)
        .map_err(Error::io("writing", &path))?;
    home_git::commit_all(
        home.root(),
        author,
        &format!("audit: {receipts} receipts, head {head}"),
    )?;
    Ok(())
}

/// The anchor on disk, if one was recorded.
pub fn read(home: &Home) -> Result<Option<Anchor>> {
    let path = home.root().join(ANCHOR_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|err| Error::HomeFile {
                file: ANCHOR_FILE,
                message: err.to_string(),
                hint: format!(
                    "restore it from history: `git -C {} checkout -- {ANCHOR_FILE}`",
                    home.root().display()
                ),
            }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(Error::io("reading", path)(err)),
    }
}

/// Whether the chain still reaches the anchored head; the broken link when it does not.
pub fn check(home: &Home, db: &StateDb) -> Result<Option<BrokenLink>> {
    let Some(anchor) = read(home)? else {
        return Ok(None);
    };
    let at: Option<(String, String)> = db
        .conn()
        .query_row(
            "SELECT hash, call_id FROM receipts WHERE seq = ?1",
            [anchor.receipts],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    Ok(match at {
        Some((hash, _)) if hash == anchor.head => None,
        Some((_, call_id)) => Some(BrokenLink {
            seq: anchor.receipts,
            call_id,
            problem: format!(
                "receipt {} no longer has the hash anchored in the home's git history ({}): the chain was rewritten",
                anchor.receipts, anchor.head
            ),
        }),
        None => Some(BrokenLink {
            seq: anchor.receipts,
            call_id: String::new(),
            problem: format!(
                "the chain ends before receipt {}, which the home's git history anchored (head {}): receipts were removed",
                anchor.receipts, anchor.head
            ),
        }),
    })
}
