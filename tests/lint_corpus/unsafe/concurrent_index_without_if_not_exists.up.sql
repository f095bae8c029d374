-- groundwork:no-transaction
-- expect: prefer-robust-stmts
CREATE INDEX CONCURRENTLY accounts_email_idx ON accounts (email);
