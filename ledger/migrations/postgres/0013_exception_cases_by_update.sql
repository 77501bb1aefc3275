-- The report's "open at the end of a date" reads the cases still undecided and those changed
-- since the date closed (exceptions::as_of); this index finds the latter without a scan.
CREATE INDEX exception_cases_by_update ON exception_cases (updated_at);
