-- expect: disallowed-unique-constraint lock-held-while-scanning
ALTER TABLE accounts ADD CONSTRAINT accounts_email_key UNIQUE (email);
