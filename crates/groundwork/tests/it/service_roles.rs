//! The per-context service roles (docs/SECURITY.md, "Service roles"): the role matrix
//! (each service role x each schema x read, write, execute), computed from the catalog
//! for the login roles services connect as and compared with the one declared here, so
//! that every future schema is held to it; then what the roles do, as login roles with
//! a tenant set: each its own work, the refusals at the edges of its context, and
//! row-level security as for the application role.

use std::collections::{BTreeMap, BTreeSet};

use groundwork::Error;
use groundwork::eventstore::{NewEvent, Query, append, read};
use groundwork::inventory::{receive_stock, reserve};
use groundwork::outbox::{NewMessage, enqueue};
use groundwork::tenant::Tenant;
use groundwork_testing::fixtures::{
    Fixture, FormFixture, ProductFixture, ProjectFixture, SubmissionFixture, TaskFixture,
};
use groundwork_testing::{DbRole, TestDb};
use serde_json::json;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

/// Every schema of the database but PostgreSQL's own and `public` (groundwork's helper
/// functions and extensions), with `true` for a schema a later migration will create:
/// its rows below apply once it exists. A new schema is added here and given its rows.
const SCHEMAS: &[(&str, bool)] = &[
    ("cad", false),
    ("catalog", false),
    ("eventstore", false),
    ("forms", false),
    ("identity", false),
    ("inventory", false),
    ("licensing", false),
    ("messaging", false),
    ("ops", false),
    ("payments", false),
    ("projects", false),
    ("sales", false),
];

/// What each service role may do in each schema; a (role, schema) not listed may do
/// nothing there (not even see it). Each cell is `-` (nothing) or a comma-separated
/// list of:
/// - `app`, `readonly`: exactly the privileges of that kind `groundwork_app` (or
///   `groundwork_readonly`) has in the schema, object by object and column by column;
/// - `public`: the functions every role may execute in the schema (it may see the
///   schema: `identity` for `identity.current_org_id()`);
/// - a table or function name: some privilege of that kind on it.
///
/// Read is `SELECT` on tables, views and columns (and sequences); write is `INSERT`,
/// `UPDATE`, `DELETE`, `TRUNCATE`; execute is `EXECUTE` on functions and procedures
/// (trigger functions are not called). A privilege counts only where the role may see
/// the schema.
const MATRIX: &[(&str, &str, &str, &str, &str)] = &[
    // role, schema, read, write, execute
    ("catalog_service", "catalog", "app", "app", "app"),
    ("catalog_service", "identity", "-", "-", "public"),
    ("catalog_service", "messaging", MESSAGING, MESSAGING, "-"),
    ("inventory_service", "inventory", "app", "app", "app"),
    ("inventory_service", "catalog", "products", "-", "public"),
    ("inventory_service", "identity", "-", "-", "public"),
    ("inventory_service", "messaging", MESSAGING, MESSAGING, "-"),
    ("projects_service", "projects", "app", "app", "app"),
    (
        "projects_service",
        "identity",
        "organization_members",
        "-",
        "public",
    ),
    ("projects_service", "messaging", MESSAGING, MESSAGING, "-"),
    ("forms_service", "forms", "app", "app", "app"),
    ("forms_service", "eventstore", "app", "app", "app"),
    ("forms_service", "identity", "-", "-", "public"),
    ("forms_service", "messaging", MESSAGING, MESSAGING, "-"),
    ("sales_service", "sales", "app", "app", "app"),
    ("sales_service", "catalog", "products", "-", "public"),
    (
        "sales_service",
        "inventory",
        "reservations,stock_levels",
        "-",
        "cleanup_expired_reservations,fulfill_reservation,release_reservation,reserve_inventory",
    ),
    ("sales_service", "identity", "-", "-", "public"),
    ("sales_service", "messaging", MESSAGING, MESSAGING, "-"),
    ("payments_service", "payments", "app", "app", "app"),
    ("payments_service", "identity", "-", "-", "public"),
    ("payments_service", "messaging", MESSAGING, MESSAGING, "-"),
    ("analytics_service", "cad", "readonly", "-", "readonly"),
    ("analytics_service", "catalog", "readonly", "-", "readonly"),
    ("analytics_service", "forms", "readonly", "-", "readonly"),
    (
        "analytics_service",
        "inventory",
        "readonly",
        "-",
        "readonly",
    ),
    (
        "analytics_service",
        "licensing",
        "readonly",
        "-",
        "readonly",
    ),
    ("analytics_service", "projects", "readonly", "-", "readonly"),
    ("analytics_service", "sales", "readonly", "-", "readonly"),
    ("analytics_service", "payments", "readonly", "-", "readonly"),
    (
        "analytics_service",
        "identity",
        "organization_members,organizations",
        "-",
        "public",
    ),
];

