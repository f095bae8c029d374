-- Why: undoes 20261123000000_owner_and_service_roles: the advisory-lock functions are
-- public again and the application schemas go back to the migrating role. The roles
-- are cluster-wide and stay (other databases may use them).

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

SELECT public.groundwork_set_owner(s, current_user)
FROM unnest(ARRAY['identity', 'eventstore', 'messaging']::name[]) s;

DROP FUNCTION public.groundwork_set_owner(name, name);

DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('REVOKE groundwork_owner FROM %I', current_user);
    END IF;
END
$$;
