-- One index per staged record instead of two: the primary key leads with what the reconcile
-- job looks records up by (a file, then a kind and a ref: the neighbours' VOIDs and their
-- SALEs of given refs), and still ends with the line, so it stays unique. Keeping both the
-- old key on (file_id, line) and the index by ref cost staging about a third of its time
-- (BENCHMARKS.md, settle); nothing reads records by line. A file's lines are numbered once
-- by the parser, one record per line.
ALTER TABLE operator_file_records
    DROP CONSTRAINT operator_file_records_pkey,
    ADD PRIMARY KEY (file_id, kind, operator_ref, line);
DROP INDEX operator_file_records_by_ref;
