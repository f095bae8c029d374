-- Why: undoes 20261201000300_messaging: everything it made lives in the messaging
-- schema.

DROP SCHEMA messaging CASCADE;
