//! Rows for every empty table of a database, made from the catalog alone: whatever the
//! migrations define, each table gets `rows` rows whose foreign keys point at rows of
//! the tables they reference.
//!
//! The inserts run as the superuser with `session_replication_role = replica`, so
//! triggers (append-only guards, validation triggers, auditing) do not fire and foreign
//! keys are not re-checked; the values are chosen to satisfy them anyway. CHECK
//! constraints still hold: a table whose checks reject the generated values is tried
//! again with its nullable columns left NULL, and otherwise left empty and named in
//! the result.

use std::collections::{BTreeMap, BTreeSet};

use tokio_postgres::Client;

/// What filling one table did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filled {
    /// The table, as `schema.table`.
    pub table: String,
    /// Rows it has now.
    pub rows: i64,
    /// Why it stayed empty, if it did.
    pub failure: Option<String>,
}

struct Column {
    name: String,
    ty: String,
    base_category: String,
    base_type: String,
    enum_type: bool,
    not_null: bool,
    has_default: bool,
}

struct ForeignKey {
    columns: Vec<String>,
    parent: String,
    parent_columns: Vec<String>,
}

/// How many rows each table gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rows {
    /// Rows of every table not named in `tables`.
    pub default: i64,
    /// Rows of particular tables, by `schema.table`: the tenants, say.
    pub tables: BTreeMap<String, i64>,
    /// When a CHECK constraint rejects the generated rows, drop it, insert, and add
    /// it back `NOT VALID`: for a database whose plans matter, not its data.
    pub relax_checks: bool,
}

impl Rows {
    /// `rows` rows in every table.
    pub fn every(rows: i64) -> Self {
        Self {
            default: rows,
            tables: BTreeMap::new(),
            relax_checks: false,
        }
    }

    fn of(&self, table: &str) -> i64 {
        self.tables.get(table).copied().unwrap_or(self.default)
    }
}

