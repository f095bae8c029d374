-- expect: down-restores-catalog
ALTER TABLE accounts ADD COLUMN nickname text;
