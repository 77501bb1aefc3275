-- A run keeps only its non-MATCHED items in the database (what people query); the whole
-- item list is a Parquet object in the store, which the run names with its sha256.
ALTER TABLE recon_runs ADD COLUMN items_key TEXT;
ALTER TABLE recon_runs ADD COLUMN items_sha256 TEXT;
