-- expect: parse-error statement-failed
ALTER TABLE accounts ADD COLUMN;
