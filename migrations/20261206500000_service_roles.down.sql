-- Why: undoes 20261206500000_service_roles. The policies name the application roles
-- only again, and the service roles lose every privilege they hold in this database.
-- The roles and their membership in groundwork_service are cluster-wide and stay
-- (other databases may use them).

DO $$
DECLARE
    policy record;
BEGIN
    FOR policy IN
        SELECT p.polname, p.polrelid::regclass AS relation,
               (SELECT string_agg(quote_ident(r.rolname), ', ' ORDER BY u.i)
                FROM unnest(p.polroles) WITH ORDINALITY u (role_oid, i)
                JOIN pg_roles r ON r.oid = u.role_oid
                WHERE r.rolname <> 'groundwork_service') AS roles
        FROM pg_policy p
        WHERE 'groundwork_service'::regrole = ANY (p.polroles)
    LOOP
        EXECUTE format('ALTER POLICY %I ON %s TO %s', policy.polname, policy.relation, policy.roles);
    END LOOP;
END
$$;

-- Only what the roles hold is revoked, so that no object's privileges change otherwise.
DO $$
DECLARE
    revoke_ record;
BEGIN
    FOR revoke_ IN
        WITH service AS (
            SELECT oid, rolname FROM pg_roles
            WHERE rolname IN ('catalog_service', 'inventory_service', 'projects_service',
                              'forms_service', 'sales_service', 'payments_service',
                              'analytics_service')
        )
        SELECT format('REVOKE %s ON SCHEMA %I FROM %I', a.privilege_type, n.nspname, s.rolname)
               AS command
        FROM pg_namespace n, aclexplode(n.nspacl) a JOIN service s ON s.oid = a.grantee
        UNION ALL
        SELECT format('REVOKE %s ON %s %s FROM %I', a.privilege_type,
                      CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, c.oid::regclass,
                      s.rolname)
        FROM pg_class c, aclexplode(c.relacl) a JOIN service s ON s.oid = a.grantee
        UNION ALL
        SELECT format('REVOKE %s (%I) ON TABLE %s FROM %I', a.privilege_type, att.attname,
                      c.oid::regclass, s.rolname)
        FROM pg_class c
        JOIN pg_attribute att ON att.attrelid = c.oid AND NOT att.attisdropped,
             aclexplode(att.attacl) a JOIN service s ON s.oid = a.grantee
        UNION ALL
        SELECT format('REVOKE %s ON %s %s FROM %I', a.privilege_type,
                      CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
                      p.oid::regprocedure, s.rolname)
        FROM pg_proc p, aclexplode(p.proacl) a JOIN service s ON s.oid = a.grantee
        UNION ALL
        SELECT format('REVOKE %s ON %s %s FROM %I', a.privilege_type,
                      CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, t.oid::regtype,
                      s.rolname)
        FROM pg_type t, aclexplode(t.typacl) a JOIN service s ON s.oid = a.grantee
    LOOP
        EXECUTE revoke_.command;
    END LOOP;
END
$$;

DROP FUNCTION public.groundwork_grant_like(name, name, name);
