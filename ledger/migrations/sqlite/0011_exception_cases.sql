-- Exception cases (DESIGN.md, Exceptions): one per key of a business date for its whole
-- life, and the append-only, hash-chained history of everything done to them.
CREATE TABLE exception_cases (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    business_date  TEXT NOT NULL,
    operator_id    TEXT NOT NULL REFERENCES operators (id),
    operator_ref   TEXT NOT NULL,
    case_name      TEXT NOT NULL,
    ledger_card_id TEXT,
    file_card_id   TEXT,
    ledger_amount  INTEGER,
    file_amount    INTEGER,
    difference     INTEGER NOT NULL,
    state          TEXT NOT NULL
        CHECK (state IN ('OPEN', 'DISPUTED', 'PENDING_APPROVAL', 'RESOLVED', 'CLEARED')),
    -- The resolution decided, or proposed while PENDING_APPROVAL.
    resolution     TEXT CHECK (resolution IN ('ADJUST_LEDGER', 'ACCEPT_LEDGER', 'WRITE_OFF')),
    proposed_by    TEXT,
    -- How many resolutions were decided: each one's posting is document
    -- `exception:{id}:{decisions}`, and a reopening's reversal `exception:{id}:{decisions}:reversal`.
    decisions      INTEGER NOT NULL DEFAULT 0,
    transaction_id INTEGER,
    dispute_reason TEXT,
    evidence_ref   TEXT,
    opened_run     TEXT NOT NULL,
    last_run       TEXT NOT NULL,
    cleared_run    TEXT,
    opened_at      TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    UNIQUE (business_date, operator_id, operator_ref)
);
CREATE INDEX exception_cases_by_state ON exception_cases (state, business_date);
CREATE INDEX exception_cases_by_operator ON exception_cases (operator_id, business_date);

CREATE TABLE exception_events (
    seq        INTEGER PRIMARY KEY,
    case_id    INTEGER NOT NULL REFERENCES exception_cases (id),
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    from_state TEXT,
    to_state   TEXT NOT NULL,
    note       TEXT,
    amount     INTEGER,
    run_id     TEXT,
    hash       TEXT NOT NULL
);
CREATE INDEX exception_events_by_case ON exception_events (case_id, seq);
CREATE TRIGGER exception_events_no_update BEFORE UPDATE ON exception_events
    BEGIN SELECT RAISE(ABORT, 'the case history is append-only'); END;
CREATE TRIGGER exception_events_no_delete BEFORE DELETE ON exception_events
    BEGIN SELECT RAISE(ABORT, 'the case history is append-only'); END;
-- The chain's head: one row, locked by every writer of events, so events are chained in
-- the order they commit (SQLite has one writer anyway).
CREATE TABLE exception_chain (
    one  INTEGER PRIMARY KEY DEFAULT 1 CHECK (one = 1),
    seq  INTEGER NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO exception_chain (one, seq, hash)
    VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
