-- The settlement lines of each date's latest final report (DESIGN.md, Online API): what an
-- operator reads through GET /v1/settlements without waiting for the object store. A new
-- version of a date's report replaces the date's lines; amounts in minor units.
CREATE TABLE settlement_lines (
    operator_id      TEXT NOT NULL REFERENCES operators (id),
    business_date    TEXT NOT NULL,
    report_version   INTEGER NOT NULL,
    currency         TEXT NOT NULL,
    sales_count      INTEGER NOT NULL,
    sales_amount     INTEGER NOT NULL,
    voids_count      INTEGER NOT NULL,
    voids_amount     INTEGER NOT NULL,
    net_sales        INTEGER NOT NULL,
    commission_rate  TEXT NOT NULL,
    commission       INTEGER NOT NULL,
    commission_tax   INTEGER NOT NULL,
    net_due          INTEGER NOT NULL,
    due_date         TEXT NOT NULL,
    matched_count    INTEGER NOT NULL,
    exception_count  INTEGER NOT NULL,
    exception_amount INTEGER NOT NULL,
    adjustments      INTEGER NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('BALANCED', 'EXCEPTIONS', 'NO_FILE')),
    payment_reference TEXT NOT NULL,
    published_at     TEXT NOT NULL,
    PRIMARY KEY (operator_id, business_date)
);
CREATE INDEX settlement_lines_by_date ON settlement_lines (business_date);
