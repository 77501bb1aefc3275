-- Operator terms with effective dates, where kept objects are, the note of a job run, and
-- when each business date last received input and was last settled.

-- The terms on the operators row are those it was registered with; a change is a new
-- version here, in force from its business date on. The terms of date D are the latest
-- version with effective_from <= D, or the operator's own when there is none.
CREATE TABLE operator_terms (
    operator_id         text NOT NULL REFERENCES operators (id),
    effective_from      date NOT NULL,
    commission_rate     text NOT NULL,
    tax_rate            text NOT NULL,
    void_window_secs    bigint NOT NULL CHECK (void_window_secs >= 0),
    settlement_lag_days integer NOT NULL CHECK (settlement_lag_days >= 0),
    recorded_at         timestamptz NOT NULL,
    PRIMARY KEY (operator_id, effective_from)
);

-- Where the object is kept now (processed/… or rejected/…); object_key is where it arrived.
ALTER TABLE operator_files ADD COLUMN stored_key text;
CREATE INDEX operator_files_by_seq ON operator_files (operator_id, business_date, seq, status);

ALTER TABLE job_runs ADD COLUMN note text;

-- Per business date: when it last received input (an accepted file, a posted validation)
-- and as of when its last final report read its inputs. A date whose input is newer than
-- its report is stale.
CREATE TABLE business_dates (
    business_date   date PRIMARY KEY,
    last_input_at   timestamptz,
    last_input      text,
    inputs_read_at  timestamptz
);
