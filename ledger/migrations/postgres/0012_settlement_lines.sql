-- The settlement lines of each date's latest final report (DESIGN.md, Online API): what an
-- operator reads through GET /v1/settlements without waiting for the object store. A new
-- version of a date's report replaces the date's lines; amounts in minor units.
CREATE TABLE settlement_lines (
    operator_id      text NOT NULL REFERENCES operators (id),
    business_date    date NOT NULL,
    report_version   integer NOT NULL,
    currency         text NOT NULL,
    sales_count      bigint NOT NULL,
    sales_amount     bigint NOT NULL,
    voids_count      bigint NOT NULL,
    voids_amount     bigint NOT NULL,
    net_sales        bigint NOT NULL,
    commission_rate  text NOT NULL,
    commission       bigint NOT NULL,
    commission_tax   bigint NOT NULL,
    net_due          bigint NOT NULL,
    due_date         date NOT NULL,
    matched_count    bigint NOT NULL,
    exception_count  bigint NOT NULL,
    exception_amount bigint NOT NULL,
    adjustments      bigint NOT NULL,
    status           text NOT NULL CHECK (status IN ('BALANCED', 'EXCEPTIONS', 'NO_FILE')),
    payment_reference text NOT NULL,
    published_at     timestamptz NOT NULL,
    PRIMARY KEY (operator_id, business_date)
);
CREATE INDEX settlement_lines_by_date ON settlement_lines (business_date);
