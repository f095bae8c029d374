-- quiet: prefer-bigint-over-smallint prefer-bigint-over-int
-- Only key columns run out of numbers.
ALTER TABLE accounts ADD COLUMN rank smallint, ADD COLUMN visits integer;
