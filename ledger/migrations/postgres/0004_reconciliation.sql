-- Reconciliation runs: every run is kept; exactly one run per date is current.
CREATE TABLE recon_runs (
    id            text PRIMARY KEY,
    business_date date NOT NULL,
    created_at    timestamptz NOT NULL,
    items         bigint NOT NULL,
    exceptions    bigint NOT NULL,
    is_current    boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX recon_runs_current ON recon_runs (business_date) WHERE is_current;

CREATE TABLE recon_items (
    run_id             text NOT NULL,
    operator_id        text NOT NULL,
    operator_ref       text NOT NULL,
    case_name          text NOT NULL,
    ledger_card_id     text,
    file_card_id       text,
    ledger_amount      bigint,
    file_amount        bigint,
    difference         bigint NOT NULL,
    ledger_occurred_at timestamptz,
    file_occurred_at   timestamptz,
    PRIMARY KEY (run_id, operator_id, operator_ref)
);

CREATE TABLE recon_summaries (
    run_id        text NOT NULL,
    operator_id   text NOT NULL,
    counts        text NOT NULL,
    ledger_total  bigint NOT NULL,
    file_total    bigint NOT NULL,
    exceptions_difference bigint NOT NULL,
    PRIMARY KEY (run_id, operator_id)
);
