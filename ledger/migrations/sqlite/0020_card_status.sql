-- Card status (DESIGN.md, Hotlists): kept on the card's account row, beside its balance, and
-- changed in the one write transaction SQLite allows at a time; every change in an
-- append-only history; replacements, whose balance moves once after the delay.
-- SQLite cannot change a CHECK in place: the transactions table is rebuilt with its triggers.
CREATE TABLE transactions_new (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL CHECK (kind IN ('sale', 'void', 'payment', 'validations', 'adjustment', 'writeoff', 'settlement', 'deposit', 'bank_debit', 'assignment', 'replacement')),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
INSERT INTO transactions_new (id, kind, created_at) SELECT id, kind, created_at FROM transactions;
DROP TABLE transactions;
ALTER TABLE transactions_new RENAME TO transactions;
CREATE TRIGGER transactions_no_update BEFORE UPDATE ON transactions
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER transactions_no_delete BEFORE DELETE ON transactions
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;

ALTER TABLE accounts ADD COLUMN blocked_reason TEXT
    CHECK (blocked_reason IN ('LOST', 'STOLEN', 'DAMAGED', 'NEGATIVE_BALANCE', 'FRAUD', 'REPLACED'));
ALTER TABLE accounts ADD COLUMN blocked_at TEXT;
ALTER TABLE accounts ADD COLUMN status_tx INTEGER;
CREATE INDEX accounts_blocked ON accounts (id) WHERE blocked_reason IS NOT NULL;

CREATE TABLE card_status_changes (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    card_id        TEXT NOT NULL,
    action         TEXT NOT NULL CHECK (action IN ('BLOCK', 'UNBLOCK')),
    reason         TEXT NOT NULL,
    at             TEXT NOT NULL,
    operator_id    TEXT REFERENCES operators (id),
    actor          TEXT NOT NULL,
    note           TEXT,
    transaction_id INTEGER
);
CREATE INDEX card_status_changes_by_card ON card_status_changes (card_id, id);
CREATE TRIGGER card_status_changes_no_update BEFORE UPDATE ON card_status_changes
    BEGIN SELECT RAISE(ABORT, 'the card history is append-only'); END;
CREATE TRIGGER card_status_changes_no_delete BEFORE DELETE ON card_status_changes
    BEGIN SELECT RAISE(ABORT, 'the card history is append-only'); END;

CREATE TABLE card_replacements (
    old_card_id    TEXT PRIMARY KEY,
    new_card_id    TEXT NOT NULL UNIQUE,
    operator_id    TEXT NOT NULL REFERENCES operators (id),
    actor          TEXT NOT NULL,
    requested_at   TEXT NOT NULL,
    transfer_after TEXT NOT NULL,
    transferred_at TEXT,
    amount         INTEGER CHECK (amount >= 0),
    business_date  TEXT,
    transaction_id INTEGER,
    CHECK ((transferred_at IS NULL) = (amount IS NULL))
);
CREATE INDEX card_replacements_due ON card_replacements (transfer_after) WHERE transferred_at IS NULL;
