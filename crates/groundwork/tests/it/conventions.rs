//! The conventions every schema and query file follows (README, "Architecture"),
//! checked against the migrated catalog and `queries/`, so that every future table
//! and query is held to them.

use std::collections::BTreeSet;
use std::path::Path;

use groundwork_testing::{DbRole, TestDb};

/// Unique keys of tenant tables that are global by nature, with the reason. Each would
/// become a small global lookup table (or a reference table) if the database were
/// distributed by tenant.
const GLOBAL_KEYS: &[(&str, &str)] = &[
    (
        "identity.api_keys_key_hash_key",
        "a key is presented before the tenant is known",
    ),
    (
        "identity.api_keys_key_prefix_key",
        "the display prefix names a key across tenants",
    ),
    (
        "identity.organization_members_invitation_token_hash_key",
        "an invitation token is presented before the tenant is known",
    ),
    (
        "eventstore.events_event_id_key",
        "an event id names the event across tenants",
    ),
    (
        "eventstore.tenant_keys_lock_space_key",
        "advisory-lock spaces are server-wide",
    ),
    (
        "eventstore.tenant_keys_notify_channel_key",
        "notification channels are server-wide",
    ),
    (
        "messaging.outbox_messages_message_id_key",
        "consumers deduplicate deliveries by message id",
    ),
    (
        "messaging.jobs_id_key",
        "the worker API, in any language, names a job by its id alone",
    ),
];

/// Query files' queries that do not take the tenant from the context, with the reason.
const CROSS_TENANT_QUERIES: &[(&str, &str)] = &[
    (
        "outbox_message_claim",
        "the relay (groundwork_relay) delivers every tenant's outbox",
    ),
    ("outbox_message_mark_delivered", "the relay, by message key"),
    ("outbox_message_mark_failed", "the relay, by message key"),
    ("outbox_message_redrive", "the relay puts dead letters back"),
    ("outbox_message_count_by_status", "the relay's monitoring"),
    ("outbox_message_delete_delivered", "the relay's maintenance"),
    (
        "idempotency_key_delete_expired",
        "maintenance across tenants, as the owner",
    ),
];

/// Tables whose rows belong to a tenant: every table of the application schemas with
/// an `organization_id` column.
const TENANT_TABLES: &str = "
    SELECT n.nspname || '.' || c.relname
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'organization_id' AND NOT a.attisdropped
    WHERE c.relkind IN ('r', 'p')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'public')
    ORDER BY 1";

/// Primary keys, unique constraints and unique indexes of tenant tables without
/// `organization_id`, and foreign keys between tenant tables that do not match on it.
const KEYS_WITHOUT_THE_TENANT: &str = "
    WITH tenant AS (
        SELECT c.oid, a.attnum AS org
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'organization_id'
                           AND NOT a.attisdropped
        WHERE c.relkind IN ('r', 'p')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'public')
    )
    SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
    FROM tenant t JOIN pg_index i ON i.indrelid = t.oid
    WHERE i.indisunique AND NOT (t.org = ANY (i.indkey::int2[]))
    UNION ALL
    SELECT con.conrelid::regclass::text || '.' || con.conname, pg_get_constraintdef(con.oid)
    FROM tenant t
    JOIN pg_constraint con ON con.conrelid = t.oid AND con.contype = 'f'
    JOIN tenant r ON r.oid = con.confrelid
    WHERE array_position(con.conkey, t.org) IS NULL
       OR array_position(con.conkey, t.org) IS DISTINCT FROM array_position(con.confkey, r.org)
    ORDER BY 1";

#[tokio::test]
async fn every_key_of_a_tenant_table_leads_with_the_tenant_or_is_documented_as_global() {
    let db = TestDb::new().await;
    let owner = db.pool(DbRole::Owner).get().await.unwrap();
    let found: Vec<(String, String)> = owner
        .query(KEYS_WITHOUT_THE_TENANT, &[])
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let documented: BTreeSet<&str> = GLOBAL_KEYS.iter().map(|(name, _)| *name).collect();
    let undocumented: Vec<_> = found
        .iter()
        .filter(|(name, _)| !documented.contains(name.as_str()))
        .collect();
    assert!(
        undocumented.is_empty(),
        "keys of tenant tables must include organization_id (and foreign keys between \
         tenant tables must match on it), or be global by nature and listed here: \
         {undocumented:#?}"
    );
    let names: BTreeSet<&str> = found.iter().map(|(name, _)| name.as_str()).collect();
    let stale: Vec<_> = documented.difference(&names).collect();
    assert!(stale.is_empty(), "listed but gone: {stale:?}");
}