/// Fills every empty ordinary or partitioned table outside PostgreSQL's own schemas
/// (and `skip_schemas`) with its rows, parents before the tables that reference them,
/// then analyzes the database.
pub async fn fill_tables(
    client: &Client,
    rows: &Rows,
    skip_schemas: &[&str],
) -> Result<Vec<Filled>, tokio_postgres::Error> {
    let tables: Vec<(u32, String)> = client
        .query(
            "SELECT c.oid, format('%I.%I', n.nspname, c.relname)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg\\_%'
               AND NOT (n.nspname = ANY($1))
               AND c.relname NOT LIKE 'schema\\_migrations%'
             ORDER BY 2",
            &[&skip_schemas],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut foreign: BTreeMap<String, Vec<ForeignKey>> = BTreeMap::new();
    for row in client
        .query(
            "SELECT format('%I.%I', cn.nspname, c.relname), format('%I.%I', pn.nspname, p.relname),
                    array(SELECT quote_ident(attname) FROM unnest(k.conkey) WITH ORDINALITY u(n, i)
                          JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY i),
                    array(SELECT quote_ident(attname) FROM unnest(k.confkey) WITH ORDINALITY u(n, i)
                          JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY i)
             FROM pg_constraint k
             JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
             JOIN pg_class p ON p.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
             WHERE k.contype = 'f'",
            &[],
        )
        .await?
    {
        foreign.entry(row.get(0)).or_default().push(ForeignKey {
            parent: row.get(1),
            columns: row.get(2),
            parent_columns: row.get(3),
        });
    }
    // Parents first; a cycle is broken wherever it is met.
    let mut order = Vec::new();
    let mut placed = BTreeSet::new();
    let names: BTreeSet<&String> = tables.iter().map(|(_, n)| n).collect();
    fn visit<'a>(
        table: &'a String,
        foreign: &'a BTreeMap<String, Vec<ForeignKey>>,
        names: &BTreeSet<&'a String>,
        placed: &mut BTreeSet<&'a String>,
        visiting: &mut BTreeSet<&'a String>,
        order: &mut Vec<&'a String>,
    ) {
        if placed.contains(table) || !visiting.insert(table) {
            return;
        }
        for fk in foreign.get(table).into_iter().flatten() {
            if let Some(parent) = names.get(&fk.parent) {
                visit(parent, foreign, names, placed, visiting, order);
            }
        }
        placed.insert(table);
        order.push(table);
    }
    let mut visiting = BTreeSet::new();
    for (_, table) in &tables {
        visit(
            table,
            &foreign,
            &names,
            &mut placed,
            &mut visiting,
            &mut order,
        );
    }
    client
        .batch_execute("SET session_replication_role = replica")
        .await?;
    let mut filled = Vec::new();
    for table in order {
        let existing: i64 = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await?
            .get(0);
        if existing > 0 {
            continue;
        }
        let columns = columns(client, table).await?;
        let fks = foreign.get(table.as_str()).map_or(&[][..], Vec::as_slice);
        let mut failure = None;
        let mut relaxed: Vec<(String, String)> = Vec::new();
        'attempts: for sparse in [false, true] {
            let insert = insert_sql(client, table, &columns, fks, rows.of(table), sparse).await?;
            // Each CHECK that rejects the rows is set aside, when that is allowed.
            for _ in 0..16 {
                match client.batch_execute(&insert).await {
                    Ok(()) => {
                        failure = None;
                        break 'attempts;
                    }
                    Err(error) => {
                        let check = error
                            .as_db_error()
                            .filter(|db| {
                                db.code() == &tokio_postgres::error::SqlState::CHECK_VIOLATION
                            })
                            .and_then(|db| db.constraint())
                            .map(ToOwned::to_owned);
                        failure = Some(groundwork_support::connect::describe(&error));
                        let Some(check) = check.filter(|_| rows.relax_checks) else {
                            break;
                        };
                        let definition: String = client
                            .query_one(
                                "SELECT pg_get_constraintdef(oid) FROM pg_constraint
                                 WHERE conrelid = $1::text::regclass AND conname = $2",
                                &[&table, &check],
                            )
                            .await?
                            .get(0);
                        client
                            .batch_execute(&format!(
                                "ALTER TABLE {table} DROP CONSTRAINT \"{check}\""
                            ))
                            .await?;
                        relaxed.push((check, definition));
                    }
                }
            }
        }
        for (check, definition) in relaxed {
            client
                .batch_execute(&format!(
                    "ALTER TABLE {table} ADD CONSTRAINT \"{check}\" {definition} NOT VALID"
                ))
                .await?;
        }
        let count: i64 = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await?
            .get(0);
        filled.push(Filled {
            table: table.clone(),
            rows: count,
            failure,
        });
    }
    client
        .batch_execute("RESET session_replication_role; ANALYZE")
        .await?;
    Ok(filled)
}

async fn columns(client: &Client, table: &str) -> Result<Vec<Column>, tokio_postgres::Error> {
    Ok(client
        .query(
            "SELECT quote_ident(a.attname), format_type(a.atttypid, a.atttypmod),
                    b.typcategory::text, b.oid::regtype::text, b.typtype = 'e',
                    a.attnotnull, a.atthasdef
             FROM pg_attribute a
             JOIN pg_type t ON t.oid = a.atttypid
             JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
             WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped
               AND a.attgenerated = '' AND a.attidentity = ''
             ORDER BY a.attnum",
            &[&table],
        )
        .await?
        .iter()
        .map(|r| Column {
            name: r.get(0),
            ty: r.get(1),
            base_category: r.get(2),
            base_type: r.get(3),
            enum_type: r.get(4),
            not_null: r.get(5),
            has_default: r.get(6),
        })
        .collect())
}

