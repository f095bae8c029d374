//! `db seed`: the development seed data, and the ids to act with.

use std::process::ExitCode;

use groundwork_provision::Settings;

use crate::cli::server;

/// The development seed data, as `groundwork db seed` loads it.
const DEVELOPMENT_SEED: &str = include_str!("../../../seeds/development.sql");

/// The seeded organization's slug and its owner's email, as the seed script writes them.
const SEED_ORGANIZATION: &str = "acme-development";
const SEED_OWNER: &str = "dev@acme.test";

/// Runs the seed script in one transaction, says what the database now holds (on
/// stderr) and prints the ids as `NAME=value` lines (on stdout, for an env file).
pub(super) async fn seed(settings: &Settings) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let postgres = server(settings).await?;
    let url = postgres.url();
    let client = groundwork_support::connect::connect(url)
        .await
        .map_err(|e| format!("connecting to {url}: {e}"))?;
    client
        .batch_execute(&format!("BEGIN;\n{DEVELOPMENT_SEED}\nCOMMIT;"))
        .await
        .map_err(|e| -> Box<dyn std::error::Error> {
            match e.as_db_error() {
                Some(db) if matches!(db.code().code(), "42P01" | "3F000") => format!(
                    "the database is not migrated: run `groundwork migrate up` first ({})",
                    db.message()
                )
                .into(),
                Some(db) => format!(
                    "loading the seed data: {}: {}",
                    db.code().code(),
                    db.message()
                )
                .into(),
                None => format!("loading the seed data: {e}").into(),
            }
        })?;
    let read_back = |e: tokio_postgres::Error| format!("reading the seed data back: {e}");
    let row = client
        .query_one(SEED_TENANT, &[&SEED_ORGANIZATION, &SEED_OWNER])
        .await
        .map_err(read_back)?;
    let (organization, owner, submissions, products): (String, String, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let forms = client
        .query(SEED_FORMS, &[&organization])
        .await
        .map_err(read_back)?;
    eprintln!(
        "development seed data: organization {SEED_ORGANIZATION} (owner {SEED_OWNER}), \
         {} form(s), {submissions} submission(s), {products} product(s)",
        forms.len()
    );
    say!("ORGANIZATION_ID={organization}");
    say!("USER_ID={owner}");
    for form in &forms {
        let (name, id): (String, String) = (form.get(0), form.get(1));
        say!("{}_FORM_ID={id}", env_name(&name));
    }
    Ok(ExitCode::SUCCESS)
}

/// `Service request` -> `SERVICE_REQUEST`.
fn env_name(name: &str) -> String {
    let upper: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    upper
        .split('_')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

/// The seeded organization, its owner and its submissions, read back as the owner.
const SEED_TENANT: &str = "SELECT o.id::text, u.id::text,
    (SELECT count(*) FROM forms.form_submissions s WHERE s.organization_id = o.id),
    (SELECT count(*) FROM catalog.products p WHERE p.organization_id = o.id)
FROM identity.organizations o, identity.users u
WHERE o.slug = $1 AND u.email = $2";

/// The seeded organization's forms.
const SEED_FORMS: &str = "SELECT name, id::text FROM forms.form_definitions
WHERE organization_id = $1::text::uuid ORDER BY name, version";

#[cfg(test)]
mod tests {
    use super::env_name;

    #[test]
    fn form_names_become_variable_names() {
        assert_eq!(env_name("Service request"), "SERVICE_REQUEST");
        assert_eq!(env_name(" Expenses (2026) "), "EXPENSES_2026");
    }
}
