//! Query plans at scale: every query of `queries/` explained with its generic plan
//! (the one a prepared statement settles on), on a database filled with many rows.
//! A sequential scan of a large table, a sort of a large input or a plan over a cost
//! limit fails, unless the query's file says why it is fine with a plain comment above
//! the query that cornucopia skips:
//!
//! ```sql
//! -- plan: allow-seq-scan because the table holds one row per tenant
//! --! organization_settings_get : Settings
//! ```
//!
//! The allowances are `allow-seq-scan`, `allow-sort` and `allow-cost`.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;
use tokio_postgres::{Client, SimpleQueryMessage};

use super::finding::{Finding, Origin, Severity};
use super::queries::{QueryFile, positional};

/// What counts as too much.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlanLimits {
    /// A table with at least this many rows is large: scanning it whole fails.
    pub large_rows: f64,
    /// A sort of at least this many (estimated) rows fails.
    pub sort_rows: f64,
    /// A plan whose total cost is above this fails.
    pub max_cost: f64,
}

impl Default for PlanLimits {
    fn default() -> Self {
        Self {
            large_rows: 10_000.0,
            sort_rows: 10_000.0,
            max_cost: 100_000.0,
        }
    }
}

/// One query's plan, summarised.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanRecord {
    /// The query file.
    pub file: String,
    /// The query.
    pub query: String,
    /// The generic plan's total cost.
    pub cost: f64,
    /// Relations read by sequential scans.
    pub seq_scans: Vec<String>,
}

/// Explains every query of `files` on `client` (connected as the application role,
/// with a tenant set) and checks the plans against `limits`; also says which queries
/// could not be explained, and why.
pub async fn check_plans(
    client: &Client,
    files: &[QueryFile],
    limits: &PlanLimits,
) -> Result<(Vec<Finding>, Vec<PlanRecord>, Vec<String>), tokio_postgres::Error> {
    let sizes: HashMap<String, f64> = client
        .query(
            "SELECT n.nspname || '.' || c.relname, greatest(c.reltuples, 0)::float8
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p', 'm')",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    client
        .batch_execute("SET plan_cache_mode = force_generic_plan")
        .await?;
    let mut findings = Vec::new();
    let mut records = Vec::new();
    let mut notes = Vec::new();
    for file in files {
        for (name, query) in &file.queries {
            let sql = positional(&query.sql);
            let sql = sql.trim().trim_end_matches(';');
            if sql.is_empty() {
                continue;
            }
            let finding = |rule: &'static str, message: String, hint: &str| Finding {
                file: PathBuf::from(&file.path),
                line: query.line,
                severity: Severity::Error,
                rule,
                message,
                hint: hint.to_owned(),
                origin: Origin::Plan,
            };
            let allowed = |what: &str| {
                query
                    .plan
                    .iter()
                    .any(|p| p.starts_with(what) && p.contains(" because "))
            };
            let params = match client.prepare(sql).await {
                Ok(statement) => statement.params().len(),
                Err(error) => {
                    notes.push(format!(
                        "{}: query {name} does not prepare: {}",
                        file.path,
                        groundwork_support::connect::describe(&error)
                    ));
                    continue;
                }
            };
            let args = vec!["NULL"; params].join(", ");
            let execute = if params == 0 {
                "EXPLAIN (FORMAT JSON, VERBOSE) EXECUTE groundwork_plan".to_owned()
            } else {
                format!("EXPLAIN (FORMAT JSON, VERBOSE) EXECUTE groundwork_plan({args})")
            };
            let mut explained = explain(client, sql, &execute).await;
            // A query for another role (a SECURITY DEFINER function granted to the
            // authentication service, say) is explained as the session's own user.
            if explained.as_ref().is_err_and(|e| {
                e.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE)
            }) {
                let role: String = client
                    .query_one("SELECT current_user::text", &[])
                    .await?
                    .get(0);
                client.batch_execute("RESET ROLE").await?;
                explained = explain(client, sql, &execute).await;
                client
                    .batch_execute(&format!("SET ROLE \"{}\"", role.replace('"', "\"\"")))
                    .await?;
            }
            let explained = match explained {
                Ok(text) => text,
                Err(error) => {
                    notes.push(format!(
                        "{}: query {name} could not be explained: {}",
                        file.path,
                        groundwork_support::connect::describe(&error)
                    ));
                    continue;
                }
            };
            let plan: Value = serde_json::from_str(&explained).unwrap_or(Value::Null);
            let root = &plan[0]["Plan"];
            let cost = root["Total Cost"].as_f64().unwrap_or_default();
            let mut nodes = Vec::new();
            walk(root, &mut nodes);
            let mut seq_scans = Vec::new();
            for node in nodes {
                let kind = node["Node Type"].as_str().unwrap_or_default();
                let rows = node["Plan Rows"].as_f64().unwrap_or_default();
                if kind == "Seq Scan" {
                    let relation = format!(
                        "{}.{}",
                        node["Schema"].as_str().unwrap_or_default(),
                        node["Relation Name"].as_str().unwrap_or_default()
                    );
                    let size = sizes.get(&relation).copied().unwrap_or_default();
                    if size >= limits.large_rows && !allowed("allow-seq-scan") {
                        findings.push(finding(
                            "plan-seq-scan",
                            format!(
                                "query {name} reads all of {relation} ({size:.0} rows) with a \
                                 sequential scan"
                            ),
                            "add an index that matches the query's filter (leading with \
                             organization_id for a tenant table), or say why with \
                             `-- plan: allow-seq-scan because ...` above the query",
                        ));
                    }
                    seq_scans.push(relation);
                }
                if kind == "Sort" && rows >= limits.sort_rows && !allowed("allow-sort") {
                    findings.push(finding(
                        "plan-large-sort",
                        format!("query {name} sorts about {rows:.0} rows"),
                        "add an index in the ORDER BY's order so rows come out sorted, or \
                         say why with `-- plan: allow-sort because ...`",
                    ));
                }
            }
            if cost > limits.max_cost && !allowed("allow-cost") {
                findings.push(finding(
                    "plan-cost",
                    format!(
                        "query {name}'s plan costs {cost:.0}, over the limit of {:.0}",
                        limits.max_cost
                    ),
                    "make the query cheaper (an index, a LIMIT, a narrower filter), or say \
                     why with `-- plan: allow-cost because ...`",
                ));
            }
            records.push(PlanRecord {
                file: file.path.clone(),
                query: name.clone(),
                cost,
                seq_scans,
            });
        }
    }
    Ok((findings, records, notes))
}

/// `EXPLAIN EXECUTE` of `sql` prepared as `groundwork_plan`, as JSON text.
async fn explain(
    client: &Client,
    sql: &str,
    execute: &str,
) -> Result<String, tokio_postgres::Error> {
    client
        .batch_execute(&format!("PREPARE groundwork_plan AS {sql}"))
        .await?;
    let text = client.simple_query(execute).await;
    client.batch_execute("DEALLOCATE groundwork_plan").await?;
    Ok(text?
        .into_iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0).map(ToOwned::to_owned),
            _ => None,
        })
        .unwrap_or_default())
}

fn walk<'a>(node: &'a Value, out: &mut Vec<&'a Value>) {
    if node.is_null() {
        return;
    }
    out.push(node);
    if let Some(children) = node["Plans"].as_array() {
        for child in children {
            walk(child, out);
        }
    }
}
