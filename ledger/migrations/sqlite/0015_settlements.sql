-- Settlement in the books (DESIGN.md, Ledger): the final report of a date posts each
-- operator's commission and its tax against the receivable, so that the receivable is what
-- the operator owes. One document per operator, date and report version; a version posts
-- only what differs from what the date's earlier versions posted (usually nothing). SQLite
-- cannot change a CHECK in place: the transactions table is rebuilt with its triggers.
CREATE TABLE transactions_new (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL CHECK (kind IN ('sale', 'void', 'payment', 'validations', 'adjustment', 'writeoff', 'settlement')),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
INSERT INTO transactions_new (id, kind, created_at) SELECT id, kind, created_at FROM transactions;
DROP TABLE transactions;
ALTER TABLE transactions_new RENAME TO transactions;
CREATE TRIGGER transactions_no_update BEFORE UPDATE ON transactions
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER transactions_no_delete BEFORE DELETE ON transactions
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;

CREATE TABLE settlements (
    document       TEXT PRIMARY KEY,
    transaction_id INTEGER NOT NULL UNIQUE,
    operator_id    TEXT NOT NULL REFERENCES operators (id),
    settles_date   TEXT NOT NULL,
    report_version INTEGER NOT NULL,
    business_date  TEXT NOT NULL,
    commission     INTEGER NOT NULL,
    commission_tax INTEGER NOT NULL,
    created_at     TEXT NOT NULL
);
CREATE INDEX settlements_by_operator ON settlements (operator_id, settles_date);
CREATE TRIGGER settlements_no_update BEFORE UPDATE ON settlements
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER settlements_no_delete BEFORE DELETE ON settlements
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
