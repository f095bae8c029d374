-- Reverts create_index_concurrently.up.sql
DROP INDEX accounts_email_idx;
