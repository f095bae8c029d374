-- quiet: lock-held-while-scanning
ALTER TABLE accounts VALIDATE CONSTRAINT accounts_name_not_null;
