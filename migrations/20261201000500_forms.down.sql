-- Why: undoes 20261201000500_forms: everything it made lives in the forms schema, and
-- its events stay in the event store like every other stream's.

DROP SCHEMA forms CASCADE;
