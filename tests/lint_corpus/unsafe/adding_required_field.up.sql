-- expect: adding-required-field statement-failed
ALTER TABLE accounts ADD COLUMN plan text NOT NULL;
