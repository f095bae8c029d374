-- expect: ban-drop-column
ALTER TABLE accounts DROP COLUMN name;
