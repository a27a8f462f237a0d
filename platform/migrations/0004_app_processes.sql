-- The process groups of the apps this platform runs, so a platform that starts again after a
-- crash can stop what the crashed one left running (it would otherwise hold ports and serve
-- stale releases nobody supervises). `start_ticks` is the leader's start time from
-- /proc/<pid>/stat: a pid the kernel has since reused for something else is never touched.
CREATE TABLE app_processes (
    pgid        INTEGER PRIMARY KEY,
    start_ticks INTEGER NOT NULL,
    project     TEXT NOT NULL,
    service     TEXT NOT NULL,
    release     TEXT NOT NULL,
    started_at  INTEGER NOT NULL
) STRICT;
