-- expect: renaming-column
ALTER TABLE accounts RENAME COLUMN name TO full_name;
