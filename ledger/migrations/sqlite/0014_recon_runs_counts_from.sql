-- The first date whose end a run's changes to exception cases count by (besides the run's
-- own date): the first date from the run's on that had no final report when the cases were
-- synced. A published report's "open at the end of the date" is never changed by a later
-- run (exceptions::as_of). Empty for runs synced before this column.
ALTER TABLE recon_runs ADD COLUMN counts_from TEXT;
