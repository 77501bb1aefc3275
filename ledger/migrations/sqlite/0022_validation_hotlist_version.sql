-- The action-list version a validator had applied when it accepted a tap (DESIGN.md,
-- Validation events): absent from older devices, so nullable. The day's report names, per
-- device with hotlist violations, the newest version it reported.
ALTER TABLE validations ADD COLUMN hotlist_version bigint CHECK (hotlist_version >= 0);
