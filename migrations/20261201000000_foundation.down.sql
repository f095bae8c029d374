-- Why: undoes 20261201000000_foundation. The advisory-lock functions are public again;
-- the roles are cluster-wide and stay (other databases may use them).

DO $$
DECLARE
    f regprocedure;
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RETURN;
    END IF;
    FOR f IN SELECT oid::regprocedure FROM pg_proc
             WHERE pronamespace = 'pg_catalog'::regnamespace AND proname LIKE 'pg\_%advisory\_%'
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM groundwork_owner', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO PUBLIC', f);
    END LOOP;
END
$$;

DROP FUNCTION public.groundwork_set_owner(name, name);

DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('REVOKE groundwork_owner FROM %I', current_user);
    END IF;
END
$$;

DROP FUNCTION public.set_updated_at();
DROP EXTENSION IF EXISTS pgcrypto;
