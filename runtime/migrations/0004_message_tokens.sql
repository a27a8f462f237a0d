-- Each message's token count, taken once when it is written, so fitting history into the
-- context window never re-tokenizes old turns.
ALTER TABLE messages ADD COLUMN tokens INTEGER NOT NULL DEFAULT 0;
