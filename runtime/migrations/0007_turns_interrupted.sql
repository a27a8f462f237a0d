-- A turn left `running` by a stretch that was killed is marked `interrupted` by the next
-- `automaton run`. SQLite cannot change a CHECK in place, so `turns` is rebuilt, and with it
-- `messages`, whose foreign key names `turns` (dropping a parent that still has children
-- fails, and `PRAGMA foreign_keys` cannot change inside the migration's transaction): the
-- new tables are built beside the old ones, filled, the old ones dropped, the new renamed
-- (a rename rewrites the references that name the table).
CREATE TABLE turns_v7 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    state TEXT NOT NULL CHECK (state IN ('running', 'completed', 'failed', 'cancelled', 'interrupted')),
    input_source TEXT NOT NULL,
    input TEXT,
    thinking TEXT,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost_micro_usdc INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO turns_v7 (id, started_at, ended_at, state, input_source, input, thinking,
                      prompt_tokens, completion_tokens, cost_micro_usdc)
    SELECT id, started_at, ended_at, state, input_source, input, thinking,
           prompt_tokens, completion_tokens, cost_micro_usdc
    FROM turns;
CREATE TABLE messages_v7 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    turn_id INTEGER NOT NULL REFERENCES turns_v7 (id),
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),
    content TEXT NOT NULL,
    tool_calls_json TEXT,
    tool_call_id TEXT,
    created_at INTEGER NOT NULL,
    tokens INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO messages_v7 (id, turn_id, role, content, tool_calls_json, tool_call_id, created_at, tokens)
    SELECT id, turn_id, role, content, tool_calls_json, tool_call_id, created_at, tokens
    FROM messages;
-- AUTOINCREMENT never reuses an id, even one whose row is gone: carry the counters over.
DELETE FROM sqlite_sequence WHERE name IN ('turns_v7', 'messages_v7');
INSERT INTO sqlite_sequence (name, seq)
    SELECT name || '_v7', seq FROM sqlite_sequence WHERE name IN ('turns', 'messages');
DROP TABLE messages;
DROP TABLE turns;
ALTER TABLE turns_v7 RENAME TO turns;
ALTER TABLE messages_v7 RENAME TO messages;
CREATE INDEX turns_started ON turns (started_at);
CREATE INDEX messages_turn ON messages (turn_id);
