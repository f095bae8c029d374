-- expect: ban-char-field
ALTER TABLE accounts ADD COLUMN country char(2);
