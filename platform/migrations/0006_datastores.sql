-- Datastores (seed 000): a PostgreSQL database and role on the platform's managed cluster, a
-- Redis server of its own, or a SQLite file, per (project, name). The connection secret is kept
-- here to start processes and run queries; no read ever returns it. No foreign key to
-- `projects`: deleting a project must first stop and remove its engines, which
-- `LocalPlatform::delete_project` does through these rows.
CREATE TABLE datastores (
    project      TEXT NOT NULL,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('postgres', 'redis', 'sqlite')),
    status       TEXT NOT NULL CHECK (status IN ('provisioning', 'ready')),
    -- The env names injected into the project's services, as a JSON array.
    env_json     TEXT NOT NULL,
    -- Loopback port (postgres, redis); NULL for sqlite.
    port         INTEGER,
    -- Role and database (postgres); NULL otherwise.
    username     TEXT,
    database     TEXT,
    -- The generated password (postgres, redis).
    secret       TEXT,
    -- The engine's directory or file (redis, sqlite).
    path         TEXT,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (project, name)
) STRICT;

-- The platform-managed PostgreSQL cluster (one per platform): where it lives, its port and its
-- admin password.
CREATE TABLE datastore_engines (
    engine      TEXT PRIMARY KEY CHECK (engine IN ('postgres')),
    dir         TEXT NOT NULL,
    port        INTEGER NOT NULL,
    secret      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

-- Backups in the object-store directory (<data dir>/objects/backups), kept 7 days.
CREATE TABLE datastore_backups (
    key         TEXT PRIMARY KEY,
    project     TEXT NOT NULL,
    datastore   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    path        TEXT NOT NULL,
    bytes       INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX datastore_backups_by_store ON datastore_backups (project, datastore, created_at);

-- Every query run through queryDatastore, ok or not: who, what, when, how many rows.
CREATE TABLE datastore_queries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    project      TEXT NOT NULL,
    datastore    TEXT NOT NULL,
    principal    TEXT NOT NULL,
    query        TEXT NOT NULL,
    at           INTEGER NOT NULL,
    duration_ms  INTEGER NOT NULL,
    row_count    INTEGER,
    ok           INTEGER NOT NULL CHECK (ok IN (0, 1)),
    error        TEXT
) STRICT;
CREATE INDEX datastore_queries_by_store ON datastore_queries (project, datastore, at);
