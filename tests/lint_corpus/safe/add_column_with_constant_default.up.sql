-- quiet: adding-required-field adding-field-with-default table-rewrite
ALTER TABLE accounts ADD COLUMN plan text NOT NULL DEFAULT 'free';
