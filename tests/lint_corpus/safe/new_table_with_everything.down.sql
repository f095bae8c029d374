-- Reverts new_table_with_everything.up.sql
DROP TABLE invoices;
