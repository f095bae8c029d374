//! pg_dump's entries grouped into the dump's objects: each with a short label, its
//! comments and privileges folded in, and the file it goes in.

use std::collections::{BTreeMap, HashMap};

use super::SchemaError;
use super::toc::Entry;

/// The file, without `.sql`, of what belongs to the database rather than a schema:
/// extensions, and privileges on `pg_catalog`'s functions.
pub(crate) const DATABASE: &str = "database";

/// One object of the dump: a label for its header comment and its SQL, with its
/// owner, comments and privileges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaObject {
    label: String,
    sql: String,
}

impl SchemaObject {
    /// What the object is, as its header comment says: `function
    /// forms.json_schema_valid(jsonb, jsonb, boolean)`, `table identity.users`,
    /// `policy users_self on identity.users`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Its statements, as pg_dump writes them.
    pub fn sql(&self) -> &str {
        &self.sql
    }
}

/// An entry that is not an object of its own but a statement about one.
const DEPENDENT: &[&str] = &[
    "ACL",
    "COMMENT",
    "SECURITY LABEL",
    "SEQUENCE OWNED BY",
    "DEFAULT",
];

/// Kinds of relation: what `TABLE x` and `COLUMN x.c` name.
const RELATIONS: &[&str] = &[
    "TABLE",
    "VIEW",
    "MATERIALIZED VIEW",
    "FOREIGN TABLE",
    "SEQUENCE",
];

const ROUTINES: &[&str] = &["FUNCTION", "PROCEDURE", "AGGREGATE"];

/// The object kinds that name an object in a comment's or privilege's tag
/// (`FUNCTION f(p integer)`, `COLUMN users.email`), longest first.
const KEYWORDS: &[&str] = &[
    "TEXT SEARCH CONFIGURATION",
    "TEXT SEARCH DICTIONARY",
    "TEXT SEARCH TEMPLATE",
    "TEXT SEARCH PARSER",
    "FOREIGN DATA WRAPPER",
    "MATERIALIZED VIEW",
    "OPERATOR FAMILY",
    "OPERATOR CLASS",
    "FOREIGN TABLE",
    "EVENT TRIGGER",
    "ACCESS METHOD",
    "LARGE OBJECT",
];

/// Kinds whose objects belong to the database, not to a schema.
const DATABASE_WIDE: &[&str] = &[
    "SCHEMA",
    "EXTENSION",
    "EVENT TRIGGER",
    "FOREIGN DATA WRAPPER",
    "SERVER",
    "PUBLICATION",
    "SUBSCRIPTION",
    "LANGUAGE",
    "CAST",
    "ACCESS METHOD",
    "LARGE OBJECT",
];

struct Primary {
    file: String,
    schema: Option<String>,
    kind: String,
    tag: String,
    object: SchemaObject,
}

/// The objects of `entries` by file name (without `.sql`), each file's objects in
/// pg_dump's order. Comments, privileges, column defaults and sequence ownership are
/// folded into the object they are about; those about an object outside the dump
/// (privileges on a `pg_catalog` function) are objects of their own.
pub(crate) fn group(
    entries: Vec<Entry>,
) -> Result<BTreeMap<String, Vec<SchemaObject>>, SchemaError> {
    let mut primaries: Vec<Primary> = Vec::new();
    for entry in entries {
        if DEPENDENT.contains(&entry.kind.as_str())
            && let Some(parent) = parent(&primaries, &entry)
        {
            let sql = &mut primaries[parent].object.sql;
            sql.push('\n');
            sql.push_str(&entry.sql);
            continue;
        }
        let label = label(&entry, &primaries);
        let file = file(&entry)?;
        primaries.push(Primary {
            file,
            schema: entry.schema,
            kind: entry.kind,
            tag: entry.tag,
            object: SchemaObject {
                label,
                sql: entry.sql,
            },
        });
    }
    let mut files: BTreeMap<String, Vec<SchemaObject>> = BTreeMap::new();
    for primary in primaries {
        files.entry(primary.file).or_default().push(primary.object);
    }
    for objects in files.values_mut() {
        let labels = unique_labels(objects.iter().map(|o| o.label.as_str()));
        for (object, label) in objects.iter_mut().zip(labels) {
            object.label = label;
        }
    }
    Ok(files)
}

/// `labels` with a repeated label numbered (`label (2)`), so that labels name objects.
pub(crate) fn unique_labels<'a>(labels: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    labels
        .into_iter()
        .map(|label| {
            let count = seen.entry(label).or_default();
            *count += 1;
            if *count == 1 {
                label.to_owned()
            } else {
                format!("{label} ({count})")
            }
        })
        .collect()
}

