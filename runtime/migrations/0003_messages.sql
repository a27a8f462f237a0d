-- The conversation, message by message, so a restart resumes with the same context and the
-- creator can read exactly what the model saw and said.
CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    turn_id INTEGER NOT NULL REFERENCES turns (id),
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),
    content TEXT NOT NULL,
    tool_calls_json TEXT,
    tool_call_id TEXT,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX messages_turn ON messages (turn_id);
