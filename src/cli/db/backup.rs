//! `db backup` and `db restore --verify`: a pg_dump of the application database with a
//! manifest, and the proof that it restores.
//!
//! A backup directory holds `database.dump` (pg_dump's custom format) and
//! `manifest.json`: the dump's SHA-256 and size, the newest applied migration, the
//! schema's SHA-256 (pg_dump's schema-only output) and every table's row count. The
//! counts and the dump read the same snapshot (`pg_export_snapshot`), so they agree
//! however busy the database is.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};

use groundwork_codegen::schema::PgDump;
use groundwork_provision::Settings;
use groundwork_support::connect::{connect, with_database, without_password};
use groundwork_support::hash::sha256_hex;
use serde_json::json;
use tokio_postgres::Client;

use super::inspect::{admin, database_name, quote_ident};
use crate::cli::{Source, server};

/// The dump's file name in a backup directory.
const DUMP_FILE: &str = "database.dump";
/// The manifest's file name in a backup directory.
const MANIFEST_FILE: &str = "manifest.json";
/// The manifest's format.
const MANIFEST_FORMAT: u64 = 1;

/// Every table of the database but PostgreSQL's own (and partitions' parents, whose
/// rows their partitions count).
const TABLES: &str = "SELECT format('%I.%I', n.nspname, c.relname)
                      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE c.relkind = 'r'
                        AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                        AND n.nspname NOT LIKE 'pg\\_toast%'
                      ORDER BY 1";

type Outcome = Result<ExitCode, Box<dyn std::error::Error>>;

/// Row counts of every table, as `client`'s current snapshot sees them.
async fn row_counts(client: &Client) -> Result<BTreeMap<String, i64>, Box<dyn std::error::Error>> {
    let mut counts = BTreeMap::new();
    for row in client.query(TABLES, &[]).await? {
        let table: String = row.get(0);
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await?
            .get(0);
        counts.insert(table, n);
    }
    Ok(counts)
}

/// The newest applied migration and how many are applied (none: not migrated).
async fn migration_version(client: &Client) -> Result<(Option<i64>, i64), tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT max(version), count(*) FROM public.schema_migrations",
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// SHA-256 of pg_dump's schema-only output, without the `\restrict` and `\unrestrict`
/// lines recent pg_dump releases write with a random key each run.
fn schema_sha256(schema: &str) -> String {
    let lines: Vec<&str> = schema
        .lines()
        .filter(|l| !l.starts_with("\\restrict ") && !l.starts_with("\\unrestrict "))
        .collect();
    sha256_hex([lines.join("\n").as_bytes()])
}

/// SHA-256 of a file, as lowercase hex, and its size.
fn file_sha256(path: &Path) -> Result<(String, u64), Box<dyn std::error::Error>> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    Ok((sha256_hex([&bytes]), bytes.len() as u64))
}

/// Runs a PostgreSQL client program against `url`, the password in the environment.
async fn run_program(
    program: &Path,
    args: &[String],
    url: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let (url, password) = without_password(url);
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .arg(format!("--dbname={url}"))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    let out = command
        .output()
        .await
        .map_err(|e| format!("running {}: {e}", program.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}): {}",
            program.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(())
}

