//! Wake events: how the heartbeat tells a sleeping agent loop that something needs it.
//!
//! An event is a row of `wake_events` (cause, reason, payload, source). There is at most one
//! *pending* event per cause (a partial unique index): raising a cause that is already
//! pending refreshes that event's reason, payload and source to the latest ones, keeping its
//! id and its place in the queue, so the model reads current facts and a noisy task cannot
//! flood the queue. Each event is consumed exactly once ([`WakeEvents::take_next`] marks it in
//! the same statement that selects it, inside `BEGIN IMMEDIATE`).
//!
//! A loop in the same process wakes at once ([`Notify`]); a loop in another process notices
//! within its poll interval by reading the pending index.

use std::sync::Arc;
use std::time::Duration;

use automaton_tools::clock::Clock;
use automaton_tools::dispatch::SharedDb;
use rusqlite::{OptionalExtension, Row, Transaction, params};
use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::store::{on_db, parse_json};

/// The longest cause, in bytes.
const MAX_CAUSE_LEN: usize = 64;
/// The longest reason, in bytes: it is shown to the model, so it stays a sentence or two.
const MAX_REASON_LEN: usize = 2_000;
/// The longest source, in bytes.
const MAX_SOURCE_LEN: usize = 128;

/// A reason to wake the agent loop, as a task raises it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WakeRequest {
    /// What kind of thing happened (`[a-z0-9_.:-]`, 1 to 64 characters), e.g. `credits_low`.
    /// At most one event per cause is pending.
    pub cause: String,
    /// One or two sentences for the model: what happened and why it matters.
    pub reason: String,
    /// The facts behind the reason (balances, commit ids, …); `null` when there are none.
    pub payload: serde_json::Value,
}

impl WakeRequest {
    /// A request with no payload.
    pub fn new(cause: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            cause: cause.into(),
            reason: reason.into(),
            payload: serde_json::Value::Null,
        }
    }

    /// The same request carrying `payload`.
    pub fn with_payload(mut self, payload: serde_json::Value) -> Self {
        self.payload = payload;
        self
    }

    /// Checks the cause, reason and `source` against the rules the table enforces.
    pub fn validate(&self, source: &str) -> Result<()> {
        let cause_ok = !self.cause.is_empty()
            && self.cause.len() <= MAX_CAUSE_LEN
            && self.cause.bytes().all(|byte| {
                byte.is_ascii_lowercase()
                    || byte.is_ascii_digit()
                    || matches!(byte, b'_' | b'.' | b':' | b'-')
            });
        if !cause_ok {
            return Err(Error::InvalidWake {
                field: "cause",
                reason: "use 1 to 64 characters from a-z, 0-9, `_`, `.`, `:` and `-`",
            });
        }
        if self.reason.trim().is_empty() || self.reason.len() > MAX_REASON_LEN {
            return Err(Error::InvalidWake {
                field: "reason",
                reason: "it must be non-empty and at most 2000 bytes",
            });
        }
        if source.trim().is_empty() || source.len() > MAX_SOURCE_LEN {
            return Err(Error::InvalidWake {
                field: "source",
                reason: "it must be non-empty and at most 128 bytes",
            });
        }
        Ok(())
    }
}

/// A stored wake event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WakeEvent {
    /// Row id; increases with each new event.
    pub id: i64,
    /// What kind of thing happened.
    pub cause: String,
    /// The latest reason raised for it.
    pub reason: String,
    /// The latest payload raised for it.
    pub payload: serde_json::Value,
    /// Who raised it last (`heartbeat:<schedule>`, `runtime`, …).
    pub source: String,
    /// When it was first raised, epoch ms.
    pub created_at: i64,
    /// When it was last raised, epoch ms.
    pub updated_at: i64,
    /// When it was consumed, epoch ms; `None` while pending.
    pub consumed_at: Option<i64>,
    /// Who consumed it.
    pub consumed_by: Option<String>,
}

/// What [`WakeEvents::raise`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "id")]
pub enum Raised {
    /// A new event was queued, with this id.
    Queued(i64),
    /// An event of the same cause was already pending; its reason and payload were refreshed.
    Refreshed(i64),
}

impl Raised {
    /// The event's id.
    pub fn id(self) -> i64 {
        match self {
            Self::Queued(id) | Self::Refreshed(id) => id,
        }
    }
}

/// Why [`WakeEvents::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    /// At least one event is pending.
    Pending,
    /// The token was cancelled first.
    Cancelled,
}

/// The wake-event queue. Clones share one in-process notifier, so every clone handed to the
/// scheduler, the tasks and the loop wakes the same waiters.
#[derive(Debug, Clone)]
pub struct WakeEvents {
    db: SharedDb,
    clock: Arc<dyn Clock>,
    notify: Arc<Notify>,
}

const EVENT_COLUMNS: &str = "id, cause, reason, payload_json, source, created_at, updated_at, \
                             consumed_at, consumed_by";

impl WakeEvents {
    /// The queue in `db` (which must have [`crate::SCHEMA`] applied).
    pub fn new(db: SharedDb, clock: Arc<dyn Clock>) -> Self {
        Self {
            db,
            clock,
            notify: Arc::new(Notify::new()),
        }
    }

