-- The heartbeat's schedules: the one source of truth for what runs. `modify_heartbeat` and the
-- driver's reload of heartbeat.yml both write it through `Scheduler::sync`; nothing reads the
-- file to decide what runs. All times are integer epoch milliseconds.
CREATE TABLE heartbeat_schedules (
    name TEXT PRIMARY KEY,
    -- As written in heartbeat.yml, and normalised to the cron crate's 6/7-field form.
    schedule TEXT NOT NULL,
    cron TEXT NOT NULL,
    task TEXT NOT NULL,
    enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    params_json TEXT NOT NULL DEFAULT '{}',
    -- NULL when the expression has no future firing (a 7-field expression past its last year).
    next_run_at INTEGER,
    last_run_at INTEGER,
    last_status TEXT CHECK (last_status IN ('ok', 'failed', 'timed_out', 'abandoned', 'skipped')),
    last_error TEXT,
    last_result_json TEXT,
    -- Held while a run of this schedule is in flight, so one schedule never runs twice at once.
    lease_owner TEXT,
    lease_expires_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CHECK ((lease_owner IS NULL) = (lease_expires_at IS NULL))
) STRICT;
CREATE INDEX heartbeat_schedules_due ON heartbeat_schedules (next_run_at) WHERE enabled = 1;

-- One row per firing (or manual run). UNIQUE (schedule, scheduled_for) is what makes a firing
-- happen at most once, even with two schedulers on one database. No foreign key to
-- heartbeat_schedules: removing an entry keeps its history.
CREATE TABLE heartbeat_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    schedule TEXT NOT NULL,
    task TEXT NOT NULL,
    trigger TEXT NOT NULL CHECK (trigger IN ('schedule', 'manual')),
    scheduled_for INTEGER NOT NULL,
    -- 1 for the first attempt; a retry (after a failure or an expired lease) reuses the row.
    attempt INTEGER NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    owner TEXT,
    started_at INTEGER,
    lease_expires_at INTEGER,
    ended_at INTEGER,
    status TEXT NOT NULL
        CHECK (status IN ('running', 'ok', 'failed', 'timed_out', 'abandoned', 'skipped')),
    result_json TEXT,
    error TEXT,
    -- Firings coalesced into this run after a long sleep.
    missed INTEGER NOT NULL DEFAULT 0 CHECK (missed >= 0),
    -- When a failed or timed-out run will be attempted again; NULL when it will not be.
    retry_at INTEGER,
    CHECK (status <> 'running' OR (owner IS NOT NULL AND lease_expires_at IS NOT NULL)),
    CHECK (retry_at IS NULL OR status IN ('failed', 'timed_out')),
    UNIQUE (schedule, scheduled_for)
) STRICT;
CREATE INDEX heartbeat_runs_running ON heartbeat_runs (lease_expires_at) WHERE status = 'running';
CREATE INDEX heartbeat_runs_retry ON heartbeat_runs (retry_at) WHERE retry_at IS NOT NULL;

-- Reasons to wake the agent loop. At most one pending (unconsumed) event per cause; raising a
-- pending cause again refreshes its reason and payload instead of queueing a duplicate.
CREATE TABLE wake_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cause TEXT NOT NULL CHECK (length(cause) BETWEEN 1 AND 64),
    reason TEXT NOT NULL CHECK (length(reason) >= 1),
    payload_json TEXT NOT NULL DEFAULT 'null',
    source TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    consumed_at INTEGER,
    consumed_by TEXT,
    CHECK ((consumed_at IS NULL) = (consumed_by IS NULL))
) STRICT;
CREATE UNIQUE INDEX wake_events_one_pending_per_cause ON wake_events (cause)
    WHERE consumed_at IS NULL;
-- The oldest pending event, and "is anything pending?" (polled every few seconds), read only
-- pending rows.
CREATE INDEX wake_events_pending ON wake_events (id) WHERE consumed_at IS NULL;
