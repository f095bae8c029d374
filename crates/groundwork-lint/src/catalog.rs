//! The catalog as one sorted line per object, to compare a database before a
//! migration with the same database after its up and down files.

/// Everything a migration can create or change, one sorted line per object, with its
/// owner and privileges (column privileges, and those of PostgreSQL's own functions
/// where a migration changed them). An ACL that was never set (NULL) and one equal
/// to the owner's defaults mean the same privileges, so both print as the defaults;
/// the order of an ACL's entries means nothing, so they print sorted.
pub async fn catalog(
    client: &tokio_postgres::Client,
) -> Result<Vec<String>, tokio_postgres::Error> {
    const DUMP: &str = r#"
        SELECT 'schema ' || nspname || ' owner=' || pg_get_userbyid(nspowner) || ' '
               || (SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(coalesce(nspacl, acldefault('n', nspowner))) a)
        FROM pg_namespace WHERE nspname NOT LIKE 'pg\_%' AND nspname <> 'information_schema'
        UNION ALL
        SELECT 'relation ' || c.oid::regclass::text || ' ' || c.relkind::text || ' rls=' || c.relrowsecurity
               || ' owner=' || pg_get_userbyid(c.relowner)
               || ' acl=' || (SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(coalesce(c.relacl, acldefault('r', c.relowner))) a)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
          AND c.relname NOT LIKE 'schema\_migrations%'
        UNION ALL
        SELECT 'column ' || a.attrelid::regclass::text || '.' || a.attname || ' '
               || format_type(a.atttypid, a.atttypmod) || ' notnull=' || a.attnotnull
               || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
               || ' generated=' || a.attgenerated::text
               || ' acl=' || coalesce((SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(a.attacl) x), '')
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attnum > 0 AND NOT a.attisdropped
          AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
          AND c.relname NOT LIKE 'schema\_migrations%'
        UNION ALL
        SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' '
               || pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace::regnamespace::text NOT IN ('pg_catalog', 'information_schema')
          AND conrelid::regclass::text NOT LIKE '%schema\_migrations%'
        UNION ALL
        SELECT 'index ' || pg_get_indexdef(indexrelid)
        FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
          AND c.relname NOT LIKE 'schema\_migrations%'
        UNION ALL
        SELECT 'function ' || p.oid::regprocedure::text || ' ' || md5(p.prosrc)
               || ' definer=' || p.prosecdef || ' config=' || coalesce(p.proconfig::text, '')
               || ' owner=' || pg_get_userbyid(p.proowner)
               || ' acl=' || (SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(coalesce(p.proacl, acldefault('f', p.proowner))) a)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
        UNION ALL
        SELECT 'builtin function ' || p.oid::regprocedure::text || ' acl='
               || (SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(p.proacl) a)
        FROM pg_proc p
        WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proacl IS NOT NULL
          AND (SELECT array_agg(a::text ORDER BY a::text) FROM unnest(p.proacl) a)
              IS DISTINCT FROM
              (SELECT array_agg(a::text ORDER BY a::text) FROM unnest(acldefault('f', p.proowner)) a)
        UNION ALL
        SELECT 'type ' || t.oid::regtype::text || ' ' || t.typtype::text || ' owner=' || pg_get_userbyid(t.typowner) || ' '
               || coalesce((SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder)
                            FROM pg_enum e WHERE e.enumtypid = t.oid), '')
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
          AND t.typname NOT LIKE '%schema\_migrations%'
        UNION ALL
        SELECT 'trigger ' || pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal
        UNION ALL
        SELECT 'policy ' || schemaname || '.' || tablename || ' ' || policyname || ' '
               || permissive || ' ' || roles::text || ' ' || cmd || ' '
               || coalesce(qual, '') || ' ' || coalesce(with_check, '')
        FROM pg_policies
        UNION ALL
        SELECT 'extension ' || extname || ' ' || extversion FROM pg_extension
        UNION ALL
        SELECT 'default acl ' || defaclrole::regrole::text || ' ' || defaclobjtype::text || ' '
               || coalesce(defaclnamespace::regnamespace::text, '') || ' ' || defaclacl::text
        FROM pg_default_acl
        ORDER BY 1
    "#;
    Ok(client
        .query(DUMP, &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}
