//! The trace: every migration run statement by statement on a populated throw-away
//! database, watching locks, rewrites and scans of the relations that existed before
//! it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use groundwork_migrate::{Migration, Script, split_statements};
use groundwork_support::connect::{connect, describe, with_database};
use serde::Serialize;
use tokio_postgres::Client;

use super::catalog::catalog;
use super::compat::check_compat;
use super::error::LintError;
use super::fill::{Rows, fill_tables};
use super::finding::{Finding, Location, Origin, Severity, line_of};
use super::queries::QueryFile;
use super::rules::allowed_at;

/// How the trace runs.
#[derive(Clone, Debug)]
pub struct TraceOptions {
    /// Rows put in each table once the migration that creates it has run.
    pub rows: i64,
    /// Also check that each down file restores the catalog exactly.
    pub check_down: bool,
    /// The previous release (its name and query files), whose queries must still
    /// prepare once every migration has run.
    pub previous: Option<(String, Vec<QueryFile>)>,
}

impl Default for TraceOptions {
    fn default() -> Self {
        Self {
            rows: 10_000,
            check_down: true,
            previous: None,
        }
    }
}

/// What the trace found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Traced {
    /// Findings, in the order they were made.
    pub findings: Vec<Finding>,
    /// Per migration and existing table, the strongest lock.
    pub locks: Vec<LockRecord>,
    /// What the trace could not do: tables that stayed empty because their checks
    /// rejected the generated rows, and why.
    pub notes: Vec<String>,
}

/// The strongest lock one migration took on one relation that existed before it, and
/// the statement that took it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LockRecord {
    /// The migration file.
    pub file: PathBuf,
    /// Line of the statement.
    pub line: usize,
    /// The relation, as `schema.name`.
    pub relation: String,
    /// The lock mode, as PostgreSQL names it (`AccessExclusiveLock`).
    pub mode: String,
    /// Rows of the relation read while the migration held its locks.
    pub rows_read: i64,
    /// Rows written.
    pub rows_written: i64,
    /// Whether the relation's storage was rewritten.
    pub rewritten: bool,
}

impl fmt::Display for LockRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: trace {} on {}, {} rows read, {} written{}",
            self.file.display(),
            self.line,
            self.mode,
            self.relation,
            self.rows_read,
            self.rows_written,
            if self.rewritten { ", rewritten" } else { "" }
        )
    }
}

/// PostgreSQL's lock modes, weakest first.
const MODES: &[&str] = &[
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
];

fn strength(mode: &str) -> usize {
    MODES.iter().position(|m| *m == mode).map_or(0, |p| p + 1)
}

/// From `ShareLock` up, writers wait.
const BLOCKS_WRITES: usize = 5;

/// The schema of the trace's own event trigger.
const OWN_SCHEMA: &str = "groundwork_lint";

const SETUP: &str = "
    CREATE SCHEMA groundwork_lint;
    CREATE FUNCTION groundwork_lint.note_rewrite() RETURNS event_trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF to_regclass('pg_temp.groundwork_lint_rewrites') IS NOT NULL THEN
            INSERT INTO pg_temp.groundwork_lint_rewrites
            VALUES (pg_event_trigger_table_rewrite_oid(), pg_event_trigger_table_rewrite_reason());
        END IF;
    END $$;
    CREATE EVENT TRIGGER groundwork_lint_rewrite ON table_rewrite
        EXECUTE FUNCTION groundwork_lint.note_rewrite();
";

/// A relation that existed before the migration.
#[derive(Clone, Debug)]
struct Existing {
    name: String,
    kind: String,
    rows: i64,
}

/// Replays `migrations` into a new database on the server of `server_url` (a URL whose
/// role may create databases and event triggers), filling each migration's new tables
/// with rows, and traces every migration. The database is dropped afterwards.
pub async fn trace(
    server_url: &str,
    migrations: &[Migration],
    options: TraceOptions,
) -> Result<Traced, LintError> {
    let admin = connect(server_url).await?;
    let name = format!(
        "groundwork_lint_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    );
    admin
        .batch_execute(&format!("CREATE DATABASE \"{name}\" TEMPLATE template0"))
        .await?;
    let result = async {
        let client = connect(&with_database(server_url, &name)).await?;
        client.batch_execute(SETUP).await?;
        client
            .batch_execute("CREATE TEMP TABLE groundwork_lint_rewrites (relid oid, reason int)")
            .await?;
        let mut tracer = Tracer {
            client: &client,
            findings: Vec::new(),
            locks: Vec::new(),
            notes: Vec::new(),
            options,
        };
        let mut completed = true;
        for migration in migrations {
            if !tracer.migration(migration).await? {
                completed = false;
                break;
            }
        }
        if completed && let Some((release, files)) = &tracer.options.previous {
            let findings = check_compat(&client, files, release).await?;
            tracer.findings.extend(findings);
        }
        Ok::<_, LintError>(Traced {
            findings: tracer.findings,
            locks: tracer.locks,
            notes: tracer.notes,
        })
    }
    .await;
    let dropped = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await;
    let result = result?;
    dropped?;
    Ok(result)
}

struct Tracer<'c> {
    client: &'c Client,
    findings: Vec<Finding>,
    locks: Vec<LockRecord>,
    notes: Vec<String>,
    options: TraceOptions,
}