/// The object kind a comment's or privilege's tag starts with, and the rest:
/// `COLUMN users.email` is `("COLUMN", "users.email")`.
fn split_keyword(tag: &str) -> (&str, &str) {
    for keyword in KEYWORDS {
        if let Some(rest) = tag.strip_prefix(keyword).and_then(|r| r.strip_prefix(' ')) {
            return (keyword, rest);
        }
    }
    tag.split_once(' ').unwrap_or((tag, ""))
}

/// The already seen object `entry` is about.
fn parent(primaries: &[Primary], entry: &Entry) -> Option<usize> {
    let find = |test: &dyn Fn(&Primary) -> bool| primaries.iter().rposition(test);
    let here = |p: &Primary| p.schema == entry.schema;
    match entry.kind.as_str() {
        "SEQUENCE OWNED BY" => find(&|p| here(p) && p.kind == "SEQUENCE" && p.tag == entry.tag),
        // `users id`: a column default.
        "DEFAULT" => find(&|p| {
            here(p)
                && RELATIONS.contains(&p.kind.as_str())
                && entry
                    .tag
                    .strip_prefix(p.tag.as_str())
                    .is_some_and(|column| column.starts_with(' '))
        }),
        _ => {
            let (keyword, rest) = split_keyword(&entry.tag);
            match keyword {
                "FUNCTION" | "PROCEDURE" | "AGGREGATE" => find(&|p| {
                    here(p) && ROUTINES.contains(&p.kind.as_str()) && same_routine(&p.tag, rest)
                }),
                "SCHEMA" | "EXTENSION" => find(&|p| p.kind == keyword && p.tag == rest),
                "TABLE" => {
                    find(&|p| here(p) && RELATIONS.contains(&p.kind.as_str()) && p.tag == rest)
                }
                "TYPE" | "DOMAIN" => {
                    find(&|p| here(p) && (p.kind == "TYPE" || p.kind == "DOMAIN") && p.tag == rest)
                }
                "COLUMN" => find(&|p| {
                    here(p)
                        && (RELATIONS.contains(&p.kind.as_str()) || p.kind == "TYPE")
                        && rest
                            .strip_prefix(p.tag.as_str())
                            .is_some_and(|column| column.starts_with('.'))
                }),
                // `CONSTRAINT c ON t` is the entry `t c`; `CONSTRAINT c ON DOMAIN d` is
                // part of the domain.
                "CONSTRAINT" | "TRIGGER" | "POLICY" | "RULE" => {
                    let (name, on) = rest.rsplit_once(" ON ")?;
                    if let Some(domain) = on.strip_prefix("DOMAIN ") {
                        return find(&|p| here(p) && p.kind == "DOMAIN" && p.tag == domain);
                    }
                    let tag = format!("{on} {name}");
                    find(&|p| here(p) && p.kind.ends_with(keyword) && p.tag == tag)
                }
                _ => find(&|p| here(p) && p.kind == keyword && p.tag == rest),
            }
        }
    }
}

/// Whether `signature` (`f(integer, text)`, as a function's own entry names it) and
/// `named` (`f(p integer, q text)`, as its comments and privileges name it) are the
/// same function.
fn same_routine(signature: &str, named: &str) -> bool {
    fn split(call: &str) -> Option<(&str, Vec<&str>)> {
        let open = call.find('(')?;
        let inner = call[open + 1..].strip_suffix(')')?;
        Some((&call[..open], arguments(inner)))
    }
    let (Some((name, types)), Some((other, args))) = (split(signature), split(named)) else {
        return false;
    };
    name == other
        && types.len() == args.len()
        && types.iter().zip(&args).all(|(ty, arg)| {
            arg == ty
                || arg
                    .strip_suffix(ty)
                    .is_some_and(|before| before.ends_with(' '))
        })
}

