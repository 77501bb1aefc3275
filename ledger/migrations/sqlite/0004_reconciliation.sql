-- Reconciliation runs: every run is kept; exactly one run per date is current.
CREATE TABLE recon_runs (
    id            TEXT PRIMARY KEY,
    business_date TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    items         INTEGER NOT NULL,
    exceptions    INTEGER NOT NULL,
    is_current    INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX recon_runs_current ON recon_runs (business_date) WHERE is_current;

CREATE TABLE recon_items (
    run_id             TEXT NOT NULL,
    operator_id        TEXT NOT NULL,
    operator_ref       TEXT NOT NULL,
    case_name          TEXT NOT NULL,
    ledger_card_id     TEXT,
    file_card_id       TEXT,
    ledger_amount      INTEGER,
    file_amount        INTEGER,
    difference         INTEGER NOT NULL,
    ledger_occurred_at TEXT,
    file_occurred_at   TEXT,
    PRIMARY KEY (run_id, operator_id, operator_ref)
) WITHOUT ROWID;

CREATE TABLE recon_summaries (
    run_id        TEXT NOT NULL,
    operator_id   TEXT NOT NULL,
    counts        TEXT NOT NULL,
    ledger_total  INTEGER NOT NULL,
    file_total    INTEGER NOT NULL,
    exceptions_difference INTEGER NOT NULL,
    PRIMARY KEY (run_id, operator_id)
);
