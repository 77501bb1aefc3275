-- Exception cases (DESIGN.md, Exceptions): one per key of a business date for its whole
-- life, and the append-only, hash-chained history of everything done to them.
CREATE TABLE exception_cases (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    business_date  date NOT NULL,
    operator_id    text NOT NULL REFERENCES operators (id),
    operator_ref   text NOT NULL,
    case_name      text NOT NULL,
    ledger_card_id text,
    file_card_id   text,
    ledger_amount  bigint,
    file_amount    bigint,
    difference     bigint NOT NULL,
    state          text NOT NULL
        CHECK (state IN ('OPEN', 'DISPUTED', 'PENDING_APPROVAL', 'RESOLVED', 'CLEARED')),
    -- The resolution decided, or proposed while PENDING_APPROVAL.
    resolution     text CHECK (resolution IN ('ADJUST_LEDGER', 'ACCEPT_LEDGER', 'WRITE_OFF')),
    proposed_by    text,
    -- How many resolutions were decided: each one's posting is document
    -- `exception:{id}:{decisions}`, and a reopening's reversal `exception:{id}:{decisions}:reversal`.
    decisions      integer NOT NULL DEFAULT 0,
    transaction_id bigint,
    dispute_reason text,
    evidence_ref   text,
    opened_run     text NOT NULL,
    last_run       text NOT NULL,
    cleared_run    text,
    opened_at      timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    UNIQUE (business_date, operator_id, operator_ref)
);
CREATE INDEX exception_cases_by_state ON exception_cases (state, business_date);
CREATE INDEX exception_cases_by_operator ON exception_cases (operator_id, business_date);

CREATE TABLE exception_events (
    seq        bigint PRIMARY KEY,
    case_id    bigint NOT NULL REFERENCES exception_cases (id),
    at         timestamptz NOT NULL,
    actor      text NOT NULL,
    action     text NOT NULL,
    from_state text,
    to_state   text NOT NULL,
    note       text,
    amount     bigint,
    run_id     text,
    hash       text NOT NULL
);
CREATE INDEX exception_events_by_case ON exception_events (case_id, seq);
CREATE TRIGGER exception_events_append_only BEFORE UPDATE OR DELETE ON exception_events
    FOR EACH STATEMENT EXECUTE FUNCTION journal_is_append_only();
-- The chain's head: one row, locked by every writer of events, so events are chained in
-- the order they commit.
CREATE TABLE exception_chain (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    seq  bigint NOT NULL,
    hash text NOT NULL
);
INSERT INTO exception_chain (one, seq, hash)
    VALUES (true, 0, '0000000000000000000000000000000000000000000000000000000000000000');
