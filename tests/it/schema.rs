//! The schema dump: the committed `schema/` is current, an edited function body is
//! named by `--check`, a dump is reproducible, complete and free of session noise.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use groundwork_codegen::schema::{DATABASE_FILE, PgDump, SchemaDump, SchemaError};
use groundwork_testing::{DEFAULT_MIGRATIONS, DbRole, TestDb};

use crate::files;
use crate::output::text;

fn project_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `groundwork schema dump <args>` in `dir`, on the test server.
fn schema_dump(dir: &Path, args: &[&str]) -> Output {
    let server = TestDb::server_url().unwrap();
    Command::new(env!("CARGO_BIN_EXE_groundwork"))
        .current_dir(dir)
        .args(["schema", "dump", "--database-url", &server])
        .args(args)
        .output()
        .unwrap()
}

/// Every file of `dir`, by name, with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect()
}

/// The committed dump was made with the migrations run as `postgres`, the superuser
/// of the servers groundwork starts; another superuser owns what they create.
async fn server_superuser_is_postgres() -> bool {
    let (client, connection) =
        tokio_postgres::connect(&TestDb::server_url().unwrap(), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    let user: String = client
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    if user != "postgres" {
        eprintln!("the test server's superuser is {user}, not postgres: not comparing owners");
    }
    user == "postgres"
}

#[tokio::test]
async fn the_committed_dump_is_current() {
    if !server_superuser_is_postgres().await {
        return;
    }
    let out = schema_dump(project_root(), &["--check"]);
    assert!(
        out.status.success(),
        "{}\nrun `cargo run -- schema dump` and commit schema/",
        text(&out)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "schema dump is current\n"
    );
}

#[tokio::test]
async fn check_names_a_function_whose_body_was_edited() {
    if !server_superuser_is_postgres().await {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for sub in ["migrations", "schema"] {
        files::copy_tree(&project_root().join(sub), &dir.path().join(sub));
    }
    let file = std::fs::read_dir(dir.path().join("migrations"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("_forms.up.sql"))
        .expect("a forms migration");
    let sql = std::fs::read_to_string(&file).unwrap();
    let function = sql
        .find("CREATE FUNCTION forms.json_schema_valid(")
        .expect("the forms migration creates forms.json_schema_valid");
    let body = function + sql[function..].find("BEGIN\n").unwrap() + "BEGIN\n".len();
    let edited = format!("{}    -- edited by hand\n{}", &sql[..body], &sql[body..]);
    std::fs::write(&file, edited).unwrap();

    let before = files(&dir.path().join("schema"));
    let out = schema_dump(dir.path(), &["--check"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let named: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("schema/"))
        .collect();
    assert_eq!(
        named,
        ["schema/forms.sql: changed: function forms.json_schema_valid(jsonb, jsonb, boolean)"],
        "{stderr}"
    );
    assert!(
        stderr.contains("run `cargo run -- schema dump` and commit schema/"),
        "{stderr}"
    );
    assert_eq!(
        files(&dir.path().join("schema")),
        before,
        "--check wrote files"
    );

    // Writing the dump makes the check pass, and changes only that function.
    let out = schema_dump(dir.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    let forms = std::fs::read_to_string(dir.path().join("schema/forms.sql")).unwrap();
    assert!(forms.contains("BEGIN\n    -- edited by hand\n"), "{forms}");
    let out = schema_dump(dir.path(), &["--check"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[tokio::test]
async fn check_names_missing_and_extra_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = schema_dump(dir.path(), &["--source", DEFAULT_MIGRATIONS]);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::remove_file(dir.path().join("schema/messaging.sql")).unwrap();
    std::fs::write(dir.path().join("schema/retired.sql"), "-- gone\n").unwrap();
    let out = schema_dump(dir.path(), &["--source", DEFAULT_MIGRATIONS, "--check"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let named: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("schema/"))
        .collect();
    assert_eq!(
        named,
        [
            "schema/messaging.sql: missing",
            "schema/retired.sql: extra, not part of the dump"
        ],
        "{stderr}"
    );
}

#[tokio::test]
async fn two_dumps_are_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    // Each run migrates a scratch database of its own.
    let runs: Vec<PathBuf> = ["first", "second"]
        .iter()
        .map(|out| {
            let run = schema_dump(dir.path(), &["--source", DEFAULT_MIGRATIONS, "--out", out]);
            assert!(run.status.success(), "{}", text(&run));
            dir.path().join(out)
        })
        .collect();
    let first = files(&runs[0]);
    assert!(first.contains_key(DATABASE_FILE), "{:?}", first.keys());
    assert!(first.contains_key("identity.sql"), "{:?}", first.keys());
    assert_eq!(first, files(&runs[1]));
}

#[tokio::test]
async fn the_dump_holds_every_function_and_no_session_settings() {
    let db = TestDb::new().await;
    let client = db.client(DbRole::Owner).await;
    // Types named as pg_dump names them, qualified unless in pg_catalog.
    client.batch_execute("SET search_path = ''").await.unwrap();
    let functions = client
        .query(
            "SELECT n.nspname::text,
                    format('%s(%s)', quote_ident(p.proname), (
                        SELECT coalesce(string_agg(format_type(a.type, NULL), ', ' ORDER BY a.i), '')
                        FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS a(type, i))),
                    p.prosrc
             FROM pg_catalog.pg_proc p
             JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname !~ '^pg_(toast|temp)'
               AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                               WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                                 AND d.objid = p.oid AND d.deptype = 'e')",
            &[],
        )
        .await
        .unwrap();
    assert!(functions.len() > 50, "{} functions", functions.len());
    let schemas: Vec<String> = client
        .query(
            "SELECT nspname::text FROM pg_catalog.pg_namespace
             WHERE nspname NOT IN ('pg_catalog', 'information_schema')
               AND nspname !~ '^pg_(toast|temp)' ORDER BY nspname",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let major: i32 = client
        .query_one(
            "SELECT current_setting('server_version_num')::int / 10000",
            &[],
        )
        .await
        .unwrap()
        .get(0);

    let pg_dump = PgDump::find(major.try_into().unwrap(), None).unwrap();
    let dump = SchemaDump::generate_with(
        Path::new(DEFAULT_MIGRATIONS),
        &TestDb::server_url().unwrap(),
        &pg_dump,
    )
    .await
    .unwrap();

    let mut dumped: Vec<&str> = dump.files().filter_map(|file| file.schema()).collect();
    dumped.sort_unstable();
    assert_eq!(dumped, schemas, "a file per schema");
    for row in &functions {
        let (schema, signature, body): (String, String, String) =
            (row.get(0), row.get(1), row.get(2));
        let label = format!("function {schema}.{signature}");
        let file = dump.file(&format!("{schema}.sql")).unwrap();
        let object = file
            .objects()
            .iter()
            .find(|object| object.label() == label)
            .unwrap_or_else(|| panic!("{label} is not in {}", file.name()));
        assert!(
            object.sql().contains(&body),
            "{label}: the body is not there in full"
        );
    }
    for file in dump.files() {
        let text = file.render();
        assert!(
            text.starts_with("-- Generated by `groundwork schema dump`"),
            "{}",
            file.name()
        );
        assert!(
            !text.contains("\n\n\n"),
            "{}: a run of blank lines",
            file.name()
        );
        for line in text.lines() {
            assert!(
                !line.starts_with("SET ")
                    && !line.starts_with("SELECT pg_catalog.set_config(")
                    && !line.contains("Dumped from")
                    && !line.contains("Dumped by")
                    && !line.starts_with('\\'),
                "{}: {line}",
                file.name()
            );
        }
    }
    assert!(
        dump.files()
            .flat_map(|file| file.objects())
            .all(|object| !object.label().contains("schema_migrations")),
        "the bookkeeping table is left out"
    );
}

#[test]
fn no_pg_dump_for_the_server_is_a_clear_error() {
    let err = PgDump::find(999, None).unwrap_err();
    assert!(matches!(
        err,
        SchemaError::PgDumpNotFound {
            server_major: 999,
            ..
        }
    ));
    assert!(
        err.to_string()
            .starts_with("no pg_dump for PostgreSQL 999 found"),
        "{err}"
    );
}