/// The outbox and idempotency keys, as `groundwork_app` has them.
const MESSAGING: &str = "app:outbox_messages,app:idempotency_keys";

/// Schemas the matrix is about.
const MATRIX_SCHEMAS: &str =
    "n.nspname NOT LIKE 'pg\\_%' AND n.nspname NOT IN ('information_schema', 'public')";

/// One privilege: schema, kind (read, write, execute), object, and the privilege with
/// its column if it is a column's.
type Privilege = (String, String, String, String);

/// Every privilege `role` holds (directly, through its groups or through PUBLIC) in the
/// matrix's schemas, whether or not it may see the schema.
async fn privileges(db: &TestDb, role: &str) -> BTreeSet<Privilege> {
    let sql = format!(
        "SELECT n.nspname::text, k.kind, c.relname::text, k.privilege
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         CROSS JOIN (VALUES ('read', 'SELECT'), ('write', 'INSERT'), ('write', 'UPDATE'),
                            ('write', 'DELETE'), ('write', 'TRUNCATE')) k (kind, privilege)
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {MATRIX_SCHEMAS}
           AND has_table_privilege($1, c.oid, k.privilege)
         UNION ALL
         SELECT n.nspname::text, k.kind, c.relname::text, k.privilege || '(' || a.attname || ')'
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         CROSS JOIN (VALUES ('read', 'SELECT'), ('write', 'INSERT'), ('write', 'UPDATE'))
                    k (kind, privilege)
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {MATRIX_SCHEMAS}
           AND has_column_privilege($1, c.oid, a.attnum, k.privilege)
           AND NOT has_table_privilege($1, c.oid, k.privilege)
         UNION ALL
         SELECT n.nspname::text, k.kind, c.relname::text, k.privilege
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         CROSS JOIN (VALUES ('read', 'SELECT'), ('read', 'USAGE'), ('write', 'UPDATE'))
                    k (kind, privilege)
         WHERE c.relkind = 'S' AND {MATRIX_SCHEMAS}
           AND has_sequence_privilege($1, c.oid, k.privilege)
         UNION ALL
         SELECT n.nspname::text, 'execute', p.proname::text, 'EXECUTE'
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE p.prokind IN ('f', 'p') AND p.prorettype <> 'trigger'::regtype
           AND {MATRIX_SCHEMAS} AND has_function_privilege($1, p.oid, 'EXECUTE')"
    );
    owner_query(db, &sql, role)
        .await
        .into_iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
        .collect()
}

/// The schemas `role` may see (USAGE).
async fn visible_schemas(db: &TestDb, role: &str) -> BTreeSet<String> {
    let sql = format!(
        "SELECT n.nspname::text FROM pg_namespace n
         WHERE {MATRIX_SCHEMAS} AND has_schema_privilege($1, n.oid, 'USAGE')"
    );
    owner_query(db, &sql, role)
        .await
        .into_iter()
        .map(|row| row.get(0))
        .collect()
}