    /// Raises `request` on behalf of `source` and wakes in-process waiters at once.
    pub async fn raise(&self, request: WakeRequest, source: &str) -> Result<Raised> {
        let now = self.clock.now_ms();
        let source = source.to_owned();
        let raised = on_db(&self.db, move |db| {
            db.write(|tx| insert_or_refresh(tx, &request, &source, now))
        })
        .await?;
        self.notify_waiters();
        Ok(raised)
    }

    /// Consumes the oldest pending event for `consumer`; `None` when nothing is pending. Two
    /// consumers (in one process or two) never receive the same event.
    pub async fn take_next(&self, consumer: &str) -> Result<Option<WakeEvent>> {
        let now = self.clock.now_ms();
        let consumer = consumer.to_owned();
        on_db(&self.db, move |db| {
            db.write(|tx| {
                let sql = format!(
                    "UPDATE wake_events SET consumed_at = ?1, consumed_by = ?2
                     WHERE id = (SELECT id FROM wake_events WHERE consumed_at IS NULL
                                 ORDER BY id LIMIT 1)
                     RETURNING {EVENT_COLUMNS}"
                );
                let row = tx
                    .query_row(&sql, params![now, consumer], read_event_row)
                    .optional()?;
                row.map(WakeEvent::try_from).transpose()
            })
        })
        .await
    }

    /// Every pending event, oldest first.
    pub async fn pending(&self) -> Result<Vec<WakeEvent>> {
        on_db(&self.db, |db| {
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM wake_events WHERE consumed_at IS NULL ORDER BY id"
            );
            let mut statement = db.conn().prepare_cached(&sql)?;
            let rows = statement
                .query_map([], read_event_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter().map(WakeEvent::try_from).collect()
        })
        .await
    }

    /// Returns once an event is pending (at once if one already is), or when `cancel` fires.
    ///
    /// An event raised through any clone of this queue wakes the waiter immediately; one
    /// raised by another process is noticed by reading the pending index every
    /// `poll_interval`. Between polls the task sleeps: no CPU is spent.
    pub async fn wait(&self, cancel: &CancellationToken, poll_interval: Duration) -> Result<Woken> {
        loop {
            // Register interest before looking, so a raise between the look and the sleep
            // is not missed.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.has_pending().await? {
                return Ok(Woken::Pending);
            }
            tokio::select! {
                () = cancel.cancelled() => return Ok(Woken::Cancelled),
                () = &mut notified => {}
                () = tokio::time::sleep(poll_interval) => {}
            }
        }
    }

    /// Whether any event is pending (one read of the pending index).
    pub async fn has_pending(&self) -> Result<bool> {
        on_db(&self.db, |db| {
            Ok(db
                .conn()
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM wake_events WHERE consumed_at IS NULL)",
                )?
                .query_row([], |row| row.get::<_, bool>(0))?)
        })
        .await
    }

    /// Wakes in-process waiters; for raises committed inside another transaction.
    pub(crate) fn notify_waiters(&self) {
        self.notify.notify_waiters();
    }
}

/// Raises `request` inside an open transaction (the scheduler commits a task's wake event
/// with its result). Callers call [`WakeEvents::notify_waiters`] after committing.
pub(crate) fn insert_or_refresh(
    tx: &Transaction<'_>,
    request: &WakeRequest,
    source: &str,
    now: i64,
) -> Result<Raised> {
    request.validate(source)?;
    let payload = request.payload.to_string();
    let refreshed: Option<i64> = tx
        .prepare_cached(
            "UPDATE wake_events SET reason = ?2, payload_json = ?3, source = ?4, updated_at = ?5
             WHERE cause = ?1 AND consumed_at IS NULL RETURNING id",
        )?
        .query_row(
            params![request.cause, request.reason, payload, source, now],
            |row| row.get(0),
        )
        .optional()?;
    if let Some(id) = refreshed {
        return Ok(Raised::Refreshed(id));
    }
    let id = tx
        .prepare_cached(
            "INSERT INTO wake_events (cause, reason, payload_json, source, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5) RETURNING id",
        )?
        .query_row(
            params![request.cause, request.reason, payload, source, now],
            |row| row.get(0),
        )?;
    Ok(Raised::Queued(id))
}

/// A `wake_events` row as stored, before its payload is parsed.
struct EventRow {
    id: i64,
    cause: String,
    reason: String,
    payload_json: String,
    source: String,
    created_at: i64,
    updated_at: i64,
    consumed_at: Option<i64>,
    consumed_by: Option<String>,
}

fn read_event_row(row: &Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        id: row.get(0)?,
        cause: row.get(1)?,
        reason: row.get(2)?,
        payload_json: row.get(3)?,
        source: row.get(4)?,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
        consumed_at: row.get(7)?,
        consumed_by: row.get(8)?,
    })
}

impl TryFrom<EventRow> for WakeEvent {
    type Error = Error;

    fn try_from(row: EventRow) -> Result<Self> {
        Ok(Self {
            payload: parse_json("wake_events", row.id, &row.payload_json)?,
            id: row.id,
            cause: row.cause,
            reason: row.reason,
            source: row.source,
            created_at: row.created_at,
            updated_at: row.updated_at,
            consumed_at: row.consumed_at,
            consumed_by: row.consumed_by,
        })
    }
}