/// One named query of a query file, without its comments.
struct NamedQuery {
    file: String,
    name: String,
    sql: String,
}

fn query_files(dir: &Path, out: &mut Vec<NamedQuery>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            query_files(&path, out);
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let file = path.display().to_string();
        for line in text.lines() {
            if let Some(header) = line.strip_prefix("--!") {
                let name = header.split_whitespace().next().unwrap_or("").to_owned();
                out.push(NamedQuery {
                    file: file.clone(),
                    name,
                    sql: String::new(),
                });
            } else if line.trim_start().starts_with("--") {
                continue;
            } else if let Some(query) = out.last_mut().filter(|q| q.file == file) {
                query.sql.push_str(line);
                query.sql.push('\n');
            }
        }
    }
}

/// Whether `sql` names `table` as a table (not a function of the same prefix).
fn names_table(sql: &str, table: &str) -> bool {
    sql.match_indices(table).any(|(at, _)| {
        let after = sql[at + table.len()..].chars().next();
        let before = sql[..at].chars().next_back();
        !matches!(after, Some(c) if c.is_alphanumeric() || c == '_' || c == '(')
            && !matches!(before, Some(c) if c.is_alphanumeric() || c == '_' || c == '.')
    })
}

#[tokio::test]
async fn query_files_take_the_tenant_from_the_context() {
    let db = TestDb::new().await;
    let owner = db.pool(DbRole::Owner).get().await.unwrap();
    let tenant_tables: Vec<String> = owner
        .query(TENANT_TABLES, &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(tenant_tables.len() > 10, "{tenant_tables:?}");

    let mut queries = Vec::new();
    query_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../queries"),
        &mut queries,
    );
    let exempt: BTreeSet<&str> = CROSS_TENANT_QUERIES.iter().map(|(q, _)| *q).collect();
    let mut broken = Vec::new();
    for query in &queries {
        if exempt.contains(query.name.as_str()) {
            continue;
        }
        let sql = &query.sql;
        // A statement of its own may set the context it runs in, as `tenant::begin`
        // does for a transaction: then the parameter is the context, used nowhere else.
        let sets_context = sql
            .matches("set_config('app.current_org_id', :organization_id, true)")
            .count()
            == 1
            && sql.matches(":organization_id").count() == 1;
        if sql.contains(":organization_id") && !sets_context {
            broken.push(format!(
                "{}: {}: takes the tenant as a parameter",
                query.file, query.name
            ));
        }
        for table in &tenant_tables {
            if !names_table(sql, table) {
                continue;
            }
            let inserts = sql.contains(&format!("INSERT INTO {table} ("));
            let scoped = sql.contains("identity.current_org_id()");
            let names_tenant_column = sql
                .split_once(&format!("INSERT INTO {table} ("))
                .and_then(|(_, rest)| rest.split_once(')'))
                .is_some_and(|(columns, _)| columns.contains("organization_id"));
            if !(scoped || inserts && !names_tenant_column) {
                broken.push(format!(
                    "{}: {}: {table} without organization_id = identity.current_org_id()",
                    query.file, query.name
                ));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "a query on a tenant table filters on organization_id = identity.current_org_id() \
         (an INSERT leaves organization_id to its default), never a parameter:\n{}",
        broken.join("\n")
    );
    let names: BTreeSet<&str> = queries.iter().map(|q| q.name.as_str()).collect();
    let stale: Vec<_> = exempt.difference(&names).collect();
    assert!(stale.is_empty(), "exempt but gone: {stale:?}");
}

/// `sqlstates.txt`: the classes (class, schema) and codes (code, schema, Rust variant,
/// detail keys).
struct Registry {
    classes: Vec<(String, String)>,
    codes: Vec<RegisteredCode>,
}

struct RegisteredCode {
    code: String,
    rust: String,
    detail_keys: Vec<String>,
}

fn registry() -> Registry {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sqlstates.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut registry = Registry {
        classes: Vec::new(),
        codes: Vec::new(),
    };
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields[0] == "class" {
            registry
                .classes
                .push((fields[1].to_owned(), fields[2].to_owned()));
        } else {
            assert!(fields.len() >= 5, "sqlstates.txt: malformed line {line:?}");
            registry.codes.push(RegisteredCode {
                code: fields[0].to_owned(),
                rust: fields[2].to_owned(),
                detail_keys: match fields[3] {
                    "-" => Vec::new(),
                    keys => keys.split(',').map(ToOwned::to_owned).collect(),
                },
            });
        }
    }
    registry
}

/// Every `ERRCODE = '<five characters>'` in the migrations, with what follows it up to
/// the end of its statement, by file.
fn raised_codes() -> Vec<(String, String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let mut found = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".up.sql"))
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        for (at, _) in text.match_indices("ERRCODE = '") {
            let rest = &text[at + "ERRCODE = '".len()..];
            let Some(end) = rest.find('\'') else { continue };
            let code = &rest[..end];
            if code.len() == 5
                && code
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            {
                let statement = rest[end..].split(';').next().unwrap_or("").to_owned();
                found.push((file.clone(), code.to_owned(), statement));
            }
        }
    }
    found
}

