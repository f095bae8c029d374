//! `migrate new NAME --tenant-table SCHEMA.TABLE`: a migration pair for a table whose
//! rows belong to a tenant, with the conventions of the README's "Architecture" that
//! every such table needs: `organization_id` defaulting to the tenant of the
//! transaction and leading the primary key, `created_at`/`updated_at` with the shared
//! trigger, row-level security for the application and service roles, grants, and
//! `groundwork_owner` as owner. The down file undoes all of it.

use std::fmt;

use groundwork_migrate::Migration;

/// The longest suffix a derived name gets (`<table>_organization_id_fkey`); PostgreSQL
/// truncates names at 63 bytes.
const LONGEST_SUFFIX: &str = "_organization_id_fkey";

/// Schemas that are not for tenant tables.
const NOT_APPLICATION_SCHEMAS: &[&str] = &["public", "information_schema"];

/// `SCHEMA.TABLE`, both plain lower-case SQL identifiers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct TenantTable {
    schema: String,
    table: String,
}

impl fmt::Display for TenantTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.table)
    }
}

/// A clap value parser for `--tenant-table`.
pub(super) fn parse(value: &str) -> Result<TenantTable, String> {
    let Some((schema, table)) = value.split_once('.') else {
        return Err(
            "name the schema too, as SCHEMA.TABLE: tenant tables live in an application \
             schema"
                .to_owned(),
        );
    };
    for (what, name) in [("schema", schema), ("table", table)] {
        let mut chars = name.chars();
        let plain = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !plain {
            return Err(format!(
                "the {what} name {name:?} is not a plain SQL name: use lower-case letters, \
                 digits and underscores, starting with a letter"
            ));
        }
    }
    if NOT_APPLICATION_SCHEMAS.contains(&schema) || schema.starts_with("pg_") {
        return Err(format!(
            "{schema} is not an application schema: tenant tables live in a schema of \
             their own (billing.invoices, not public.invoices)"
        ));
    }
    let longest = 63 - LONGEST_SUFFIX.len();
    if table.len() > longest || schema.len() > 63 {
        return Err(format!(
            "the table name has at most {longest} characters (its constraint names add up \
             to {} more) and the schema's at most 63",
            LONGEST_SUFFIX.len()
        ));
    }
    Ok(TenantTable {
        schema: schema.to_owned(),
        table: table.to_owned(),
    })
}

impl TenantTable {
    /// Whether one of `migrations` creates this table's schema.
    pub(super) fn schema_exists(&self, migrations: &[Migration]) -> bool {
        migrations
            .iter()
            .any(|m| creates_schema(&m.up.sql, &self.schema))
    }

    /// The up and down files of migration `stem` (`<version>_<slug>`) named `name`;
    /// they create (and drop) the schema too unless `schema_exists`.
    pub(super) fn files(&self, name: &str, stem: &str, schema_exists: bool) -> (String, String) {
        let (schema_up, ownership, schema_down, down_why) = if schema_exists {
            ("", OWNER_IN_EXISTING_SCHEMA, "", DOWN_IN_EXISTING_SCHEMA)
        } else {
            (
                CREATE_SCHEMA,
                OWNER_OF_NEW_SCHEMA,
                DROP_SCHEMA,
                DOWN_WITH_SCHEMA,
            )
        };
        // One line, whatever was typed: the name ends up in a comment.
        let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
        let fill = |template: &str| {
            template
                .replace("{schema}", &self.schema)
                .replace("{table}", &self.table)
                .replace("{stem}", stem)
                .replace("{name}", &name)
        };
        let up = UP
            .replace("{create_schema}", schema_up)
            .replace("{ownership}", ownership);
        let down = DOWN
            .replace("{why}", down_why)
            .replace("{drop_schema}", schema_down);
        (fill(&up), fill(&down))
    }
}

const UP: &str = r#"-- Why: {name}. Say here why the table exists and what its rows are.
--
-- {schema}.{table} is a tenant table (README, "Architecture"): organization_id leads
-- every key, row-level security keeps groundwork_app, groundwork_readonly and the
-- service roles (groundwork_service) to the rows of the transaction's tenant, and the
-- queries in queries/{schema}/{table}.sql filter on organization_id =
-- identity.current_org_id() and leave organization_id to its default when they insert.

