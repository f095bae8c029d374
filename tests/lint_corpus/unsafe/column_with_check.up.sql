-- expect: constraint-missing-not-valid lock-held-while-scanning
ALTER TABLE accounts ADD COLUMN score int DEFAULT 0 CHECK (score >= 0);
