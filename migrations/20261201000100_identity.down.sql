-- Why: undoes 20261201000100_identity: everything it made lives in the identity
-- schema. The roles stay (20261201000000_foundation).

DROP SCHEMA identity CASCADE;
