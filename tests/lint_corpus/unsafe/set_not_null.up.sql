-- expect: adding-not-nullable-field lock-held-while-scanning
ALTER TABLE accounts ALTER COLUMN name SET NOT NULL;
