-- Corrections finance decides (DESIGN.md, Exceptions): an adjustment or a write-off is a
-- transaction of its own kind, caused by one document (a decision on an exception case) and
-- posted once per document, in the business date it was decided.
ALTER TABLE transactions DROP CONSTRAINT transactions_kind_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_kind_check
    CHECK (kind IN ('sale', 'void', 'payment', 'validations', 'adjustment', 'writeoff'));

CREATE TABLE corrections (
    document       text PRIMARY KEY,
    transaction_id bigint NOT NULL UNIQUE,
    kind           text NOT NULL CHECK (kind IN ('adjustment', 'writeoff')),
    business_date  date NOT NULL,
    operator_id    text NOT NULL REFERENCES operators (id),
    -- What the correction posted to the operator's receivable (credit positive).
    receivable     bigint NOT NULL,
    actor          text NOT NULL,
    created_at     timestamptz NOT NULL
);
CREATE INDEX corrections_by_date ON corrections (business_date, operator_id);
CREATE TRIGGER corrections_append_only BEFORE UPDATE OR DELETE ON corrections
    FOR EACH STATEMENT EXECUTE FUNCTION journal_is_append_only();