/// A detail with the documented keys and values of the right shape.
fn sample_detail(keys: &[String]) -> serde_json::Value {
    let mut detail = serde_json::Map::new();
    for key in keys {
        let value = match key.as_str() {
            "aggregate_id" => serde_json::json!(uuid::Uuid::new_v4()),
            "expected_version" | "actual_version" => serde_json::json!(3),
            "blockers" => serde_json::json!([uuid::Uuid::new_v4()]),
            "schema_path" => serde_json::json!("/properties/x"),
            "subject" => serde_json::json!("instance"),
            "limit" => serde_json::json!(64),
            "seats" | "version" => serde_json::json!(5),
            "feature" => serde_json::json!("cam"),
            "total" | "min" | "max" | "available" => serde_json::json!(10.5),
            "units" => serde_json::json!(51),
            "errors" => serde_json::json!([{
                "instance_path": "/x", "schema_path": "/properties/x/type",
                "keyword": "type", "message": "not a string"
            }]),
            other => panic!("sqlstates.txt: no sample for detail key {other}"),
        };
        detail.insert(key.clone(), value);
    }
    serde_json::Value::Object(detail)
}

/// The schema's error type and variant `error` converts into, as `Type::Variant`.
fn typed(schema: &str, error: groundwork::Error) -> String {
    let debug = match schema {
        "identity" => format!(
            "PersonalDataError::{:?}",
            groundwork::identity::PersonalDataError::from(error)
        ),
        "eventstore" => format!(
            "EventStoreError::{:?}",
            groundwork::eventstore::EventStoreError::from(error)
        ),
        "projects" => format!(
            "ProjectError::{:?}",
            groundwork::projects::ProjectError::from(error)
        ),
        "forms" => format!("FormError::{:?}", groundwork::forms::FormError::from(error)),
        "licensing" => format!(
            "LicensingError::{:?}",
            groundwork::licensing::LicensingError::from(error)
        ),
        "cad" => format!("CadError::{:?}", groundwork::cad::CadError::from(error)),
        "catalog" => format!(
            "CatalogError::{:?}",
            groundwork::catalog::CatalogError::from(error)
        ),
        "inventory" => format!(
            "InventoryError::{:?}",
            groundwork::inventory::InventoryError::from(error)
        ),
        "sales" => format!(
            "SalesError::{:?}",
            groundwork::sales::SalesError::from(error)
        ),
        "payments" => format!(
            "PaymentError::{:?}",
            groundwork::payments::PaymentError::from(error)
        ),
        other => panic!("no error type maps the SQLSTATEs of schema {other}"),
    };
    debug
        .split(['(', ' ', '{'])
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn every_custom_sqlstate_is_registered_raised_and_mapped() {
    let registry = registry();
    // Classes: implementation-defined, none of PostgreSQL's own, one per schema.
    let postgres_classes = ["53", "54", "55", "57", "58", "72", "F0", "HV", "P0", "XX"];
    let mut classes = BTreeSet::new();
    let mut schemas = BTreeSet::new();
    for (class, schema) in &registry.classes {
        let first = class.chars().next().unwrap();
        assert!(
            class.len() == 2 && (first.is_ascii_digit() && first >= '5' || first >= 'I'),
            "class {class} is not in the implementation-defined range"
        );
        assert!(
            !postgres_classes.contains(&class.as_str()),
            "class {class} is PostgreSQL's"
        );
        assert!(classes.insert(class.as_str()), "class {class} twice");
        assert!(
            schemas.insert(schema.as_str()),
            "schema {schema} has two classes"
        );
    }
    let schema_of = |code: &str| {
        registry
            .classes
            .iter()
            .find(|(class, _)| code.starts_with(class.as_str()))
            .map(|(_, schema)| schema.clone())
            .unwrap_or_else(|| panic!("{code}: no registered class"))
    };

    // The migrations raise registered codes only, in their schema's migration, with
    // the documented detail; and every registered code is raised somewhere.
    let raised = raised_codes();
    let mut seen = BTreeSet::new();
    for (file, code, statement) in &raised {
        let entry = registry
            .codes
            .iter()
            .find(|c| &c.code == code)
            .unwrap_or_else(|| panic!("{file}: SQLSTATE {code} is not in sqlstates.txt"));
        let schema = schema_of(code);
        assert!(
            file.ends_with(&format!("_{schema}.up.sql")),
            "{file}: raises {code}, a code of the {schema} schema"
        );
        if statement.contains("DETAIL") {
            assert!(
                statement.contains("jsonb_build_object("),
                "{file}: {code}'s detail is not a JSON object: {statement}"
            );
            for key in &entry.detail_keys {
                assert!(
                    statement.contains(&format!("'{key}'")),
                    "{file}: {code}'s detail lacks {key}: {statement}"
                );
            }
        }
        seen.insert(code.as_str());
    }
    for entry in &registry.codes {
        assert!(
            seen.contains(entry.code.as_str()),
            "{} is registered but no migration raises it",
            entry.code
        );
    }

    // Each code, raised by a real server, becomes its registered Rust variant.
    let db = TestDb::new().await;
    let [tenant] = db.tenants().await;
    for entry in &registry.codes {
        let sql = format!(
            "DO $$ BEGIN RAISE EXCEPTION 'registry check' USING ERRCODE = '{}', DETAIL = '{}'; END $$",
            entry.code,
            sample_detail(&entry.detail_keys)
        );
        let err = db
            .with_tenant(DbRole::App, tenant.tenant(), async |tx| {
                Ok(tx.batch_execute(&sql).await?)
            })
            .await
            .unwrap_err();
        assert_eq!(err.code().map(|c| c.code()), Some(entry.code.as_str()));
        assert_eq!(
            typed(&schema_of(&entry.code), err),
            entry.rust,
            "{} maps to another variant",
            entry.code
        );
    }
}

/// Functions of the application schemas that depend on one server: they read
/// `pg_locks`, draw from or read a sequence, take advisory locks or notify.
const SINGLE_NODE_FUNCTIONS: &str = "
    SELECT n.nspname || '.' || p.proname
    FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'public')
      AND n.nspname NOT LIKE 'pg\\_%'
      AND p.prosrc ~ '(pg_locks|nextval|pg_sequence_last_value|pg_(try_)?advisory|pg_notify)'
    ORDER BY 1";

#[tokio::test]
async fn functions_that_cannot_run_distributed_are_listed_in_the_scaling_guide() {
    let db = TestDb::new().await;
    let owner = db.pool(DbRole::Owner).get().await.unwrap();
    let functions: Vec<String> = owner
        .query(SINGLE_NODE_FUNCTIONS, &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(
        functions.iter().any(|f| f == "eventstore.query_horizon"),
        "the catalog query finds nothing: {functions:?}"
    );
    let guide = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/SCALING.md"),
    )
    .unwrap();
    let section = guide
        .split("## Functions that cannot run distributed")
        .nth(1)
        .expect("docs/SCALING.md has no section on functions that cannot run distributed");
    // Each is a row of the section's table: the function, why, and its replacement.
    let missing: Vec<&String> = functions
        .iter()
        .filter(|function| {
            !section.lines().any(|line| {
                line.starts_with(&format!("| `{function}`")) && line.matches(" | ").count() >= 2
            })
        })
        .collect();
    assert!(
        missing.is_empty(),
        "docs/SCALING.md does not say what would replace {missing:?} under a sharding engine"
    );
}
