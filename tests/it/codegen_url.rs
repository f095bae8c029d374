//! Which server code generation and the schema dump use: `GROUNDWORK_CODEGEN_URL`,
//! else a throw-away one, never the application's `DATABASE_URL`; and the one-line
//! explanation for a URL whose role cannot create databases.
//!
//! The application's URL here is a TestDb login role in `groundwork_app`, with a
//! password and without CREATEDB: what a service developer exports for the service.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use groundwork_provision::{CODEGEN_URL, DATABASE_URL, Postgres, Settings};
use groundwork_testing::{DbRole, TestDb};

use crate::files;
use crate::output::text;

/// The variables that choose a server, removed from every child process so that
/// only what a test sets counts.
const SERVER_VARIABLES: [&str; 2] = [DATABASE_URL, CODEGEN_URL];

/// A copy of this project's migrations, queries and generated-code snapshot, with a
/// query added to `queries/identity/users.sql` so that the snapshot is stale.
fn stale_project() -> tempfile::TempDir {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    for sub in ["migrations", "queries", "crates/groundwork/src/generated"] {
        files::copy_tree(&root.join(sub), &dir.path().join(sub));
    }
    let users = dir.path().join("queries/identity/users.sql");
    let sql = std::fs::read_to_string(&users).unwrap();
    std::fs::write(
        &users,
        format!("{sql}\n--! user_count\nSELECT count(*) FROM identity.users;\n"),
    )
    .unwrap();
    dir
}

/// `command` with no server variable but `env`.
fn with_env(mut command: Command, env: &[(&str, &str)]) -> Output {
    for variable in SERVER_VARIABLES {
        command.env_remove(variable);
    }
    command.envs(env.iter().copied()).output().unwrap()
}

fn groundwork(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_groundwork"));
    command.current_dir(dir).args(args);
    with_env(command, env)
}

/// The `groundwork` crate's compiled build script, as cargo runs it: the newest
/// `target/<profile>/build/groundwork-<hash>/build-script-build` next to this test's
/// own `target/<profile>/deps/`.
fn build_script() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let build = exe.parent().unwrap().parent().unwrap().join("build");
    std::fs::read_dir(&build)
        .unwrap()
        .filter_map(|entry| {
            let dir = entry.ok()?.path();
            let hash = dir.file_name()?.to_str()?.strip_prefix("groundwork-")?;
            let script = dir.join("build-script-build");
            let compiled = std::fs::metadata(&script).ok()?.modified().ok()?;
            hash.chars()
                .all(|c| c.is_ascii_hexdigit())
                .then_some((compiled, script))
        })
        .max()
        .map(|(_, script)| script)
        .unwrap_or_else(|| panic!("no groundwork build script under {}", build.display()))
}

/// Runs the build script for the project in `project` as cargo would, into `out`.
fn run_build_script(project: &Path, out: &Path, env: &[(&str, &str)]) -> Output {
    let crate_dir = project.join("crates/groundwork");
    let mut command = Command::new(build_script());
    command
        .current_dir(&crate_dir)
        .env("CARGO_MANIFEST_DIR", &crate_dir)
        .env("OUT_DIR", out)
        .env_remove("GROUNDWORK_OFFLINE");
    with_env(command, env)
}

/// The explanation for `source`'s URL connecting as TestDb's application login role.
fn cannot_create_databases(source: &str) -> String {
    format!(
        "{source} connects as role \"groundwork_test_app\", which cannot create databases: \
         tests, code generation and the schema dump make databases of their own on that \
         server, so the role needs CREATEDB (and CREATEROLE, for the roles the migrations \
         create); grant them, or unset {source} to use a throw-away server"
    )
}

#[test]
fn code_generation_reads_its_own_variable_and_never_database_url() {
    let lookup = |name: &str| match name {
        "DATABASE_URL" => Some("postgres://app:secret@db.example/app".to_owned()),
        _ => None,
    };
    let codegen = Settings::from_lookup(CODEGEN_URL, lookup).unwrap();
    assert_eq!(codegen.database_url, None);
    assert_eq!(codegen.url_source.name(), "GROUNDWORK_CODEGEN_URL");
    let tests = Settings::from_lookup(DATABASE_URL, lookup).unwrap();
    assert_eq!(
        tests.database_url.as_deref(),
        Some("postgres://app:secret@db.example/app")
    );
}

