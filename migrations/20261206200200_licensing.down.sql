-- Why: undoes 20261206200200_licensing.

DROP TRIGGER organization_members_free_seats ON identity.organization_members;
DROP SCHEMA licensing CASCADE;
