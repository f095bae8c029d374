-- quiet: ban-drop-column lint-annotation
-- groundwork:lint allow ban-drop-column because no release since 1.4 reads accounts.name
ALTER TABLE accounts DROP COLUMN name;
