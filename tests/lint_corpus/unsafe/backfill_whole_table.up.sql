-- expect: lock-held-while-scanning
ALTER TABLE accounts ADD COLUMN email_lower text;
UPDATE accounts SET email_lower = lower(email);
