-- Why: undoes 20261206100000_catalog: everything it made lives in the catalog schema.

DROP SCHEMA catalog CASCADE;
