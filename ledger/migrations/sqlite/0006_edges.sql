-- Operator terms with effective dates, where kept objects are, the note of a job run, and
-- when each business date last received input and was last settled.

-- The terms on the operators row are those it was registered with; a change is a version
-- here, in force from its business date on, that sets only the terms it names (NULL: not
-- set by this version). Each term of date D is the latest version's value set on or before
-- D, else the operator's own: a change never undoes another made for a later date.
CREATE TABLE operator_terms (
    operator_id         TEXT NOT NULL REFERENCES operators (id),
    effective_from      TEXT NOT NULL,
    commission_rate     TEXT,
    tax_rate            TEXT,
    void_window_secs    INTEGER CHECK (void_window_secs >= 0),
    settlement_lag_days INTEGER CHECK (settlement_lag_days >= 0),
    recorded_at         TEXT NOT NULL,
    PRIMARY KEY (operator_id, effective_from)
);

-- Where the object is kept now (processed/… or rejected/…); object_key is where it arrived.
ALTER TABLE operator_files ADD COLUMN stored_key TEXT;
CREATE INDEX operator_files_by_seq ON operator_files (operator_id, business_date, seq, status);

ALTER TABLE job_runs ADD COLUMN note TEXT;

-- Per business date: a counter every input for it bumps (an accepted file of it or of a
-- neighbouring date, a posted validation) in the writer's own transaction, and the value
-- the last final report read before its inputs. A date whose counter has moved past that
-- is stale. A counter, not a clock: a writer that commits after a report read the data
-- always leaves the counter ahead of what that report saw.
CREATE TABLE business_dates (
    business_date   TEXT PRIMARY KEY,
    input_seq       INTEGER NOT NULL DEFAULT 0,
    last_input_at   TEXT,
    last_input      TEXT,
    settled_seq     INTEGER,
    settled_at      TEXT
);

-- The input counter of its date when a reconciliation run began reading.
ALTER TABLE recon_runs ADD COLUMN input_seq INTEGER;
