-- Why: what every schema shares. The extension behind gen_random_uuid(), the trigger
-- function that keeps updated_at, the roles services connect through, the function that
-- hands a schema to its owner role, and the advisory locks kept for the event store.
--
-- Roles (docs/SECURITY.md): all NOLOGIN groups, cluster-wide, so they may already exist
-- (another database of the cluster, an earlier run) and are never dropped on the way
-- down. Services connect as login roles that are members of one of them.
--
-- * groundwork_owner owns the application schemas and everything in them, so a
--   SECURITY DEFINER function runs with exactly the owner's privileges, never a
--   superuser's;
-- * groundwork_app reads and writes data but cannot change the schema, and is subject
--   to row-level security keyed by app.current_org_id and app.current_user_id (unset
--   settings match no row); groundwork_readonly only reads;
-- * groundwork_auth does the lookups a login needs before anyone is authenticated;
--   groundwork_relay delivers the outbox of every tenant.
--
-- The advisory-lock functions are taken away from PUBLIC in this database and granted
-- to groundwork_owner, so that only the event store's functions can take its locks (a
-- tenant holding them could stall another's appends and reads). Only a superuser can
-- change the privileges of pg_catalog functions; when a non-superuser applies this
-- migration the functions stay public and a warning says so.

CREATE EXTENSION IF NOT EXISTS pgcrypto;

-- updated_at is kept by the database, never by callers.
CREATE FUNCTION public.set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION public.set_updated_at() IS
    'BEFORE UPDATE trigger function that stamps updated_at on every mutable table';

-- Two databases migrating at once can race between the check and the CREATE; the
-- loser sees a unique violation on pg_authid, which means the same thing.
DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['groundwork_app', 'groundwork_readonly', 'groundwork_owner',
                                     'groundwork_auth', 'groundwork_relay'] LOOP
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END LOOP;
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
