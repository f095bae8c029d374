-- quiet: adding-field-with-default table-rewrite
ALTER TABLE accounts ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
