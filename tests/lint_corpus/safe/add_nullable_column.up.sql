-- quiet: adding-required-field adding-field-with-default down-restores-catalog statement-failed transaction-nesting ban-drop-database parse-error
ALTER TABLE accounts ADD COLUMN nickname text;