/// A comma-separated argument list, split at its top-level commas.
fn arguments(list: &str) -> Vec<&str> {
    let mut args = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0);
    for (i, c) in list.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '(' | '[' if !quoted => depth += 1,
            ')' | ']' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                args.push(list[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    let last = list[start..].trim();
    if !last.is_empty() || !args.is_empty() {
        args.push(last);
    }
    args
}

/// The header label of an entry that is an object of its own: its kind in lower
/// case and its qualified name (`table identity.users`), `<kind> <name> on <table>`
/// for what belongs to a table (`trigger users_set_updated_at on identity.users`).
fn label(entry: &Entry, primaries: &[Primary]) -> String {
    let kind = entry.kind.as_str();
    let qualified = |name: &str| match &entry.schema {
        Some(schema) => format!("{schema}.{name}"),
        None => name.to_owned(),
    };
    match kind {
        "CONSTRAINT" | "FK CONSTRAINT" | "CHECK CONSTRAINT" | "TRIGGER" | "POLICY" | "RULE" => {
            let (table, name) = split_table(entry, primaries);
            let word = if kind.ends_with("CONSTRAINT") {
                "constraint".to_owned()
            } else {
                kind.to_lowercase()
            };
            format!("{word} {name} on {}", qualified(table))
        }
        "ROW SECURITY" => format!("row security on {}", qualified(&entry.tag)),
        "DEFAULT ACL" => {
            let what = entry
                .tag
                .strip_prefix("DEFAULT PRIVILEGES FOR ")
                .unwrap_or(&entry.tag)
                .to_lowercase();
            let role = &entry.owner;
            match &entry.schema {
                Some(schema) => {
                    format!("default privileges for {what} in schema {schema} (role {role})")
                }
                None => format!("default privileges for {what} (role {role})"),
            }
        }
        "ACL" | "COMMENT" | "SECURITY LABEL" => {
            let (keyword, rest) = split_keyword(&entry.tag);
            let what = match kind {
                "ACL" => "privileges on",
                "COMMENT" => "comment on",
                _ => "security label on",
            };
            let object = if DATABASE_WIDE.contains(&keyword) {
                rest.to_owned()
            } else {
                qualified(rest)
            };
            format!("{what} {} {object}", keyword.to_lowercase())
        }
        _ if entry.schema.is_none() => format!("{} {}", kind.to_lowercase(), entry.tag),
        _ => format!("{} {}", kind.to_lowercase(), qualified(&entry.tag)),
    }
}

/// `("users", "users_pkey")` for the tag `users users_pkey`: the longest table of the
/// entry's schema the tag starts with, else up to the first space.
fn split_table<'a>(entry: &'a Entry, primaries: &[Primary]) -> (&'a str, &'a str) {
    primaries
        .iter()
        .filter(|p| {
            p.schema == entry.schema && (RELATIONS.contains(&p.kind.as_str()) || p.kind == "DOMAIN")
        })
        .filter_map(|p| {
            let name = entry.tag.strip_prefix(p.tag.as_str())?.strip_prefix(' ')?;
            Some((&entry.tag[..p.tag.len()], name))
        })
        .max_by_key(|(table, _)| table.len())
        .or_else(|| entry.tag.split_once(' '))
        .unwrap_or((entry.tag.as_str(), ""))
}

