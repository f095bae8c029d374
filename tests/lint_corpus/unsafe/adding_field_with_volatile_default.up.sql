-- expect: adding-field-with-default table-rewrite
ALTER TABLE accounts ADD COLUMN token uuid DEFAULT gen_random_uuid();
