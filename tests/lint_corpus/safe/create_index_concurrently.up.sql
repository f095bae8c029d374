-- groundwork:no-transaction
-- quiet: require-concurrent-index-creation prefer-robust-stmts ban-concurrent-index-creation-in-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_email_idx ON accounts (email);
