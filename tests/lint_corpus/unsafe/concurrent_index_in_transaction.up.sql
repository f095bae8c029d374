-- expect: ban-concurrent-index-creation-in-transaction statement-failed
CREATE INDEX CONCURRENTLY accounts_email_idx ON accounts (email);
