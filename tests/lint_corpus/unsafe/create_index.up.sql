-- expect: require-concurrent-index-creation lock-held-while-scanning
CREATE INDEX accounts_email_idx ON accounts (email);
