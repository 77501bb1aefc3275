-- The ledger: operators, accounts with cached balances, the append-only journal
-- (transactions and postings), and the source documents that caused each transaction.
-- Instants are stored as RFC 3339 UTC text, dates as YYYY-MM-DD.

CREATE TABLE operators (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    commission_rate     TEXT NOT NULL,
    tax_rate            TEXT NOT NULL,
    void_window_secs    INTEGER NOT NULL CHECK (void_window_secs >= 0),
    settlement_lag_days INTEGER NOT NULL CHECK (settlement_lag_days >= 0),
    active              INTEGER NOT NULL DEFAULT 1,
    created_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- Cached balances. Credit positive: a card's balance is the value its rider holds.
CREATE TABLE accounts (
    id      TEXT PRIMARY KEY,
    balance INTEGER NOT NULL DEFAULT 0,
    flagged INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE transactions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL CHECK (kind IN ('sale', 'void', 'payment', 'validations')),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE postings (
    transaction_id INTEGER NOT NULL,
    account_id     TEXT NOT NULL,
    amount         INTEGER NOT NULL CHECK (amount <> 0),
    PRIMARY KEY (transaction_id, account_id)
) WITHOUT ROWID;

-- The journal is append-only: a correction is a new transaction.
CREATE TRIGGER postings_no_update BEFORE UPDATE ON postings
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER postings_no_delete BEFORE DELETE ON postings
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER transactions_no_update BEFORE UPDATE ON transactions
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER transactions_no_delete BEFORE DELETE ON transactions
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;

CREATE TABLE sales (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    operator_id         TEXT NOT NULL REFERENCES operators (id),
    operator_ref        TEXT NOT NULL,
    card_id             TEXT NOT NULL,
    amount              INTEGER NOT NULL CHECK (amount > 0),
    currency            TEXT NOT NULL,
    point_of_sale       TEXT NOT NULL,
    occurred_at         TEXT NOT NULL,
    business_date       TEXT NOT NULL,
    transaction_id      INTEGER NOT NULL,
    voided_at           TEXT,
    void_business_date  TEXT,
    void_transaction_id INTEGER,
    UNIQUE (operator_id, operator_ref),
    CHECK ((voided_at IS NULL) = (void_transaction_id IS NULL))
);
CREATE INDEX sales_by_operator_date ON sales (operator_id, business_date, id);
CREATE INDEX sales_by_void_date ON sales (operator_id, void_business_date) WHERE voided_at IS NOT NULL;
CREATE INDEX sales_by_card ON sales (card_id);

CREATE TABLE payments (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    operator_id           TEXT NOT NULL REFERENCES operators (id),
    payment_ref           TEXT NOT NULL,
    card_id               TEXT NOT NULL,
    amount                INTEGER NOT NULL CHECK (amount > 0),
    currency              TEXT NOT NULL,
    route_id              TEXT NOT NULL,
    transport_operator_id TEXT NOT NULL,
    occurred_at           TEXT NOT NULL,
    business_date         TEXT NOT NULL,
    transaction_id        INTEGER NOT NULL,
    UNIQUE (operator_id, payment_ref)
);
CREATE INDEX payments_by_card ON payments (card_id);
CREATE INDEX payments_by_date ON payments (business_date);

CREATE TABLE validations (
    device_id             TEXT NOT NULL,
    device_seq            INTEGER NOT NULL,
    event_id              TEXT NOT NULL,
    card_id               TEXT NOT NULL,
    fare                  INTEGER NOT NULL CHECK (fare > 0),
    currency              TEXT NOT NULL,
    route_id              TEXT NOT NULL,
    transport_operator_id TEXT NOT NULL,
    occurred_at           TEXT NOT NULL,
    business_date         TEXT NOT NULL,
    transaction_id        INTEGER NOT NULL,
    PRIMARY KEY (device_id, device_seq)
) WITHOUT ROWID;
CREATE INDEX validations_by_card ON validations (card_id);
CREATE INDEX validations_by_date ON validations (business_date);
