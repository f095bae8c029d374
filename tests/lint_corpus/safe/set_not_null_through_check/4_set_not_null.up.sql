-- quiet: adding-not-nullable-field lock-held-while-scanning
ALTER TABLE accounts ALTER COLUMN name SET NOT NULL;
ALTER TABLE accounts DROP CONSTRAINT accounts_name_not_null;