impl Tracer<'_> {
    /// Traces one migration, checks its down file and fills its new tables; false when
    /// it failed and the later ones cannot run.
    async fn migration(&mut self, migration: &Migration) -> Result<bool, LintError> {
        let existing = self.existing().await?;
        let before = if self.options.check_down && migration.down.is_some() {
            Some(catalog(self.client).await?)
        } else {
            None
        };
        if !self.traced_up(&migration.up, &existing).await? {
            return Ok(false);
        }
        if let (Some(before), Some(down)) = (before, &migration.down) {
            self.check_down(migration, down, &before).await?;
        }
        let filled =
            fill_tables(self.client, &Rows::every(self.options.rows), &[OWN_SCHEMA]).await?;
        for table in filled {
            if let Some(why) = table.failure
                && table.rows == 0
                && !self
                    .notes
                    .iter()
                    .any(|n| n.starts_with(&format!("{} ", table.table)))
            {
                // The row PostgreSQL quotes says nothing a reader needs here.
                let why = why.split(" (Failing row").next().unwrap_or_default();
                self.notes.push(format!(
                    "{} stayed empty after {}, so later migrations meet it empty: {why}",
                    table.table,
                    migration.up.path.display()
                ));
            }
        }
        Ok(true)
    }

    async fn existing(&self) -> Result<HashMap<u32, Existing>, LintError> {
        let rows = self
            .client
            .query(
                "SELECT c.oid, format('%I.%I', n.nspname, c.relname), c.relkind::text,
                        greatest(c.reltuples, 0)::bigint
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.relkind IN ('r', 'p', 'm', 'i')
                   AND n.nspname NOT IN ('pg_catalog', 'information_schema', $1)
                   AND n.nspname NOT LIKE 'pg\\_%'",
                &[&OWN_SCHEMA],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    Existing {
                        name: r.get(1),
                        kind: r.get(2),
                        rows: r.get(3),
                    },
                )
            })
            .collect())
    }

    /// Runs the up file with the trace; false if a statement failed.
    async fn traced_up(
        &mut self,
        script: &Script,
        existing: &HashMap<u32, Existing>,
    ) -> Result<bool, LintError> {
        let transactional = !script.no_transaction();
        let client = self.client;
        if transactional {
            client.batch_execute("BEGIN").await?;
        }
        // Per relation: the strongest lock so far and the record for it.
        let mut strongest: BTreeMap<u32, LockRecord> = BTreeMap::new();
        for statement in split_statements(&script.sql) {
            let location = Location {
                file: script.path.clone(),
                line: line_of(&script.sql, statement.offset),
            };
            let allowed = |rule: &str| allowed_at(&script.sql, statement.offset, rule);
            let stats_before = if transactional {
                xact_stats(client).await?
            } else {
                HashMap::new()
            };
            client
                .batch_execute("DELETE FROM pg_temp.groundwork_lint_rewrites")
                .await?;
            // A relation rewritten by an earlier statement keeps its new storage: compare
            // with the storage before this statement.
            let filenodes_before = filenodes(client, existing).await?;
            let started = Instant::now();
            if let Err(error) = client.batch_execute(statement.sql).await {
                if transactional {
                    client.batch_execute("ROLLBACK").await?;
                }
                if !allowed("statement-failed") {
                    self.findings.push(location.finding(
                        Severity::Error,
                        "statement-failed",
                        format!(
                            "the statement fails on tables with {} rows each: {}",
                            self.options.rows,
                            describe(&error)
                        ),
                        "make the migration work on populated tables (backfill first, or add \
                         what it needs in an earlier migration); the trace stops here",
                        Origin::Trace,
                    ));
                }
                return Ok(false);
            }
            let elapsed = started.elapsed();
            let (stats_after, held) = if transactional {
                (xact_stats(client).await?, held_locks(client).await?)
            } else {
                (HashMap::new(), HashMap::new())
            };
            let rewrites = rewrites(client).await?;
            let filenodes = filenodes(client, existing).await?;
            // New storage that holds the old rows: a TRUNCATE gets new, empty storage.
            let mut rewritten: Vec<&Existing> = Vec::new();
            for (oid, e) in existing {
                if filenodes.get(oid) != filenodes_before.get(oid)
                    && (e.kind == "i" || e.rows > 0 && has_rows(client, &e.name).await?)
                {
                    rewritten.push(e);
                }
            }
            let rewritten_tables: Vec<&&Existing> =
                rewritten.iter().filter(|e| e.kind != "i").collect();
            if !rewritten_tables.is_empty() && !allowed("table-rewrite") {
                let indexes = rewritten.len() - rewritten_tables.len();
                let names: Vec<String> = rewritten_tables
                    .iter()
                    .map(|e| {
                        let reason = existing
                            .iter()
                            .find(|(_, x)| x.name == e.name)
                            .and_then(|(oid, _)| rewrites.get(oid))
                            .map(|r| format!(" ({})", rewrite_reason(*r)))
                            .unwrap_or_default();
                        format!("{} ({} rows){reason}", e.name, e.rows)
                    })
                    .collect();
                self.findings.push(location.finding(
                    Severity::Error,
                    "table-rewrite",
                    format!(
                        "rewrote {} and {indexes} index(es) under ACCESS EXCLUSIVE in {} ms",
                        names.join(", "),
                        elapsed.as_millis()
                    ),
                    "avoid the rewrite: add a new column and backfill in batches, use a \
                     constant default, or a binary-compatible type change",
                    Origin::Trace,
                ));
            }
            if !transactional {
                continue;
            }
            for (oid, e) in existing {
                let Some(mode) = held.get(oid) else {
                    continue;
                };
                let (read_before, written_before) =
                    stats_before.get(oid).copied().unwrap_or_default();
                let (read_after, written_after) = stats_after.get(oid).copied().unwrap_or_default();
                let read = read_after - read_before;
                let written = written_after - written_before;
                let rewrote = rewritten.iter().any(|r| r.name == e.name);
                let record = strongest.entry(*oid).or_insert_with(|| LockRecord {
                    file: script.path.clone(),
                    line: location.line,
                    relation: e.name.clone(),
                    mode: mode.clone(),
                    rows_read: 0,
                    rows_written: 0,
                    rewritten: false,
                });
                if strength(mode) > strength(&record.mode) {
                    record.mode = mode.clone();
                    record.line = location.line;
                }
                record.rows_read += read;
                record.rows_written += written;
                record.rewritten |= rewrote;
                let whole = (e.rows / 2).max(1);
                if e.kind != "i"
                    && strength(mode) >= BLOCKS_WRITES
                    && read >= whole
                    && !rewrote
                    && !allowed("lock-held-while-scanning")
                {
                    self.findings.push(location.finding(
                        Severity::Error,
                        "lock-held-while-scanning",
                        format!(
                            "read {read} rows of {} while holding {mode}, which blocks its \
                             writers until the migration commits ({} ms here)",
                            e.name,
                            elapsed.as_millis()
                        ),
                        "split the work: add constraints NOT VALID and VALIDATE them in a \
                         later migration, build indexes CONCURRENTLY, backfill in batches \
                         outside the migration",
                        Origin::Trace,
                    ));
                }
                if e.kind != "i" && written >= whole && !allowed("lock-held-while-scanning") {
                    self.findings.push(location.finding(
                        Severity::Warning,
                        "lock-held-while-scanning",
                        format!(
                            "wrote {written} rows of {} in the migration's transaction: they \
                             stay locked until it commits",
                            e.name
                        ),
                        "backfill in batches of a few thousand rows, each in its own \
                         transaction, outside the schema migration",
                        Origin::Trace,
                    ));
                }
            }
        }
        if transactional {
            client.batch_execute("COMMIT").await?;
        }
        self.locks.extend(strongest.into_values().filter(|r| {
            existing
                .values()
                .any(|e| e.name == r.relation && e.kind != "i")
        }));
        Ok(true)
    }

    async fn check_down(
        &mut self,
        migration: &Migration,
        down: &Script,
        before: &[String],
    ) -> Result<(), LintError> {
        let location = Location {
            file: down.path.clone(),
            line: 1,
        };
        let client = self.client;
        let after_up = catalog(client).await?;
        let ran = run_plain(client, down).await;
        let problem = match ran {
            Err(error) => Some(format!("the down file fails: {error}")),
            Ok(()) => {
                let after_down = catalog(client).await?;
                let missing: Vec<&String> =
                    before.iter().filter(|l| !after_down.contains(l)).collect();
                let extra: Vec<&String> =
                    after_down.iter().filter(|l| !before.contains(l)).collect();
                (!missing.is_empty() || !extra.is_empty()).then(|| {
                    let mut text = String::from("the down file does not restore the catalog");
                    if !missing.is_empty() {
                        text.push_str(&format!("; missing: {}", first(&missing)));
                    }
                    if !extra.is_empty() {
                        text.push_str(&format!("; left over: {}", first(&extra)));
                    }
                    text
                })
            }
        };
        if let Some(problem) = problem
            && !down
                .sql
                .contains("groundwork:lint allow down-restores-catalog because ")
        {
            self.findings.push(location.finding(
                Severity::Error,
                "down-restores-catalog",
                problem,
                format!(
                    "make {} undo exactly what the up file does",
                    down.path.display()
                ),
                Origin::Trace,
            ));
        }
        // Back to the migrated state, by the up file again (or left as it is, if the
        // down file failed half-way in its transaction).
        if catalog(client).await? != after_up {
            run_plain(client, &migration.up).await.map_err(|message| {
                groundwork_migrate::MigrateError::Failed {
                    file: migration.up.path.clone(),
                    line: 1,
                    code: "-----".into(),
                    message: format!("applying again after its down file: {message}"),
                    detail: None,
                }
            })?;
        }
        Ok(())
    }
}

