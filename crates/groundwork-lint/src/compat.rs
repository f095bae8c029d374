//! Rolling deploys: while a new release's migrations run, and until every instance of
//! the old release is gone, the old release's queries run against the new schema. Each
//! of them must still prepare there.

use std::path::PathBuf;

use tokio_postgres::Client;

use super::finding::{Finding, Origin, Severity};
use super::queries::{QueryFile, positional};

/// The queries of the previous release that no longer prepare against the schema
/// `client`'s database has, one finding each, naming the query and (through the
/// server's message) the object. `release` names where the files come from (a git
/// revision).
pub async fn check_compat(
    client: &Client,
    files: &[QueryFile],
    release: &str,
) -> Result<Vec<Finding>, tokio_postgres::Error> {
    let mut findings = Vec::new();
    for file in files {
        for (name, query) in &file.queries {
            let sql = positional(&query.sql);
            let sql = sql.trim().trim_end_matches(';');
            if sql.is_empty() {
                continue;
            }
            if let Err(error) = client.prepare(sql).await {
                let reason = error
                    .as_db_error()
                    .map_or_else(|| error.to_string(), |db| db.message().to_owned());
                findings.push(Finding {
                    file: PathBuf::from(&file.path),
                    line: query.line,
                    severity: Severity::Error,
                    rule: "rolling-deploy-compat",
                    message: format!(
                        "query {name} of {release} no longer prepares against the new \
                         schema: {reason}"
                    ),
                    hint: "keep what the running release uses until a later release stops \
                           using it: add the new column, function or signature beside the \
                           old one, and drop the old one in a later migration"
                        .to_owned(),
                    origin: Origin::Trace,
                });
            }
        }
    }
    Ok(findings)
}
