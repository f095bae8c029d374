-- expect: lint-annotation ban-drop-column
-- groundwork:lint allow ban-drop-column
ALTER TABLE accounts DROP COLUMN name;