{create_schema}CREATE TABLE {schema}.{table} (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL DEFAULT identity.current_org_id()
        CONSTRAINT {table}_organization_id_fkey
            REFERENCES identity.organizations (id) ON DELETE CASCADE,
    -- The table's own columns: replace name, and keep the grants below in step.
    name text NOT NULL
        CONSTRAINT {table}_name_length CHECK (char_length(btrim(name)) BETWEEN 1 AND 255),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- Unique and foreign keys lead with the tenant too: FOREIGN KEY (organization_id,
    -- other_id) REFERENCES {schema}.others (organization_id, id).
    CONSTRAINT {table}_pkey PRIMARY KEY (organization_id, id)
);

CREATE TRIGGER {table}_set_updated_at BEFORE UPDATE ON {schema}.{table}
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

-- Row-level security: each tenant reads and writes its own rows only.
ALTER TABLE {schema}.{table} ENABLE ROW LEVEL SECURITY;
CREATE POLICY {table}_tenant ON {schema}.{table}
    FOR ALL TO groundwork_app, groundwork_readonly, groundwork_service
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

{ownership}
GRANT SELECT ON {schema}.{table} TO groundwork_app, groundwork_readonly;
GRANT INSERT (id, name), UPDATE (name), DELETE ON {schema}.{table} TO groundwork_app;
-- The context's service role may do what groundwork_app does (docs/SECURITY.md,
-- "Service roles"): SELECT public.groundwork_grant_like('{schema}', 'groundwork_app',
-- '<context>_service'); then its row of the role matrix.
"#;

const CREATE_SCHEMA: &str = "CREATE SCHEMA {schema};\n\n";

const OWNER_OF_NEW_SCHEMA: &str = r#"-- The schema and everything in it belong to groundwork_owner; the application roles
-- use it and create nothing in it.
SELECT public.groundwork_set_owner('{schema}', 'groundwork_owner');

GRANT USAGE ON SCHEMA {schema} TO groundwork_app, groundwork_readonly;"#;

const OWNER_IN_EXISTING_SCHEMA: &str = r#"-- Like everything in {schema}, the table belongs to groundwork_owner.
ALTER TABLE {schema}.{table} OWNER TO groundwork_owner;"#;

const DOWN: &str = r#"-- Why: undoes {stem}.up.sql.
-- {why}

DROP TABLE {schema}.{table};
{drop_schema}"#;

const DOWN_WITH_SCHEMA: &str =
    "The table's trigger, policy and grants go with it, and the schema's grants
-- with the schema. DROP SCHEMA without CASCADE fails while the schema holds anything
-- else: undo here whatever the up file adds to it.";

const DOWN_IN_EXISTING_SCHEMA: &str = "The table's trigger, policy and grants go with it.";

const DROP_SCHEMA: &str = "DROP SCHEMA {schema};\n";

/// Whether `sql` has `CREATE SCHEMA [IF NOT EXISTS] <schema>` (any case, the name
/// possibly quoted) outside comments.
fn creates_schema(sql: &str, schema: &str) -> bool {
    let words: Vec<String> = sql
        .lines()
        .map(|line| line.split("--").next().unwrap_or_default())
        .flat_map(|line| {
            line.split(|c: char| c.is_whitespace() || c == ';' || c == '(')
                .filter(|w| !w.is_empty())
                .map(|w| w.trim_matches('"').to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .collect();
    words.windows(2).enumerate().any(|(i, pair)| {
        if pair[0] != "create" || pair[1] != "schema" {
            return false;
        }
        let rest = &words[i + 2..];
        let name = match rest {
            [a, b, c, name, ..] if a == "if" && b == "not" && c == "exists" => name,
            [name, ..] => name,
            [] => return false,
        };
        name == schema
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_schema_created_in_any_spelling() {
        assert!(creates_schema("CREATE SCHEMA projects;", "projects"));
        assert!(creates_schema(
            "create schema if not exists \"billing\";",
            "billing"
        ));
        assert!(!creates_schema("-- CREATE SCHEMA billing;", "billing"));
        assert!(!creates_schema("CREATE SCHEMA billing_archive;", "billing"));
    }

    #[test]
    fn refuses_names_that_are_not_plain_or_not_an_application_schema() {
        assert!(parse("invoices").unwrap_err().contains("SCHEMA.TABLE"));
        assert!(
            parse("public.invoices")
                .unwrap_err()
                .contains("not an application schema")
        );
        assert!(
            parse("billing.Invoices")
                .unwrap_err()
                .contains("plain SQL name")
        );
        assert!(parse(&format!("billing.{}", "t".repeat(43))).is_err());
        assert_eq!(
            parse("billing.invoices").unwrap().to_string(),
            "billing.invoices"
        );
    }
}
