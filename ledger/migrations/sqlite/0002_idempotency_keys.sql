-- Idempotency-Key records of the online API, scoped per operator. A key is claimed
-- (response_status NULL, "in flight") before the work and completed with the response.
CREATE TABLE idempotency_keys (
    operator_id     TEXT NOT NULL,
    key             TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    response_status INTEGER,
    response_body   BLOB,
    claimed_at      TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (operator_id, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