/// `INSERT INTO table (...) SELECT ... FROM generate_series(1, rows) g JOIN <each
/// referenced table, numbered> ON ... ON CONFLICT DO NOTHING`. With `sparse`, nullable
/// columns stay NULL and columns with defaults take them.
async fn insert_sql(
    client: &Client,
    table: &str,
    columns: &[Column],
    fks: &[ForeignKey],
    rows: i64,
    sparse: bool,
) -> Result<String, tokio_postgres::Error> {
    let mut joins = String::new();
    let mut from_fk: BTreeMap<&str, String> = BTreeMap::new();
    for (i, fk) in fks.iter().enumerate() {
        if fk.parent == table {
            continue;
        }
        let parent_rows: i64 = client
            .query_one(&format!("SELECT count(*) FROM {}", fk.parent), &[])
            .await?
            .get(0);
        if parent_rows == 0 {
            continue;
        }
        let alias = format!("p{i}");
        joins.push_str(&format!(
            " JOIN (SELECT row_number() OVER () - 1 AS n, {} FROM {}) {alias} ON {alias}.n = (g * {}) % {parent_rows}",
            fk.parent_columns.join(", "),
            fk.parent,
            // Different tables step through their parents at different strides.
            2 * i + 1,
        ));
        for (column, parent_column) in fk.columns.iter().zip(&fk.parent_columns) {
            from_fk
                .entry(column.as_str())
                .or_insert(format!("{alias}.{parent_column}"));
        }
    }
    let mut names = Vec::new();
    let mut values = Vec::new();
    for column in columns {
        let value = match from_fk.get(column.name.as_str()) {
            Some(value) => value.clone(),
            None if column.has_default && (sparse || !column.not_null) => continue,
            None if sparse && !column.not_null => continue,
            None => match value_for(column) {
                Some(value) => value,
                None if column.has_default || !column.not_null => continue,
                None => format!("NULL::{}", column.ty),
            },
        };
        names.push(column.name.clone());
        values.push(value);
    }
    Ok(format!(
        "INSERT INTO {table} ({}) SELECT {} FROM generate_series(1, {rows}) g{joins} ON CONFLICT DO NOTHING",
        names.join(", "),
        values.join(", "),
    ))
}

/// A value for row `g` of a column, from its (base) type.
fn value_for(column: &Column) -> Option<String> {
    let ty = &column.ty;
    if column.enum_type {
        let base = &column.base_type;
        return Some(format!(
            "((enum_range(NULL::{base}))[1 + g % cardinality(enum_range(NULL::{base}))])::{ty}"
        ));
    }
    let value = match (column.base_category.as_str(), column.base_type.as_str()) {
        (_, "uuid") => "gen_random_uuid()".to_owned(),
        (_, "boolean") => "g % 2 = 0".to_owned(),
        (_, "smallint") => "(g % 32000)".to_owned(),
        ("N", _) => "g".to_owned(),
        // Shaped to pass the usual checks: an address for email columns, otherwise a
        // lower-case word of 8 characters (lengths, slugs, identifiers).
        ("S", _) if column.name.contains("email") => "'user' || g || '@example.com'".to_owned(),
        ("S", _) => "'v' || lpad(g::text, 7, '0')".to_owned(),
        (_, "date") => "(current_date - (g % 3650))".to_owned(),
        ("D", _) if column.name.contains("expires") => {
            "(now() + interval '1 day' + g * interval '1 minute')".to_owned()
        }
        ("D", _) => "(now() - g * interval '1 minute')".to_owned(),
        ("T", _) => "(g * interval '1 second')".to_owned(),
        (_, "jsonb" | "json") => "'{}'".to_owned(),
        (_, "bytea") => "sha256(convert_to(g::text, 'UTF8'))".to_owned(),
        (_, "inet" | "cidr") => "'10.0.0.1'".to_owned(),
        ("A", _) => "'{}'".to_owned(),
        _ => return None,
    };
    Some(format!("({value})::{ty}"))
}
