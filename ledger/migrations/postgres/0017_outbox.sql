-- The outbox (DESIGN.md, Events): every change other systems hear of, written in the same
-- database transaction as the change, and relayed from here (nothing is sent from inside a
-- request). `id` is the CloudEvents id and the order rows were written in; `position` is
-- given once, by the one sequencer (the relay holding its job's lock), in the order rows
-- became visible, so a reader that follows positions never passes over a row whose
-- transaction committed late. Rows are never changed after that.
CREATE TABLE outbox (
    id          BIGSERIAL PRIMARY KEY,
    position    BIGINT UNIQUE,
    type        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    operator_id TEXT,
    time        TIMESTAMPTZ NOT NULL,
    data        JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX outbox_unsequenced ON outbox (id) WHERE position IS NULL;

-- How far each relay (publish-events, deliver-webhooks) has had its events acknowledged.
CREATE TABLE outbox_relays (
    relay      TEXT PRIMARY KEY,
    position   BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
