-- Why: SECURITY DEFINER functions ran as whichever role applied the migrations (a
-- superuser in practice), and any role could take the advisory locks the event store
-- relies on, stalling another tenant's appends and reads. This migration:
--
-- * creates groundwork_owner, a NOLOGIN role that owns the application schemas and
--   everything in them, so a definer function runs with exactly the owner's
--   privileges, never a superuser's;
-- * creates groundwork_auth, for the lookups a login needs before anyone is
--   authenticated, and groundwork_relay, for delivering the outbox of every tenant;
-- * adds public.groundwork_set_owner(schema, role), the one way a migration hands a
--   schema and its objects to groundwork_owner (and a down migration takes them back);
-- * takes the advisory-lock functions away from PUBLIC in this database and grants
--   them to groundwork_owner, so that only the event store's functions can take its
--   locks. Only a superuser can change the privileges of pg_catalog functions; when
--   a non-superuser applies this migration the functions stay public and a warning
--   says so (docs/SECURITY.md tells what to run instead).

-- Roles are cluster-wide and may already exist; see 20261121233100 for the race.
DO $$
BEGIN
    CREATE ROLE groundwork_owner NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

DO $$
BEGIN
    CREATE ROLE groundwork_auth NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

DO $$
BEGIN
    CREATE ROLE groundwork_relay NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

-- A migrating role that is not a superuser needs membership to alter what the owner
-- role owns in later migrations.
DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT groundwork_owner TO %I', current_user);
    END IF;
END
$$;

-- Hands schema p_schema and every table, view, sequence, function and type in it to
-- p_owner. Sequences owned by a table column follow their table.
CREATE FUNCTION public.groundwork_set_owner(p_schema name, p_owner name) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    object record;
BEGIN
    EXECUTE format('ALTER SCHEMA %I OWNER TO %I', p_schema, p_owner);
    FOR object IN
        SELECT format('ALTER %s %s OWNER TO %I',
                      CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                     WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
                      c.oid::regclass, p_owner) AS command
        FROM pg_class c
        WHERE c.relnamespace = p_schema::regnamespace
          AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
          AND NOT EXISTS (SELECT FROM pg_depend d
                          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                            AND d.deptype IN ('a', 'i') AND d.refclassid = 'pg_class'::regclass)
        UNION ALL
        SELECT format('ALTER %s %s OWNER TO %I',
                      CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
                      p.oid::regprocedure, p_owner)
        FROM pg_proc p
        WHERE p.pronamespace = p_schema::regnamespace
        UNION ALL
        SELECT format('ALTER %s %s OWNER TO %I',
                      CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
                      t.oid::regtype, p_owner)
        FROM pg_type t
        WHERE t.typnamespace = p_schema::regnamespace
          AND (t.typtype IN ('e', 'd')
               OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c'))
    LOOP
        EXECUTE object.command;
    END LOOP;
END
$$;

COMMENT ON FUNCTION public.groundwork_set_owner(name, name) IS
    'Hands a schema and every object in it to a role; migrations give application schemas to groundwork_owner';

SELECT public.groundwork_set_owner(s, 'groundwork_owner')
FROM unnest(ARRAY['identity', 'eventstore', 'messaging']::name[]) s;

-- Advisory locks are for the event store's functions only.
DO $$
DECLARE
    f regprocedure;
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RAISE WARNING 'the advisory-lock functions stay executable by every role: only a superuser can revoke them (see docs/SECURITY.md)';
        RETURN;
    END IF;
    FOR f IN SELECT oid::regprocedure FROM pg_proc
             WHERE pronamespace = 'pg_catalog'::regnamespace AND proname LIKE 'pg\_%advisory\_%'
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO groundwork_owner', f);
    END LOOP;
END
$$;
