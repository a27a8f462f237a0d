-- The local platform's own database (platform.db in its data directory): projects, their
-- services, immutable releases, long operations with their replayable event streams, project
-- env (values never leave through a read), project events, and idempotency keys.

CREATE TABLE projects (
    name        TEXT PRIMARY KEY,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE services (
    project          TEXT NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    replicas         INTEGER NOT NULL DEFAULT 1 CHECK (replicas BETWEEN 0 AND 100),
    -- The release the service runs; NULL until a first deploy succeeds.
    current_release  TEXT,
    -- What it did before the current one (the default rollback target).
    previous_release TEXT,
    status           TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (project, name)
) STRICT;

CREATE TABLE releases (
    -- `rel_` + the first 16 hex digits of sha256: content-addressed per service.
    id          TEXT NOT NULL,
    project     TEXT NOT NULL,
    service     TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    -- The build plan (provider, build, start) as JSON.
    plan_json   TEXT,
    status      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (project, service, id),
    FOREIGN KEY (project, service) REFERENCES services (project, name) ON DELETE CASCADE
) STRICT;

CREATE TABLE operations (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    project      TEXT NOT NULL,
    service      TEXT,
    status       TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    phase        TEXT NOT NULL,
    result_json  TEXT,
    error_json   TEXT,
    created_at   INTEGER NOT NULL,
    finished_at  INTEGER
) STRICT;
CREATE INDEX operations_project ON operations (project, created_at);

-- Every log line and phase change of an operation, in order: the stream replays from here.
CREATE TABLE operation_events (
    operation  TEXT NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('log', 'phase', 'done')),
    data_json  TEXT NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (operation, seq)
) STRICT;

CREATE TABLE env (
    project     TEXT NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (project, name)
) STRICT;

CREATE TABLE events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    project  TEXT NOT NULL,
    kind     TEXT NOT NULL,
    service  TEXT,
    message  TEXT NOT NULL,
    at       INTEGER NOT NULL
) STRICT;
CREATE INDEX events_project ON events (project, id);

-- Retry safety: the same key and request return the stored response; the same key with a
-- different request is a conflict. Kept 24 hours.
CREATE TABLE idempotency_keys (
    key            TEXT PRIMARY KEY,
    verb           TEXT NOT NULL,
    request_sha256 TEXT NOT NULL,
    response_json  TEXT NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
