-- quiet: disallowed-unique-constraint lock-held-while-scanning
ALTER TABLE accounts ADD CONSTRAINT accounts_email_key UNIQUE USING INDEX accounts_email_key;
