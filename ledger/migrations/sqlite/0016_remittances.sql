-- Bank statements and remittances (DESIGN.md): the statements of our collection accounts as
-- accepted (or rejected) whole, their entries, the payer accounts registered for operators,
-- and the journal documents of the money that arrives: a deposit matched to an operator or
-- left unidentified in suspense, a debit on the account, an unidentified deposit assigned.
-- SQLite cannot change a CHECK in place: the transactions table is rebuilt with its triggers.
CREATE TABLE transactions_new (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL CHECK (kind IN ('sale', 'void', 'payment', 'validations', 'adjustment', 'writeoff', 'settlement', 'deposit', 'bank_debit', 'assignment')),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
INSERT INTO transactions_new (id, kind, created_at) SELECT id, kind, created_at FROM transactions;
DROP TABLE transactions;
ALTER TABLE transactions_new RENAME TO transactions;
CREATE TRIGGER transactions_no_update BEFORE UPDATE ON transactions
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER transactions_no_delete BEFORE DELETE ON transactions
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;

CREATE TABLE bank_statements (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    sha256      TEXT NOT NULL UNIQUE,
    object_key  TEXT NOT NULL,
    kept_as     TEXT NOT NULL,
    account     TEXT,
    status      TEXT NOT NULL CHECK (status IN ('ACCEPTED', 'REJECTED')),
    entries     INTEGER NOT NULL,
    error_count INTEGER NOT NULL,
    received_at TEXT NOT NULL
);

CREATE TABLE bank_entries (
    account       TEXT NOT NULL,
    bank_ref      TEXT NOT NULL,
    statement_id  INTEGER NOT NULL REFERENCES bank_statements (id),
    position      INTEGER NOT NULL,
    booking_date  TEXT NOT NULL,
    value_date    TEXT NOT NULL,
    direction     TEXT NOT NULL CHECK (direction IN ('CREDIT', 'DEBIT')),
    amount        INTEGER NOT NULL CHECK (amount > 0),
    currency      TEXT NOT NULL,
    reference     TEXT,
    payer_name    TEXT,
    payer_account TEXT,
    PRIMARY KEY (account, bank_ref)
);
CREATE INDEX bank_entries_by_statement ON bank_entries (statement_id, position);

CREATE TABLE payer_accounts (
    account     TEXT PRIMARY KEY,
    operator_id TEXT NOT NULL REFERENCES operators (id),
    actor       TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);

CREATE TABLE deposits (
    document       TEXT PRIMARY KEY,
    transaction_id INTEGER NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('deposit', 'bank_debit', 'assignment')),
    bank_account   TEXT NOT NULL,
    bank_ref       TEXT NOT NULL,
    operator_id    TEXT REFERENCES operators (id),
    amount         INTEGER NOT NULL CHECK (amount > 0),
    matched_by     TEXT,
    settles_date   TEXT,
    business_date  TEXT NOT NULL,
    actor          TEXT,
    created_at     TEXT NOT NULL
);
CREATE INDEX deposits_by_date ON deposits (business_date);
CREATE INDEX deposits_by_operator ON deposits (operator_id, business_date);
CREATE TRIGGER deposits_no_update BEFORE UPDATE ON deposits
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER deposits_no_delete BEFORE DELETE ON deposits
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;

-- What each settlement line makes its operator owe, as each final report version changed
-- it (see the PostgreSQL migration).
CREATE TABLE settlement_dues (
    operator_id    TEXT NOT NULL REFERENCES operators (id),
    settles_date   TEXT NOT NULL,
    report_version INTEGER NOT NULL,
    due_date       TEXT NOT NULL,
    amount         INTEGER NOT NULL,
    business_date  TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    PRIMARY KEY (operator_id, settles_date, report_version)
);
CREATE INDEX settlement_dues_by_date ON settlement_dues (business_date);
CREATE TRIGGER settlement_dues_no_update BEFORE UPDATE ON settlement_dues
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER settlement_dues_no_delete BEFORE DELETE ON settlement_dues
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
