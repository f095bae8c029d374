-- Why: undoes 20261206200300_cad.

REVOKE EXECUTE ON FUNCTION licensing.user_limits(uuid, uuid) FROM groundwork_app, groundwork_readonly;
DROP SCHEMA cad CASCADE;
