-- Corrections finance decides (DESIGN.md, Exceptions): an adjustment or a write-off is a
-- transaction of its own kind, caused by one document (a decision on an exception case) and
-- posted once per document, in the business date it was decided. SQLite cannot change a
-- CHECK in place, so the transactions table is rebuilt with its triggers (dropping a table
-- fires none of its triggers).
CREATE TABLE transactions_new (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL CHECK (kind IN ('sale', 'void', 'payment', 'validations', 'adjustment', 'writeoff')),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
INSERT INTO transactions_new (id, kind, created_at) SELECT id, kind, created_at FROM transactions;
DROP TABLE transactions;
ALTER TABLE transactions_new RENAME TO transactions;
CREATE TRIGGER transactions_no_update BEFORE UPDATE ON transactions
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER transactions_no_delete BEFORE DELETE ON transactions
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;

CREATE TABLE corrections (
    document       TEXT PRIMARY KEY,
    transaction_id INTEGER NOT NULL UNIQUE,
    kind           TEXT NOT NULL CHECK (kind IN ('adjustment', 'writeoff')),
    business_date  TEXT NOT NULL,
    operator_id    TEXT NOT NULL REFERENCES operators (id),
    -- What the correction posted to the operator's receivable (credit positive).
    receivable     INTEGER NOT NULL,
    actor          TEXT NOT NULL,
    created_at     TEXT NOT NULL
);
CREATE INDEX corrections_by_date ON corrections (business_date, operator_id);
CREATE TRIGGER corrections_no_update BEFORE UPDATE ON corrections
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER corrections_no_delete BEFORE DELETE ON corrections
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
