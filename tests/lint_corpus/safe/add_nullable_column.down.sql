-- Reverts add_nullable_column.up.sql
ALTER TABLE accounts DROP COLUMN nickname;
