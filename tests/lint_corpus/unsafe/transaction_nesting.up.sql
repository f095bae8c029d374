-- expect: transaction-nesting
BEGIN;
ALTER TABLE accounts ADD COLUMN nickname text;
COMMIT;
