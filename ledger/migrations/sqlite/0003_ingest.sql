-- Data in: operators' sales files staged as received, dead-lettered events, and the
-- positions of the local event source.

CREATE TABLE operator_files (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    object_key    TEXT NOT NULL,
    operator_id   TEXT NOT NULL,
    business_date TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    sha256        TEXT NOT NULL UNIQUE,
    status        TEXT NOT NULL CHECK (status IN ('staging', 'accepted', 'rejected')),
    record_count  INTEGER NOT NULL DEFAULT 0,
    sales_total   INTEGER NOT NULL DEFAULT 0,
    voids_total   INTEGER NOT NULL DEFAULT 0,
    error_count   INTEGER NOT NULL DEFAULT 0,
    received_at   TEXT NOT NULL
);
CREATE INDEX operator_files_by_day ON operator_files (operator_id, business_date, seq);

CREATE TABLE operator_file_records (
    file_id       INTEGER NOT NULL,
    line          INTEGER NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('SALE', 'VOID')),
    operator_ref  TEXT NOT NULL,
    occurred_at   TEXT NOT NULL,
    card_id       TEXT NOT NULL,
    amount        INTEGER NOT NULL CHECK (amount > 0),
    currency      TEXT NOT NULL,
    point_of_sale TEXT NOT NULL,
    voided_ref    TEXT,
    PRIMARY KEY (file_id, line)
) WITHOUT ROWID;

CREATE TABLE dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    source      TEXT NOT NULL,
    position    TEXT NOT NULL,
    payload     BLOB NOT NULL,
    reason      TEXT NOT NULL,
    received_at TEXT NOT NULL,
    UNIQUE (source, position)
);

CREATE TABLE event_positions (
    source   TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