async fn owner_query(db: &TestDb, sql: &str, role: &str) -> Vec<tokio_postgres::Row> {
    db.pool(DbRole::Owner)
        .get()
        .await
        .unwrap()
        .query(sql, &[&role])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Of `privileges`, the (object, privilege) pairs of `kind` in `schema`.
fn cell(privileges: &BTreeSet<Privilege>, schema: &str, kind: &str) -> BTreeSet<(String, String)> {
    privileges
        .iter()
        .filter(|(s, k, _, _)| s == schema && k == kind)
        .map(|(_, _, object, privilege)| (object.clone(), privilege.clone()))
        .collect()
}

#[tokio::test]
async fn every_service_role_holds_exactly_its_row_of_the_matrix_in_every_schema() {
    let db = TestDb::new().await;
    let mut problems = Vec::new();

    // Every schema of the database is in the matrix, and every schema of the matrix is
    // in the database unless a later migration makes it.
    let present: BTreeSet<String> = db
        .pool(DbRole::Owner)
        .get()
        .await
        .unwrap()
        .query(
            &format!("SELECT n.nspname::text FROM pg_namespace n WHERE {MATRIX_SCHEMAS}"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    for schema in &present {
        if !SCHEMAS.iter().any(|(s, _)| s == schema) {
            problems.push(format!(
                "schema {schema} is not in the role matrix: add it to SCHEMAS in \
                 crates/groundwork/tests/it/service_roles.rs and a MATRIX row for each \
                 service role that may read, write or execute there (its own context's \
                 role at least), grant that in its migration, and add it to the matrix \
                 of docs/SECURITY.md"
            ));
        }
    }
    for (schema, later) in SCHEMAS {
        if !later && !present.contains(*schema) {
            problems.push(format!("schema {schema} of the matrix does not exist"));
        }
    }
    for (role, schema, ..) in MATRIX {
        if !SCHEMAS.iter().any(|(s, _)| s == schema) {
            problems.push(format!(
                "{role} has a row for {schema}, which is not in SCHEMAS"
            ));
        }
        if !DbRole::SERVICES
            .iter()
            .any(|r| r.group_name() == Some(role))
        {
            problems.push(format!("{role} of the matrix is no service role"));
        }
    }

    let reference = |role: &'static str| {
        let db = &db;
        async move {
            let visible = visible_schemas(db, role).await;
            privileges(db, role)
                .await
                .into_iter()
                .filter(|(schema, ..)| visible.contains(schema))
                .collect::<BTreeSet<_>>()
        }
    };
    let references: BTreeMap<&str, BTreeSet<Privilege>> = BTreeMap::from([
        ("app", reference("groundwork_app").await),
        ("readonly", reference("groundwork_readonly").await),
        // PUBLIC's functions, in every schema whether or not PUBLIC may see it.
        ("public", privileges(&db, "public").await),
    ]);

    for service in DbRole::SERVICES {
        let (group, login) = (service.group_name().unwrap(), service.login_name().unwrap());
        let visible = visible_schemas(&db, login).await;
        let held = privileges(&db, login).await;
        for schema in &present {
            let row = MATRIX
                .iter()
                .find(|(role, s, ..)| role == &group && s == schema);
            for (index, kind) in ["read", "write", "execute"].into_iter().enumerate() {
                let declared = match row {
                    Some((_, _, read, write, execute)) => [read, write, execute][index],
                    None => "-",
                };
                let actual = if visible.contains(schema) {
                    cell(&held, schema, kind)
                } else {
                    BTreeSet::new()
                };
                let mut expected = BTreeSet::new();
                let mut named = BTreeSet::new();
                for item in declared.split(',').filter(|item| *item != "-") {
                    match item.split_once(':') {
                        Some((of, object)) => expected.extend(
                            cell(&references[of], schema, kind)
                                .into_iter()
                                .filter(|(o, _)| o == object),
                        ),
                        None if references.contains_key(item) => {
                            expected.extend(cell(&references[item], schema, kind));
                        }
                        None => {
                            named.insert(item.to_owned());
                        }
                    }
                }
                let unexpected: Vec<_> = actual
                    .iter()
                    .filter(|p| !expected.contains(*p) && !named.contains(&p.0))
                    .collect();
                let missing: Vec<_> = expected
                    .iter()
                    .filter(|p| !actual.contains(*p))
                    .map(|(o, p)| format!("{o} {p}"))
                    .chain(
                        named
                            .iter()
                            .filter(|o| !actual.iter().any(|(a, _)| a == *o))
                            .map(|o| format!("{o} (any)")),
                    )
                    .collect();
                if !unexpected.is_empty() || !missing.is_empty() {
                    problems.push(format!(
                        "{login} ({group}) x {schema} x {kind}, declared {declared:?}: \
                         holds beyond it {unexpected:?}, lacks {missing:?}"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[tokio::test]
async fn service_roles_are_members_of_groundwork_service_own_nothing_and_read_no_secret() {
    let db = TestDb::new().await;
    let logins: Vec<&str> = DbRole::SERVICES
        .iter()
        .map(|r| r.login_name().unwrap())
        .collect();
    let problems: Vec<String> = db
        .pool(DbRole::Owner)
        .get()
        .await
        .unwrap()
        .query(
            &format!("WITH r AS (SELECT oid, rolname FROM pg_roles WHERE rolname = ANY ($1))
             SELECT r.rolname || ' is not in groundwork_service' FROM r
             WHERE NOT pg_has_role(r.oid, 'groundwork_service', 'USAGE')
             UNION ALL
             SELECT r.rolname || ' may read ' || c.oid::regclass || '.' || a.attname
             FROM r CROSS JOIN pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             WHERE c.relkind IN ('r', 'p', 'v', 'm') AND {MATRIX_SCHEMAS}
               AND has_schema_privilege(r.oid, n.oid, 'USAGE')
               AND has_column_privilege(r.oid, c.oid, a.attnum, 'SELECT')
               AND (a.attname ~ '(password|token_hash|key_hash|encrypted|blind|secret)'
                    OR c.relname ~ '^(personal_|tenant_keys$|erasures$|sessions$|api_keys$)')
             UNION ALL
             SELECT g.rolname || ' holds a privilege' FROM pg_roles g
             WHERE g.rolname = 'groundwork_service'
               AND (EXISTS (SELECT FROM pg_class c, aclexplode(c.relacl) a WHERE a.grantee = g.oid)
                    OR EXISTS (SELECT FROM pg_proc p, aclexplode(p.proacl) a WHERE a.grantee = g.oid)
                    OR EXISTS (SELECT FROM pg_namespace n, aclexplode(n.nspacl) a
                               WHERE a.grantee = g.oid))
             ORDER BY 1"),
            &[&logins],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Runs `sql` as `role` acting for `tenant`; the error, if any.
async fn run_sql(db: &TestDb, role: DbRole, tenant: Tenant, sql: &str) -> Result<(), Error> {
    db.with_tenant(role, tenant, async |tx| Ok(tx.batch_execute(sql).await?))
        .await
}

/// `sql` run as `role` for `tenant` is refused for want of a privilege.
async fn assert_refused(db: &TestDb, role: DbRole, tenant: Tenant, sql: &str) {
    let err = run_sql(db, role, tenant, sql)
        .await
        .expect_err(&format!("{role:?}: {sql}"));
    assert_eq!(
        err.code(),
        Some(&SqlState::INSUFFICIENT_PRIVILEGE),
        "{role:?}: {sql}: {err:?}"
    );
}

/// `count(*)` of `relation` as `role` for `tenant`.
async fn count_as(db: &TestDb, role: DbRole, tenant: Tenant, relation: &str) -> i64 {
    let sql = format!("SELECT count(*) FROM {relation}");
    db.with_tenant(role, tenant, async |tx| {
        Ok(tx.query_one(&sql, &[]).await?.get(0))
    })
    .await
    .unwrap_or_else(|e| panic!("{role:?}: {sql}: {e}"))
}

/// A product of `tenant` made by the catalog service, with `stock` units received by
/// the inventory service.
async fn product(db: &TestDb, tenant: Tenant, stock: i32) -> Uuid {
    let product = db
        .with_tenant(DbRole::CatalogService, tenant, async |tx| {
            ProductFixture::new(tenant).insert(tx).await
        })
        .await
        .unwrap();
    let on_hand = db
        .with_tenant(DbRole::InventoryService, tenant, async |tx| {
            Ok(receive_stock(tx, product.id, stock).await?)
        })
        .await
        .unwrap();
    assert_eq!(on_hand, stock);
    product.id
}

#[tokio::test]
async fn each_context_does_its_own_work_through_its_service_role() {
    let db = TestDb::new().await;
    let [a] = db.tenants().await;
    let t = a.tenant();
    // Catalog and inventory: a product and its stock.
    let p = product(&db, t, 5).await;
    assert_eq!(
        count_as(
            &db,
            DbRole::InventoryService,
            t,
            &format!("inventory.stock_analytics WHERE product_id = '{p}'")
        )
        .await,
        1
    );
    // Projects: a project and a task in it.
    let task = db
        .with_tenant(DbRole::ProjectsService, t, async |tx| {
            let project = ProjectFixture::new(t).insert(tx).await?;
            TaskFixture::new(t, project.id).insert(tx).await
        })
        .await
        .unwrap();
    assert_eq!(
        count_as(
            &db,
            DbRole::ProjectsService,
            t,
            &format!("projects.tasks WHERE id = '{}'", task.id)
        )
        .await,
        1
    );
    // Forms: a published definition and a submission validated against it.
    let submission = db
        .with_tenant(DbRole::FormsService, t, async |tx| {
            let form = FormFixture::new(t).published().insert(tx).await?;
            SubmissionFixture::new(t, form.id).insert(tx).await
        })
        .await
        .unwrap();
    assert_eq!(
        count_as(
            &db,
            DbRole::FormsService,
            t,
            &format!("forms.form_submissions WHERE id = '{}'", submission.id)
        )
        .await,
        1
    );
    for (relation, rows) in [
        ("catalog.products", 1),
        ("inventory.stock_levels", 1),
        ("projects.tasks", 1),
        ("forms.form_submissions", 1),
    ] {
        assert_eq!(db.count(relation).await, rows, "{relation}");
    }
}

#[tokio::test]
async fn sales_reserves_through_inventorys_functions_and_never_writes_its_tables() {
    let db = TestDb::new().await;
    let [a] = db.tenants().await;
    let p = product(&db, a.tenant(), 10).await;
    let reservation = db
        .with_tenant(DbRole::SalesService, a.tenant(), async |tx| {
            Ok(reserve(tx, p, 3).await?)
        })
        .await
        .unwrap();
    let stock = "inventory.stock_levels WHERE on_hand = 10 AND reserved = 3";
    assert_eq!(
        count_as(&db, DbRole::SalesService, a.tenant(), stock).await,
        1
    );
    assert_eq!(
        count_as(
            &db,
            DbRole::SalesService,
            a.tenant(),
            &format!("inventory.reservations WHERE id = '{reservation}'")
        )
        .await,
        1
    );
    for sql in [
        "UPDATE inventory.stock_levels SET on_hand = 1000, reserved = 0".to_owned(),
        "UPDATE inventory.stock_levels SET reorder_point = 1".to_owned(),
        "DELETE FROM inventory.reservations".to_owned(),
        "INSERT INTO inventory.suppliers (name) VALUES ('Acme')".to_owned(),
        "SELECT count(*) FROM inventory.movements".to_owned(),
        format!("SELECT inventory.receive_stock('{p}', 5)"),
        format!("SELECT inventory.adjust_stock('{p}', -5, 'lost')"),
        "UPDATE catalog.products SET price = 0".to_owned(),
    ] {
        assert_refused(&db, DbRole::SalesService, a.tenant(), &sql).await;
    }
    assert_eq!(db.count(stock).await, 1);
    assert_eq!(db.count("inventory.movements").await, 1, "the receipt only");
    assert_eq!(db.count("inventory.suppliers").await, 0);
}

#[tokio::test]
async fn each_service_is_refused_outside_its_context() {
    let db = TestDb::new().await;
    let [a] = db.tenants().await;
    product(&db, a.tenant(), 1).await;
    for (role, sql) in [
        (
            DbRole::CatalogService,
            "SELECT count(*) FROM forms.form_definitions",
        ),
        (
            DbRole::CatalogService,
            "SELECT count(*) FROM projects.projects",
        ),
        (
            DbRole::CatalogService,
            "SELECT count(*) FROM inventory.stock_levels",
        ),
        (
            DbRole::CatalogService,
            "SELECT count(*) FROM eventstore.events",
        ),
        (
            DbRole::CatalogService,
            "SELECT count(*) FROM messaging.jobs",
        ),
        (DbRole::CatalogService, "SELECT email FROM identity.users"),
        (
            DbRole::InventoryService,
            "UPDATE catalog.products SET price = 0",
        ),
        (
            DbRole::InventoryService,
            "SELECT count(*) FROM catalog.categories",
        ),
        (
            DbRole::ProjectsService,
            "SELECT count(*) FROM catalog.products",
        ),
        (DbRole::FormsService, "SELECT count(*) FROM projects.tasks"),
        (
            DbRole::PaymentsService,
            "SELECT count(*) FROM catalog.products",
        ),
        (
            DbRole::PaymentsService,
            "SELECT count(*) FROM inventory.stock_levels",
        ),
        (
            DbRole::PaymentsService,
            "SELECT count(*) FROM identity.organizations",
        ),
    ] {
        assert_refused(&db, role, a.tenant(), sql).await;
    }
}

#[tokio::test]
async fn analytics_reads_the_business_schemas_and_writes_nothing() {
    let db = TestDb::new().await;
    let [a] = db.tenants().await;
    let p = product(&db, a.tenant(), 4).await;
    for (relation, rows) in [
        ("catalog.products", 1),
        ("inventory.stock_levels", 1),
        ("inventory.movements", 1),
        ("inventory.stock_analytics", 1),
        ("forms.form_definitions", 0),
        ("projects.projects", 0),
        ("licensing.licenses", 0),
        ("cad.models", 0),
        ("identity.organizations", 1),
        ("identity.organization_members", 1),
    ] {
        assert_eq!(
            count_as(&db, DbRole::AnalyticsService, a.tenant(), relation).await,
            rows,
            "{relation}"
        );
    }
    for sql in [
        format!("UPDATE catalog.products SET price = 0 WHERE id = '{p}'"),
        "DELETE FROM catalog.products".to_owned(),
        "INSERT INTO catalog.categories (name, slug) VALUES ('A', 'a')".to_owned(),
        "UPDATE inventory.stock_levels SET reorder_point = 1".to_owned(),
        format!("SELECT inventory.reserve_inventory('{p}', 1)"),
        format!("SELECT inventory.receive_stock('{p}', 1)"),
        "DELETE FROM forms.form_submissions".to_owned(),
        "UPDATE projects.projects SET name = 'x'".to_owned(),
        "UPDATE identity.organizations SET name = 'x'".to_owned(),
        "DELETE FROM identity.organization_members".to_owned(),
        "SELECT invitation_token_hash FROM identity.organization_members".to_owned(),
        "SELECT count(*) FROM identity.sessions".to_owned(),
        "SELECT count(*) FROM eventstore.events".to_owned(),
        "SELECT count(*) FROM messaging.outbox_messages".to_owned(),
        "INSERT INTO messaging.outbox_messages (topic, payload) VALUES ('t', '{}')".to_owned(),
    ] {
        assert_refused(&db, DbRole::AnalyticsService, a.tenant(), &sql).await;
    }
    assert_eq!(db.count("catalog.products WHERE price > 0").await, 1);
    assert_eq!(db.count("catalog.categories").await, 0);
    assert_eq!(db.count("messaging.outbox_messages").await, 0);

    // Every table of every schema: no insert, update or delete gets past the privileges.
    let tables: Vec<(String, String)> = db
        .pool(DbRole::Owner)
        .get()
        .await
        .unwrap()
        .query(
            &format!(
                "SELECT c.oid::regclass::text, quote_ident(a.attname)
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 -- The first column an UPDATE may set at all (not an identity or
                 -- generated one, which refuse any value before privileges count).
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = (
                     SELECT min(f.attnum) FROM pg_attribute f
                     WHERE f.attrelid = c.oid AND f.attnum > 0 AND NOT f.attisdropped
                       AND f.attidentity = '' AND f.attgenerated = '')
                 WHERE c.relkind IN ('r', 'p') AND {MATRIX_SCHEMAS} ORDER BY 1"
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert!(tables.len() > 40, "{tables:?}");
    for (table, column) in tables {
        for sql in [
            format!("INSERT INTO {table} DEFAULT VALUES"),
            format!("UPDATE {table} SET {column} = {column}"),
            format!("DELETE FROM {table}"),
        ] {
            assert_refused(&db, DbRole::AnalyticsService, a.tenant(), &sql).await;
        }
    }
}

#[tokio::test]
async fn row_level_security_holds_service_roles_to_their_tenant() {
    let db = TestDb::new().await;
    let [a, b] = db.tenants().await;
    product(&db, a.tenant(), 2).await;
    for role in [
        DbRole::CatalogService,
        DbRole::InventoryService,
        DbRole::SalesService,
        DbRole::AnalyticsService,
    ] {
        assert_eq!(
            count_as(&db, role, a.tenant(), "catalog.products").await,
            1,
            "{role:?}"
        );
        assert_eq!(
            count_as(&db, role, b.tenant(), "catalog.products").await,
            0,
            "{role:?}"
        );
        assert_eq!(
            count_as(&db, role, Tenant::default(), "catalog.products").await,
            0,
            "{role:?} without a tenant"
        );
    }
    for role in [
        DbRole::InventoryService,
        DbRole::SalesService,
        DbRole::AnalyticsService,
    ] {
        assert_eq!(
            count_as(&db, role, a.tenant(), "inventory.stock_levels").await,
            1
        );
        assert_eq!(
            count_as(&db, role, b.tenant(), "inventory.stock_levels").await,
            0
        );
        assert_eq!(
            count_as(&db, role, Tenant::default(), "inventory.stock_levels").await,
            0
        );
    }
    // Writes for another tenant, or for none, are refused by the policies.
    let err = db
        .with_tenant(DbRole::CatalogService, Tenant::default(), async |tx| {
            ProductFixture::new(Tenant::default()).insert(tx).await
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PermissionDenied(_)), "{err:?}");
    assert_refused(
        &db,
        DbRole::CatalogService,
        b.tenant(),
        &format!(
            "INSERT INTO catalog.categories (organization_id, name, slug) \
             VALUES ('{}', 'A', 'a')",
            a.organization_id
        ),
    )
    .await;
    assert_eq!(db.count("catalog.categories").await, 0);
}

#[tokio::test]
async fn services_publish_events_and_messages_of_their_tenant() {
    let db = TestDb::new().await;
    let [a, b] = db.tenants().await;
    for role in [
        DbRole::CatalogService,
        DbRole::InventoryService,
        DbRole::ProjectsService,
        DbRole::FormsService,
        DbRole::SalesService,
        DbRole::PaymentsService,
    ] {
        db.with_tenant(role, a.tenant(), async |tx| {
            enqueue(
                tx,
                &NewMessage::new("service.roles", json!({"by": format!("{role:?}")})),
            )
            .await
        })
        .await
        .unwrap_or_else(|e| panic!("{role:?}: {e}"));
        assert_eq!(
            count_as(&db, role, b.tenant(), "messaging.outbox_messages").await,
            0,
            "{role:?} of another tenant"
        );
    }
    assert_eq!(
        count_as(
            &db,
            DbRole::SalesService,
            a.tenant(),
            "messaging.outbox_messages"
        )
        .await,
        6
    );
    assert_eq!(db.count("messaging.outbox_messages").await, 6);

    db.with_tenant(DbRole::FormsService, a.tenant(), async |tx| {
        Ok(append(tx, &[NewEvent::new("FormSubmitted", json!({}))], None).await?)
    })
    .await
    .unwrap();
    let seen = db
        .with_tenant(DbRole::FormsService, b.tenant(), async |tx| {
            Ok(read(tx, &Query::all(), 0, None).await?)
        })
        .await
        .unwrap();
    assert!(seen.is_empty(), "another tenant's events");
    assert_refused(
        &db,
        DbRole::SalesService,
        a.tenant(),
        "SELECT eventstore.append('[{\"type\": \"OrderPlaced\"}]')",
    )
    .await;
    assert_eq!(db.count("eventstore.events").await, 1);
}
