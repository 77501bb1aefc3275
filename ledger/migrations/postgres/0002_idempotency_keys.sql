-- Idempotency-Key records of the online API, scoped per operator. A key is claimed
-- (response_status NULL, "in flight") before the work and completed with the response.
CREATE TABLE idempotency_keys (
    operator_id     text NOT NULL,
    key             text NOT NULL,
    request_hash    text NOT NULL,
    response_status integer,
    response_body   bytea,
    claimed_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (operator_id, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
