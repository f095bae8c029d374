-- quiet: ban-drop-table renaming-table
CREATE TABLE scratch (id bigint PRIMARY KEY);
ALTER TABLE scratch RENAME TO scratch_old;
DROP TABLE scratch_old;
