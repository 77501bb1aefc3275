-- Settlement in the books (DESIGN.md, Ledger): the final report of a date posts each
-- operator's commission and its tax against the receivable, so that the receivable is what
-- the operator owes. One document per operator, date and report version; a version posts
-- only what differs from what the date's earlier versions posted (usually nothing).
ALTER TABLE transactions DROP CONSTRAINT transactions_kind_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_kind_check
    CHECK (kind IN ('sale', 'void', 'payment', 'validations', 'adjustment', 'writeoff',
                    'settlement'));

CREATE TABLE settlements (
    document       text PRIMARY KEY,
    transaction_id bigint NOT NULL UNIQUE,
    operator_id    text NOT NULL REFERENCES operators (id),
    -- The date whose sales are settled.
    settles_date   date NOT NULL,
    report_version integer NOT NULL,
    -- The business date it was posted in (the day of the report, never an earlier one).
    business_date  date NOT NULL,
    commission     bigint NOT NULL,
    commission_tax bigint NOT NULL,
    created_at     timestamptz NOT NULL
);
CREATE INDEX settlements_by_operator ON settlements (operator_id, settles_date);
CREATE TRIGGER settlements_append_only BEFORE UPDATE OR DELETE ON settlements
    FOR EACH STATEMENT EXECUTE FUNCTION journal_is_append_only();
