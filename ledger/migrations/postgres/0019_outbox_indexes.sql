-- A sale, a payment or a validation batch writes its event's row and nothing more on the
-- request path: the indexes by position and by operator take a row only once the relay
-- gave it its position (BENCHMARKS.md, events out). Every reader of positions asks for
-- `position > $1` or `position IS NULL`, which these partial indexes answer.
ALTER TABLE outbox DROP CONSTRAINT outbox_position_key;
CREATE UNIQUE INDEX outbox_position ON outbox (position) WHERE position IS NOT NULL;
DROP INDEX outbox_by_operator;
CREATE INDEX outbox_by_operator ON outbox (operator_id, position)
    WHERE operator_id IS NOT NULL AND position IS NOT NULL;