/// The file `entry` goes in, without `.sql`: its schema's, or the database's.
fn file(entry: &Entry) -> Result<String, SchemaError> {
    let schema = match (&entry.schema, entry.kind.as_str()) {
        (_, "SCHEMA") => Some(entry.tag.as_str()),
        (None, kind) if DEPENDENT.contains(&kind) => match split_keyword(&entry.tag) {
            ("SCHEMA", schema) => Some(schema),
            _ => None,
        },
        (Some(schema), _) if schema != "pg_catalog" => Some(schema.as_str()),
        _ => None,
    };
    match schema {
        None => Ok(DATABASE.to_owned()),
        Some(name)
            if name.is_empty()
                || name == DATABASE
                || name.starts_with('.')
                || name.contains(['/', '\\', '\0']) =>
        {
            Err(SchemaError::UnsupportedSchemaName(name.to_owned()))
        }
        Some(name) => Ok(name.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::{arguments, group, same_routine};
    use crate::schema::toc::Entry;

    fn entry(tag: &str, kind: &str, schema: Option<&str>, sql: &str) -> Entry {
        Entry {
            tag: tag.into(),
            kind: kind.into(),
            schema: schema.map(Into::into),
            owner: "owner".into(),
            sql: sql.into(),
        }
    }

    #[test]
    fn matches_a_signature_with_its_named_form() {
        assert!(same_routine(
            "f(integer, double precision, text[])",
            "f(p integer, q double precision, VARIADIC r text[])"
        ));
        assert!(same_routine("f()", "f()"));
        assert!(same_routine("f(integer)", "f(integer)"));
        assert!(!same_routine("f(integer)", "f(p bigint)"));
        assert!(!same_routine("f(integer)", "g(p integer)"));
        assert!(!same_routine("f(integer)", "f(p integer, q integer)"));
        assert_eq!(
            arguments("a numeric(10,2), \"b,c\" text"),
            ["a numeric(10,2)", "\"b,c\" text"]
        );
        assert!(arguments("").is_empty());
    }

    #[test]
    fn folds_comments_and_privileges_into_their_objects() {
        let entries = vec![
            entry("app", "SCHEMA", None, "CREATE SCHEMA app;"),
            entry("pgcrypto", "EXTENSION", None, "CREATE EXTENSION pgcrypto;"),
            entry(
                "EXTENSION pgcrypto",
                "COMMENT",
                None,
                "COMMENT ON EXTENSION pgcrypto IS 'c';",
            ),
            entry(
                "f(integer)",
                "FUNCTION",
                Some("app"),
                "CREATE FUNCTION app.f(p integer);",
            ),
            entry(
                "FUNCTION f(p integer)",
                "COMMENT",
                Some("app"),
                "COMMENT ON FUNCTION app.f(p integer) IS 'f';",
            ),
            entry("users", "TABLE", Some("app"), "CREATE TABLE app.users ();"),
            entry(
                "users id",
                "DEFAULT",
                Some("app"),
                "ALTER TABLE app.users ALTER COLUMN id SET DEFAULT 1;",
            ),
            entry(
                "users users_pkey",
                "CONSTRAINT",
                Some("app"),
                "ALTER TABLE app.users ADD PRIMARY KEY (id);",
            ),
            entry(
                "users",
                "ROW SECURITY",
                Some("app"),
                "ALTER TABLE app.users ENABLE ROW LEVEL SECURITY;",
            ),
            entry(
                "users users_self",
                "POLICY",
                Some("app"),
                "CREATE POLICY users_self ON app.users;",
            ),
            entry(
                "FUNCTION pg_advisory_lock(bigint)",
                "ACL",
                Some("pg_catalog"),
                "REVOKE ALL ON FUNCTION pg_catalog.pg_advisory_lock(bigint) FROM PUBLIC;",
            ),
            entry("SCHEMA app", "ACL", None, "GRANT USAGE ON SCHEMA app TO r;"),
            entry(
                "FUNCTION f(p integer)",
                "ACL",
                Some("app"),
                "GRANT ALL ON FUNCTION app.f(p integer) TO r;",
            ),
            entry(
                "TABLE users",
                "ACL",
                Some("app"),
                "GRANT SELECT ON TABLE app.users TO r;",
            ),
            entry(
                "COLUMN users.id",
                "ACL",
                Some("app"),
                "GRANT UPDATE(id) ON TABLE app.users TO r;",
            ),
            entry(
                "DEFAULT PRIVILEGES FOR TABLES",
                "DEFAULT ACL",
                Some("app"),
                "ALTER DEFAULT PRIVILEGES;",
            ),
        ];
        let files = group(entries).unwrap();
        let summary: Vec<(String, Vec<(&str, &str)>)> = files
            .iter()
            .map(|(file, objects)| {
                (
                    file.clone(),
                    objects.iter().map(|o| (o.label(), o.sql())).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    "app".to_owned(),
                    vec![
                        (
                            "schema app",
                            "CREATE SCHEMA app;\nGRANT USAGE ON SCHEMA app TO r;"
                        ),
                        (
                            "function app.f(integer)",
                            "CREATE FUNCTION app.f(p integer);\n\
                             COMMENT ON FUNCTION app.f(p integer) IS 'f';\n\
                             GRANT ALL ON FUNCTION app.f(p integer) TO r;"
                        ),
                        (
                            "table app.users",
                            "CREATE TABLE app.users ();\n\
                             ALTER TABLE app.users ALTER COLUMN id SET DEFAULT 1;\n\
                             GRANT SELECT ON TABLE app.users TO r;\n\
                             GRANT UPDATE(id) ON TABLE app.users TO r;"
                        ),
                        (
                            "constraint users_pkey on app.users",
                            "ALTER TABLE app.users ADD PRIMARY KEY (id);"
                        ),
                        (
                            "row security on app.users",
                            "ALTER TABLE app.users ENABLE ROW LEVEL SECURITY;"
                        ),
                        (
                            "policy users_self on app.users",
                            "CREATE POLICY users_self ON app.users;"
                        ),
                        (
                            "default privileges for tables in schema app (role owner)",
                            "ALTER DEFAULT PRIVILEGES;"
                        ),
                    ]
                ),
                (
                    "database".to_owned(),
                    vec![
                        (
                            "extension pgcrypto",
                            "CREATE EXTENSION pgcrypto;\nCOMMENT ON EXTENSION pgcrypto IS 'c';"
                        ),
                        (
                            "privileges on function pg_catalog.pg_advisory_lock(bigint)",
                            "REVOKE ALL ON FUNCTION pg_catalog.pg_advisory_lock(bigint) FROM PUBLIC;"
                        ),
                    ]
                ),
            ]
        );
    }

    #[test]
    fn a_schema_named_like_the_database_file_is_refused() {
        let err = group(vec![entry(
            "database",
            "SCHEMA",
            None,
            "CREATE SCHEMA database;",
        )])
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("schema \"database\" cannot be dumped"),
            "{err}"
        );
    }
}
