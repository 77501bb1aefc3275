-- Operator terms with effective dates, where kept objects are, the note of a job run, and
-- when each business date last received input and was last settled.

-- The terms on the operators row are those it was registered with; a change is a new
-- version here, in force from its business date on. The terms of date D are the latest
-- version with effective_from <= D, or the operator's own when there is none.
CREATE TABLE operator_terms (
    operator_id         TEXT NOT NULL REFERENCES operators (id),
    effective_from      TEXT NOT NULL,
    commission_rate     TEXT NOT NULL,
    tax_rate            TEXT NOT NULL,
    void_window_secs    INTEGER NOT NULL CHECK (void_window_secs >= 0),
    settlement_lag_days INTEGER NOT NULL CHECK (settlement_lag_days >= 0),
    recorded_at         TEXT NOT NULL,
    PRIMARY KEY (operator_id, effective_from)
);

-- Where the object is kept now (processed/… or rejected/…); object_key is where it arrived.
ALTER TABLE operator_files ADD COLUMN stored_key TEXT;
CREATE INDEX operator_files_by_seq ON operator_files (operator_id, business_date, seq, status);

ALTER TABLE job_runs ADD COLUMN note TEXT;

-- Per business date: when it last received input (an accepted file, a posted validation)
-- and as of when its last final report read its inputs. A date whose input is newer than
-- its report is stale.
CREATE TABLE business_dates (
    business_date   TEXT PRIMARY KEY,
    last_input_at   TEXT,
    last_input      TEXT,
    inputs_read_at  TEXT
);