/// `db backup [--out DIR]` (default: `backups/<database>-<UTC time>`).
pub(super) async fn backup(settings: &Settings, out: Option<&Path>) -> Outcome {
    let postgres = server(settings).await?;
    let url = postgres.url();
    let pg_dump = PgDump::for_server(&postgres).await?;
    let client = connect(url)
        .await
        .map_err(|e| format!("connecting to {url}: {e}"))?;
    let out = match out {
        Some(out) => out.to_path_buf(),
        None => {
            let name: String = client
                .query_one(
                    "SELECT current_database() || '-'
                            || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD\"T\"HH24MISS\"Z\"')",
                    &[],
                )
                .await?
                .get(0);
            Path::new("backups").join(name)
        }
    };
    let out = out.as_path();
    std::fs::create_dir_all(out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    let dump = out.join(DUMP_FILE);
    if dump.exists() || out.join(MANIFEST_FILE).exists() {
        return Err(format!(
            "{} already holds a backup: choose another --out directory",
            out.display()
        )
        .into());
    }

    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let snapshot: String = client
        .query_one("SELECT pg_export_snapshot()", &[])
        .await?
        .get(0);
    let (version, applied) = migration_version(&client).await.map_err(|e| {
        format!("the database is not migrated: run `groundwork migrate up` first ({e})")
    })?;
    let counts = row_counts(&client).await?;
    let meta = client
        .query_one(
            "SELECT current_database()::text, current_setting('server_version'), now()::text",
            &[],
        )
        .await?;
    let (database, server_version, taken_at): (String, String, String) =
        (meta.get(0), meta.get(1), meta.get(2));
    run_program(
        pg_dump.path(),
        &[
            "--format=custom".to_owned(),
            format!("--snapshot={snapshot}"),
            format!("--file={}", dump.display()),
        ],
        url,
    )
    .await?;
    client.batch_execute("COMMIT").await?;
    let schema = pg_dump.dump_schema(url).await?;

    let (sha256, bytes) = file_sha256(&dump)?;
    let manifest = json!({
        "format": MANIFEST_FORMAT,
        "database": database,
        "server_version": server_version,
        "taken_at": taken_at,
        "migration_version": version,
        "migrations_applied": applied,
        "schema_sha256": schema_sha256(&schema),
        "files": { DUMP_FILE: { "sha256": sha256, "bytes": bytes } },
        "row_counts": counts,
    });
    let text = serde_json::to_string_pretty(&manifest)? + "\n";
    std::fs::write(out.join(MANIFEST_FILE), text)
        .map_err(|e| format!("writing {}: {e}", out.join(MANIFEST_FILE).display()))?;
    say!(
        "backed up {database} (migration {}, {} tables, {} rows) to {}: {DUMP_FILE} ({bytes} bytes, sha256 {sha256}), {MANIFEST_FILE}",
        version.map_or_else(|| "none".to_owned(), |v| v.to_string()),
        counts.len(),
        counts.values().sum::<i64>(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// A backup directory's manifest, read and its files checked against it.
struct Manifest {
    value: serde_json::Value,
    dump: PathBuf,
}

fn read_manifest(dir: &Path) -> Result<Manifest, Box<dyn std::error::Error>> {
    let path = dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{} is not a backup: reading {}: {e}",
            dir.display(),
            path.display()
        )
    })?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a valid manifest: {e}", path.display()))?;
    if value["format"].as_u64() != Some(MANIFEST_FORMAT) {
        return Err(format!(
            "{} has format {}, not {MANIFEST_FORMAT}",
            path.display(),
            value["format"]
        )
        .into());
    }
    let files = value["files"]
        .as_object()
        .ok_or_else(|| format!("{} lists no files", path.display()))?;
    for (name, expected) in files {
        let file = dir.join(name);
        let (sha256, bytes) = file_sha256(&file)?;
        let (want_sha, want_bytes) = (expected["sha256"].as_str(), expected["bytes"].as_u64());
        if want_sha != Some(sha256.as_str()) || want_bytes != Some(bytes) {
            return Err(format!(
                "{} is corrupted: its SHA-256 is {sha256} ({bytes} bytes) but the manifest says {} ({} bytes); refusing to restore it",
                file.display(),
                want_sha.unwrap_or("nothing"),
                want_bytes.map_or_else(|| "?".to_owned(), |b| b.to_string())
            )
            .into());
        }
    }
    Ok(Manifest {
        value,
        dump: dir.join(DUMP_FILE),
    })
}

/// `db restore --verify DIR`: checks the files against the manifest, restores the dump
/// into a scratch database, verifies its migrations against `source`, compares its
/// schema and row counts with the manifest's, and drops the scratch database.
pub(super) async fn verify(settings: &Settings, dir: &Path, source: &Source) -> Outcome {
    let manifest = read_manifest(dir)?;
    let migrator = source.migrator()?;
    let postgres = server(settings).await?;
    let url = postgres.url();
    let pg_dump = PgDump::for_server(&postgres).await?;
    let pg_restore = pg_dump.path().with_file_name("pg_restore");
    let admin = admin(url).await?;
    let scratch = format!(
        "{}_verify_{}",
        database_name(url)?.chars().take(40).collect::<String>(),
        std::process::id()
    );
    admin
        .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&scratch)))
        .await
        .map_err(|e| format!("creating the scratch database {scratch}: {e}"))?;
    let scratch_url = with_database(url, &scratch);
    let result = verify_in(&manifest, &migrator, &pg_dump, &pg_restore, &scratch_url).await;
    admin
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&scratch)
        ))
        .await
        .map_err(|e| format!("dropping the scratch database {scratch}: {e}"))?;
    let problems = result?;
    if problems.is_empty() {
        say!(
            "backup {} verified: checksums match, restored into a scratch database with migrations verified (newest {}), the same schema and row counts in {} tables",
            dir.display(),
            manifest.value["migration_version"],
            manifest.value["row_counts"]
                .as_object()
                .map_or(0, |m| m.len())
        );
        Ok(ExitCode::SUCCESS)
    } else {
        for problem in &problems {
            eprintln!("groundwork: backup {}: {problem}", dir.display());
        }
        Ok(ExitCode::FAILURE)
    }
}

/// The restore and its checks; the differences found.
async fn verify_in(
    manifest: &Manifest,
    migrator: &groundwork_migrate::Migrator,
    pg_dump: &PgDump,
    pg_restore: &Path,
    scratch_url: &str,
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    run_program(
        pg_restore,
        &[
            "--exit-on-error".to_owned(),
            manifest.dump.display().to_string(),
        ],
        scratch_url,
    )
    .await?;
    let client = connect(scratch_url).await?;
    let mut problems = Vec::new();
    if let Err(e) = migrator.verify(&client).await {
        problems.push(format!("migrate verify: {e}"));
    }
    let (version, _) = migration_version(&client).await?;
    if manifest.value["migration_version"].as_i64() != version {
        problems.push(format!(
            "migration version {version:?} restored, the manifest says {}",
            manifest.value["migration_version"]
        ));
    }
    let schema = pg_dump.dump_schema(scratch_url).await?;
    if manifest.value["schema_sha256"].as_str() != Some(schema_sha256(&schema).as_str()) {
        problems.push("the restored schema differs from the one backed up".to_owned());
    }
    let restored = row_counts(&client).await?;
    let expected: BTreeMap<String, i64> = manifest.value["row_counts"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_i64().unwrap_or(-1)))
                .collect()
        })
        .unwrap_or_default();
    for (table, n) in &expected {
        match restored.get(table) {
            Some(m) if m == n => {}
            Some(m) => problems.push(format!("{table}: {m} rows restored, {n} backed up")),
            None => problems.push(format!("{table}: missing after the restore")),
        }
    }
    for table in restored.keys().filter(|t| !expected.contains_key(*t)) {
        problems.push(format!("{table}: restored but not in the manifest"));
    }
    Ok(problems)
}
