-- Operators' webhook endpoints (DESIGN.md, Events): at most one per operator. The signing
-- secret is kept so the relay can sign; the API shows it once, when it is made. A rotation
-- keeps the previous secret valid (deliveries carry both signatures) until previous_until.
-- failing_since, attempts and next_attempt_at are the state of the event at the head of
-- the endpoint's queue; an endpoint failing for 24 hours is disabled (disabled_at).
CREATE TABLE webhooks (
    operator_id      TEXT PRIMARY KEY REFERENCES operators (id),
    url              TEXT NOT NULL,
    secret           TEXT NOT NULL,
    previous_secret  TEXT,
    previous_until   TEXT,
    created_by       TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    failing_since    TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT,
    disabled_at      TEXT,
    last_delivered_at TEXT,
    -- The newest event when it was registered: older ones (even if given a position
    -- later) are not its.
    since_event_id   INTEGER NOT NULL DEFAULT 0
);

-- Every attempt to deliver an event to an endpoint, as the operator and ops read it back.
CREATE TABLE webhook_deliveries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    operator_id  TEXT NOT NULL,
    event_id     INTEGER NOT NULL,
    event_type   TEXT NOT NULL,
    url          TEXT NOT NULL,
    attempt      INTEGER NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('delivered', 'failed')),
    http_status  INTEGER,
    latency_ms   INTEGER NOT NULL,
    error        TEXT,
    attempted_at TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_by_operator ON webhook_deliveries (operator_id, id);

-- Each operator's events in order, for its webhook's queue.
CREATE INDEX outbox_by_operator ON outbox (operator_id, position) WHERE operator_id IS NOT NULL;
