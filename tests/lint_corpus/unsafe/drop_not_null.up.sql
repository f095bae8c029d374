-- expect: ban-drop-not-null
ALTER TABLE accounts ALTER COLUMN email DROP NOT NULL;
