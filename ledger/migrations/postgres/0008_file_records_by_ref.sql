-- The reconcile job reads a date's neighbours only for the keys one side alone has on the
-- date: the adjacent files' VOIDs, and their SALE records of given refs. Records of a file
-- arrive in line order, which is mostly ref order, so the index grows at its end.
CREATE INDEX operator_file_records_by_ref ON operator_file_records (file_id, kind, operator_ref);
