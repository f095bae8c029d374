-- quiet: constraint-missing-not-valid
ALTER TABLE accounts ADD CONSTRAINT accounts_name_not_null CHECK (name IS NOT NULL) NOT VALID;
