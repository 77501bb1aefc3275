-- Job runs: one row per attempt, what `recaudo status` shows ops.
CREATE TABLE job_runs (
    id            TEXT PRIMARY KEY,
    job           TEXT NOT NULL,
    business_date TEXT,
    attempt       INTEGER NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    holder        TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    counts        TEXT,
    error         TEXT
);
CREATE INDEX job_runs_by_start ON job_runs (started_at);

-- Single flight: one row per (job, scope) while a process runs it. The holder renews its
-- lease while it works; a holder that dies (SIGKILL, lost pod) loses the lock when the
-- lease runs out, so nothing can hold a date forever.
CREATE TABLE job_locks (
    job         TEXT NOT NULL,
    scope       TEXT NOT NULL,
    holder      TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    PRIMARY KEY (job, scope)
);
