-- expect: disallowed-unique-constraint
ALTER TABLE accounts ADD COLUMN handle text UNIQUE;