fn first(lines: &[&String]) -> String {
    let shown: Vec<&str> = lines.iter().take(3).map(|l| l.as_str()).collect();
    let more = lines.len().saturating_sub(3);
    if more > 0 {
        format!("{} (and {more} more)", shown.join("; "))
    } else {
        shown.join("; ")
    }
}

/// Runs a script as the runner does, without bookkeeping.
async fn run_plain(client: &Client, script: &Script) -> Result<(), String> {
    let transactional = !script.no_transaction();
    if transactional {
        client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| describe(&e))?;
    }
    for statement in split_statements(&script.sql) {
        if let Err(error) = client.batch_execute(statement.sql).await {
            if transactional {
                client
                    .batch_execute("ROLLBACK")
                    .await
                    .map_err(|e| describe(&e))?;
            }
            return Err(format!(
                "line {}: {}",
                line_of(&script.sql, statement.offset),
                describe(&error)
            ));
        }
    }
    if transactional {
        client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| describe(&e))?;
    }
    Ok(())
}

async fn has_rows(client: &Client, table: &str) -> Result<bool, LintError> {
    Ok(client
        .query_one(&format!("SELECT EXISTS (SELECT FROM {table})"), &[])
        .await?
        .get(0))
}

/// Per table: rows read (sequentially and through indexes) and rows written in this
/// transaction so far.
async fn xact_stats(client: &Client) -> Result<HashMap<u32, (i64, i64)>, LintError> {
    Ok(client
        .query(
            "SELECT relid, seq_tup_read + coalesce(idx_tup_fetch, 0),
                    n_tup_ins + n_tup_upd + n_tup_del
             FROM pg_stat_xact_user_tables",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect())
}

/// The strongest relation lock this session holds, per relation.
async fn held_locks(client: &Client) -> Result<HashMap<u32, String>, LintError> {
    let mut held: HashMap<u32, String> = HashMap::new();
    for row in client
        .query(
            "SELECT relation, mode FROM pg_locks
             WHERE pid = pg_backend_pid() AND locktype = 'relation' AND granted
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .await?
    {
        let oid: u32 = row.get(0);
        let mode: String = row.get(1);
        let entry = held.entry(oid).or_default();
        if strength(&mode) > strength(entry) {
            *entry = mode;
        }
    }
    Ok(held)
}

async fn filenodes(
    client: &Client,
    existing: &HashMap<u32, Existing>,
) -> Result<HashMap<u32, u32>, LintError> {
    let oids: Vec<u32> = existing.keys().copied().collect();
    Ok(client
        .query(
            "SELECT oid, relfilenode FROM pg_class WHERE oid = ANY($1)",
            &[&oids],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

async fn rewrites(client: &Client) -> Result<HashMap<u32, i32>, LintError> {
    Ok(client
        .query(
            "SELECT relid, bit_or(reason) FROM pg_temp.groundwork_lint_rewrites GROUP BY relid",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// The reason bits of a `table_rewrite` event.
fn rewrite_reason(bits: i32) -> String {
    let mut reasons = Vec::new();
    if bits & 1 != 0 {
        reasons.push("persistence changed");
    }
    if bits & 2 != 0 {
        reasons.push("a default that must be stored per row");
    }
    if bits & 4 != 0 {
        reasons.push("a column's type or storage changed");
    }
    if bits & 8 != 0 {
        reasons.push("access method changed");
    }
    reasons.join(", ")
}
