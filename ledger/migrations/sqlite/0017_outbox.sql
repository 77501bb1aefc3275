-- The outbox (DESIGN.md, Events): every change other systems hear of, written in the same
-- database transaction as the change, and relayed from here. `id` is the CloudEvents id;
-- `position` is given once by the one sequencer, in the order rows became visible (on
-- SQLite, with its one writer, that is also the order of `id`).
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    position    INTEGER UNIQUE,
    type        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    operator_id TEXT,
    time        TEXT NOT NULL,
    data        TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX outbox_unsequenced ON outbox (id) WHERE position IS NULL;

CREATE TABLE outbox_relays (
    relay      TEXT PRIMARY KEY,
    position   INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
