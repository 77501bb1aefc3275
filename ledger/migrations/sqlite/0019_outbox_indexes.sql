-- As on PostgreSQL: the index by operator takes a row once it has its position. (The
-- position's own UNIQUE stays: SQLite cannot drop a column constraint, and one writer
-- pays little for it.)
DROP INDEX outbox_by_operator;
CREATE INDEX outbox_by_operator ON outbox (operator_id, position)
    WHERE operator_id IS NOT NULL AND position IS NOT NULL;