#[tokio::test]
async fn codegen_ignores_an_application_database_url_and_names_what_it_changed() {
    let db = TestDb::new().await;
    let project = stale_project();
    let env = [(DATABASE_URL, db.url(DbRole::App))];
    let check = groundwork(project.path(), &["codegen", "--check"], &env);
    // Regenerated on a throw-away server and compared: stale, not refused.
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
    assert_eq!(
        String::from_utf8_lossy(&check.stderr),
        "stale: crates/groundwork/src/generated/queries/identity/users.rs (run `cargo run -- \
         codegen` and commit)\nstale: crates/groundwork/src/generated/codegen.lock (run \
         `cargo run -- codegen` and commit)\n"
    );

    let generate = groundwork(project.path(), &["codegen"], &env);
    assert!(generate.status.success(), "{}", text(&generate));
    let snapshot = project.path().join("crates/groundwork/src/generated");
    let rust_files = walk(&snapshot)
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .count();
    assert_eq!(
        String::from_utf8_lossy(&generate.stdout),
        format!(
            "{} files in crates/groundwork/src/generated (2 changed)\n  \
             queries/identity/users.rs\n  codegen.lock\n",
            rust_files + 1
        )
    );
}

/// Every file below `dir`.
fn walk(dir: &Path) -> impl Iterator<Item = PathBuf> {
    std::fs::read_dir(dir).unwrap().flat_map(|entry| {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path).collect::<Vec<_>>()
        } else {
            vec![path]
        }
    })
}

#[tokio::test]
async fn the_build_script_regenerates_without_an_application_database_url() {
    let db = TestDb::new().await;
    let project = stale_project();
    let out = project.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let build = run_build_script(project.path(), &out, &[(DATABASE_URL, db.url(DbRole::App))]);
    assert!(build.status.success(), "{}", text(&build));
    let stdout = String::from_utf8_lossy(&build.stdout);
    assert!(
        stdout.contains("cargo::rustc-cfg=groundwork_regenerated\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("cargo::rerun-if-env-changed=GROUNDWORK_CODEGEN_URL\n"),
        "{stdout}"
    );
    assert!(!stdout.contains("DATABASE_URL"), "{stdout}");
    let code = std::fs::read_to_string(out.join("generated/queries/identity/users.rs")).unwrap();
    assert!(code.contains("pub fn user_count()"));
    assert!(code.contains("/// Query `user_count` of `queries/identity/users.sql`:\n"));
}

#[tokio::test]
async fn a_codegen_url_whose_role_cannot_create_databases_is_explained_in_one_line() {
    let db = TestDb::new().await;
    let project = stale_project();
    let env = [(CODEGEN_URL, db.url(DbRole::App))];
    let expected = cannot_create_databases("GROUNDWORK_CODEGEN_URL");

    for args in [&["codegen", "--check"][..], &["schema", "dump", "--check"]] {
        let out = groundwork(project.path(), args, &env);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("error: {expected}\n"),
            "groundwork {args:?}"
        );
    }

    let out_dir = project.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let build = run_build_script(project.path(), &out_dir, &env);
    assert!(!build.status.success());
    // Nothing on stdout, which cargo would show above the error.
    assert_eq!(String::from_utf8_lossy(&build.stdout), "");
    assert_eq!(
        String::from_utf8_lossy(&build.stderr),
        format!(
            "error: the generated query code is out of date; changed since the snapshot was \
             made: queries/identity/users.sql. Regenerating needs PostgreSQL: {expected}\n"
        )
    );
}

/// The `--database-url` option overrides the variable, and is named as such.
#[tokio::test]
async fn a_database_url_option_whose_role_cannot_create_databases_is_named() {
    let db = TestDb::new().await;
    let project = stale_project();
    let out = groundwork(
        project.path(),
        &["codegen", "--check", "--database-url", db.url(DbRole::App)],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.starts_with(
            "error: --database-url connects as role \"groundwork_test_app\", which cannot \
             create databases:"
        ),
        "{said}"
    );
    assert!(
        said.ends_with("; grant them, or leave out --database-url to use a throw-away server\n"),
        "{said}"
    );
}

#[tokio::test]
async fn a_test_server_whose_role_cannot_create_databases_is_explained_in_one_line() {
    let db = TestDb::new().await;
    let settings = Settings::from_lookup(DATABASE_URL, |name| {
        (name == DATABASE_URL).then(|| db.url(DbRole::App).to_owned())
    })
    .unwrap();
    let err = Postgres::ephemeral(&settings).await.unwrap_err();
    assert_eq!(err.to_string(), cannot_create_databases("DATABASE_URL"));

    // And through TestDb itself, whose server is the process's: in a process of its own.
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args([
        "codegen_url::test_db_on_an_application_database_url",
        "--exact",
        "--ignored",
    ]);
    let out = with_env(command, &[(DATABASE_URL, db.url(DbRole::App))]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("1 passed"), "{}", text(&out));
}

#[tokio::test]
#[ignore = "run in a process of its own, with DATABASE_URL set, by the test above"]
async fn test_db_on_an_application_database_url() {
    let err = TestDb::builder().empty().try_build().await.err().unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "the test server: {}",
            cannot_create_databases("DATABASE_URL")
        )
    );
}
