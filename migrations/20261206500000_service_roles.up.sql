-- Why: seed 002's least privilege per service. Each bounded context gets a role of its
-- own that may touch its own schema and only what it is granted of others, still under
-- row-level security (docs/SECURITY.md, "Service roles"). groundwork_app keeps
-- everything it had: these roles are for services that want less.
--
-- * The roles are NOLOGIN groups, cluster-wide, made the way the foundation makes its
--   groups (they may exist already, and are never dropped). A service connects as a
--   login role that is a member of its context's role.
-- * groundwork_service holds no privilege. Every service role is a member, and every
--   policy that names groundwork_app or groundwork_readonly now names it too, so that
--   a service role sees its tenant's rows, and no others, exactly as the application
--   role does. A policy of a later migration names groundwork_service as well.
-- * A context's own schema: public.groundwork_grant_like copies what groundwork_app
--   holds in it (schema, tables, columns, sequences, functions, types) to the
--   context's role, so catalog_service, inventory_service, projects_service and
--   forms_service may do in their schema exactly what the application may.
-- * sales and payments have no schema yet: sales_service and payments_service are made
--   now with their grants of other schemas, and the migrations that create sales and
--   payments grant their own schema to them (and the business schemas' reads to
--   analytics_service) with public.groundwork_grant_like, and name
--   groundwork_service in their policies.
-- * What each role gets of other schemas, and why:
--   - every service role: USAGE on identity, for the tenant context its policies and
--     column defaults read (identity.current_org_id() and current_user_id(), which
--     every role may execute); no identity table, but:
--   - projects_service: organization_id, user_id and status of the tenant's
--     memberships, which the projects triggers read with the caller's rights to
--     check that an owner or a member is an active member of the organization;
--   - the services that publish business events and take idempotent requests (all
--     but analytics_service): the tenant's outbox (read it, insert its business
--     columns) and idempotency keys, with the columns groundwork_app has; no job
--     queue, which services use through groundwork_app's job context;
--   - forms_service: the event store as groundwork_app has it (forms are the
--     event-sourced context of seed 004: append, read, subscriptions);
--   - inventory_service and sales_service: read catalog.products (stock is kept per
--     product; an order prices its lines);
--   - sales_service: read inventory.stock_levels and reservations, and execute
--     reserve_inventory, release_reservation, fulfill_reservation and
--     cleanup_expired_reservations; no write on any inventory table, so stock moves
--     only through those functions and their movements;
--   - analytics_service: reads what groundwork_readonly reads in the business schemas
--     (cad, catalog, forms, inventory, licensing, projects), and of identity only
--     organizations and the membership columns without invitation e-mail, token hash
--     or expiry; never writes, and nothing of eventstore, messaging or ops (payloads,
--     job arguments and cached responses may carry personal data; see "Personal
--     data"), nor password, token or key hashes, personal columns or key tables.

-- Two databases migrating at once can race between the check and the CREATE; the
-- loser sees a unique violation on pg_authid, which means the same thing.
DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['groundwork_service', 'catalog_service', 'inventory_service',
                                     'projects_service', 'forms_service', 'sales_service',
                                     'payments_service', 'analytics_service'] LOOP
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END LOOP;
END
$$;

-- The membership is cluster-wide too: granted once, when another database of the
-- cluster has not granted it already.
DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['catalog_service', 'inventory_service', 'projects_service',
                                     'forms_service', 'sales_service', 'payments_service',
                                     'analytics_service'] LOOP
        IF NOT pg_has_role(role_name, 'groundwork_service', 'MEMBER') THEN
            EXECUTE format('GRANT groundwork_service TO %I', role_name);
        END IF;
    END LOOP;
END
$$;

-- Grants p_to every privilege p_from holds directly in schema p_schema: USAGE on the
-- schema, and the privileges on its tables, views, sequences, columns, functions,
-- procedures and types, without grant option. Privileges p_from has through PUBLIC or
-- another role are not copied.
CREATE FUNCTION public.groundwork_grant_like(p_schema name, p_from name, p_to name) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    source oid := (SELECT oid FROM pg_roles WHERE rolname = p_from);
    schema_oid oid := (SELECT oid FROM pg_namespace WHERE nspname = p_schema);
    grant_ record;
BEGIN
    IF source IS NULL OR schema_oid IS NULL THEN
        RAISE EXCEPTION 'groundwork_grant_like: no role % or no schema %', p_from, p_schema
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR grant_ IN
        SELECT format('GRANT %s ON SCHEMA %I TO %I', a.privilege_type, n.nspname, p_to) AS command
        FROM pg_namespace n, aclexplode(n.nspacl) a
        WHERE n.oid = schema_oid AND a.grantee = source
        UNION ALL
        SELECT format('GRANT %s ON %s %s TO %I', a.privilege_type,
                      CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, c.oid::regclass, p_to)
        FROM pg_class c, aclexplode(c.relacl) a
        WHERE c.relnamespace = schema_oid AND a.grantee = source
        UNION ALL
        SELECT format('GRANT %s (%I) ON TABLE %s TO %I', a.privilege_type, att.attname,
                      c.oid::regclass, p_to)
        FROM pg_class c
        JOIN pg_attribute att ON att.attrelid = c.oid AND NOT att.attisdropped,
             aclexplode(att.attacl) a
        WHERE c.relnamespace = schema_oid AND a.grantee = source
        UNION ALL
        SELECT format('GRANT %s ON %s %s TO %I', a.privilege_type,
                      CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
                      p.oid::regprocedure, p_to)
        FROM pg_proc p, aclexplode(p.proacl) a
        WHERE p.pronamespace = schema_oid AND a.grantee = source
        UNION ALL
        SELECT format('GRANT %s ON %s %s TO %I', a.privilege_type,
                      CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, t.oid::regtype, p_to)
        FROM pg_type t, aclexplode(t.typacl) a
        WHERE t.typnamespace = schema_oid AND a.grantee = source
    LOOP
        EXECUTE grant_.command;
    END LOOP;
END
$$;

COMMENT ON FUNCTION public.groundwork_grant_like(name, name, name) IS
    'Grants a role what another role holds directly in a schema; migrations give a context''s service role what groundwork_app has in its schema';

-- Each context's own schema, as groundwork_app has it.
SELECT public.groundwork_grant_like('catalog', 'groundwork_app', 'catalog_service');
SELECT public.groundwork_grant_like('inventory', 'groundwork_app', 'inventory_service');
SELECT public.groundwork_grant_like('projects', 'groundwork_app', 'projects_service');
SELECT public.groundwork_grant_like('forms', 'groundwork_app', 'forms_service');
-- The forms service appends and reads events as the application role does.
SELECT public.groundwork_grant_like('eventstore', 'groundwork_app', 'forms_service');

-- The tenant context: identity.current_org_id() and current_user_id().
GRANT USAGE ON SCHEMA identity TO catalog_service, inventory_service, projects_service,
    forms_service, sales_service, payments_service, analytics_service;

-- The projects triggers check memberships as the caller.
GRANT SELECT (organization_id, user_id, status) ON identity.organization_members
    TO projects_service;

-- Business events and idempotent requests, with groundwork_app's columns.
GRANT USAGE ON SCHEMA messaging TO catalog_service, inventory_service, projects_service,
    forms_service, sales_service, payments_service;
GRANT SELECT ON messaging.outbox_messages TO catalog_service, inventory_service,
    projects_service, forms_service, sales_service, payments_service;
GRANT INSERT (topic, partition_key, payload, headers, priority, max_attempts)
    ON messaging.outbox_messages TO catalog_service, inventory_service, projects_service,
    forms_service, sales_service, payments_service;
GRANT SELECT, DELETE ON messaging.idempotency_keys TO catalog_service, inventory_service,
    projects_service, forms_service, sales_service, payments_service;
GRANT INSERT (key, request_hash, expires_at), UPDATE (status, response, completed_at)
    ON messaging.idempotency_keys TO catalog_service, inventory_service, projects_service,
    forms_service, sales_service, payments_service;

-- Forms are event-sourced.
SELECT public.groundwork_grant_like('eventstore', 'groundwork_app', 'forms_service');

-- Products, read by the contexts that stock and sell them.
GRANT USAGE ON SCHEMA catalog TO inventory_service, sales_service;
GRANT SELECT ON catalog.products TO inventory_service, sales_service;

-- Sales reserves stock through inventory's functions and never writes its tables.
GRANT USAGE ON SCHEMA inventory TO sales_service;
GRANT SELECT ON inventory.stock_levels, inventory.reservations TO sales_service;
GRANT EXECUTE ON FUNCTION inventory.reserve_inventory(uuid, integer),
    inventory.release_reservation(uuid), inventory.fulfill_reservation(uuid),
    inventory.cleanup_expired_reservations() TO sales_service;

-- Analytics reads the business schemas as groundwork_readonly does, and of identity
-- no secret.
SELECT public.groundwork_grant_like(s, 'groundwork_readonly', 'analytics_service')
FROM unnest(ARRAY['cad', 'catalog', 'forms', 'inventory', 'licensing', 'projects']::name[]) s;
GRANT SELECT ON identity.organizations TO analytics_service;
GRANT SELECT (id, organization_id, user_id, role, status, joined_at, created_at, updated_at)
    ON identity.organization_members TO analytics_service;

-- Row-level security: every policy for the application roles applies to the services
-- too (a policy applies to the members of the roles it names).
DO $$
DECLARE
    policy record;
BEGIN
    FOR policy IN
        SELECT p.polname, p.polrelid::regclass AS relation,
               (SELECT string_agg(quote_ident(r.rolname), ', ' ORDER BY u.i)
                FROM unnest(p.polroles) WITH ORDINALITY u (role_oid, i)
                JOIN pg_roles r ON r.oid = u.role_oid) AS roles
        FROM pg_policy p
        WHERE p.polroles && ARRAY(SELECT oid FROM pg_roles
                                  WHERE rolname IN ('groundwork_app', 'groundwork_readonly'))
    LOOP
        EXECUTE format('ALTER POLICY %I ON %s TO %s, groundwork_service',
                       policy.polname, policy.relation, policy.roles);
    END LOOP;
END
$$;
