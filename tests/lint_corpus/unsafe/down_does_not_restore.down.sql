-- Reverts down_does_not_restore.up.sql, but forgets the column
SELECT 1;
