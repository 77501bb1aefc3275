-- Job runs: one row per attempt, what `recaudo status` shows ops.
CREATE TABLE job_runs (
    id            text PRIMARY KEY,
    job           text NOT NULL,
    business_date date,
    attempt       integer NOT NULL,
    status        text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    holder        text NOT NULL,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    counts        text,
    error         text
);
CREATE INDEX job_runs_by_start ON job_runs (started_at);

-- Single flight: one row per (job, scope) while a process runs it. The holder renews its
-- lease while it works; a holder that dies (SIGKILL, lost pod) loses the lock when the
-- lease runs out, so nothing can hold a date forever.
CREATE TABLE job_locks (
    job         text NOT NULL,
    scope       text NOT NULL,
    holder      text NOT NULL,
    run_id      text NOT NULL,
    acquired_at timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (job, scope)
);
