//! The `groundwork` binary end to end, on a test database and on the embedded
//! cluster.

use std::path::Path;
use std::process::{Command, Output};

use groundwork_testing::{DEFAULT_MIGRATIONS, DbRole, TestDb};

use crate::files;

fn groundwork(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_groundwork"));
    cmd.current_dir(dir).args(args).env_remove("GROUNDWORK_ENV");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn migrate_commands_against_a_database_url() {
    let db = TestDb::builder().empty().build().await;
    let dir = tempfile::tempdir().unwrap();
    let url = db.url(DbRole::Owner);
    let source = ["--source", DEFAULT_MIGRATIONS];
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = args.to_vec();
        all.extend(source);
        all.extend(["--database-url", url]);
        groundwork(dir.path(), &all, env)
    };

    let out = run(&["migrate", "up", "--dry-run"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("would be applied: 20261201000000 foundation"));

    let out = run(&["migrate", "up"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&["migrate", "status"], &[]);
    assert!(text(&out).contains("foundation"), "{}", text(&out));
    assert!(!text(&out).contains("pending"), "{}", text(&out));
    assert!(run(&["migrate", "verify"], &[]).status.success());

    let out = run(
        &["migrate", "down", "--all"],
        &[("GROUNDWORK_ENV", "production")],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("refusing to revert migrations with GROUNDWORK_ENV=production"));
    let out = run(
        &["migrate", "down", "--all", "--allow-production"],
        &[("GROUNDWORK_ENV", "production")],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&["migrate", "status"], &[]);
    assert!(text(&out).contains("pending"), "{}", text(&out));
}

#[tokio::test]
async fn verify_exits_non_zero_on_drift() {
    let db = TestDb::builder().empty().build().await;
    let dir = tempfile::tempdir().unwrap();
    let migrations = dir.path().join("migrations");
    std::fs::create_dir(&migrations).unwrap();
    std::fs::write(migrations.join("1_a.up.sql"), "CREATE TABLE a (id int);").unwrap();
    let args = ["--database-url", db.url(DbRole::Owner)];
    let up = groundwork(dir.path(), &[&["migrate", "up"][..], &args].concat(), &[]);
    assert!(up.status.success(), "{}", text(&up));
    std::fs::write(migrations.join("1_a.up.sql"), "CREATE TABLE a (id bigint);").unwrap();
    let out = groundwork(
        dir.path(),
        &[&["migrate", "verify"][..], &args].concat(),
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("drift: migration 1 (a) was applied but its file changed"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_embedded_cluster_is_created_reused_and_stopped() {
    if std::env::var_os("DATABASE_URL").is_some()
        || std::env::var("GROUNDWORK_POSTGRES").is_ok_and(|v| v == "container")
    {
        return; // the embedded cluster is the local lane's
    }
    let dir = tempfile::tempdir().unwrap();
    // The server runs as an unprivileged user when we are root: let it in.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let source = ["--source", DEFAULT_MIGRATIONS];
    let run = |args: &[&str]| groundwork(dir.path(), &[args, &source[..]].concat(), &[]);
    let out = run(&["migrate", "up"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(dir.path().join(".groundwork/data/PG_VERSION").exists());
    // Started for that command only: stopped again.
    let status = groundwork(dir.path(), &["db", "status"], &[]);
    assert_eq!(status.status.code(), Some(3), "{}", text(&status));

    let start = groundwork(dir.path(), &["db", "start"], &[]);
    assert!(start.status.success(), "{}", text(&start));
    let out = run(&["migrate", "status"]);
    assert!(text(&out).contains("applied"), "{}", text(&out));
    // Started with `db start`: still running after another command.
    let status = groundwork(dir.path(), &["db", "status"], &[]);
    assert!(status.status.success(), "{}", text(&status));
    let url = groundwork(dir.path(), &["db", "url"], &[]);
    assert!(text(&url).starts_with("postgres://postgres@127.0.0.1:"));
    let stop = groundwork(dir.path(), &["db", "stop"], &[]);
    assert!(text(&stop).starts_with("stopped"), "{}", text(&stop));
}

/// As root, a project in a directory the server's user cannot reach (a 0700 home)
/// gets its cluster where that user can, and is told where.
#[test]
fn a_project_the_server_user_cannot_reach_keeps_its_cluster_elsewhere() {
    let as_root = std::fs::metadata("/proc/self").is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    if !as_root
        || std::env::var_os("DATABASE_URL").is_some()
        || std::env::var("GROUNDWORK_POSTGRES").is_ok_and(|v| v == "container")
    {
        return; // only root relocates, and the embedded cluster is the local lane's
    }
    let private = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        private.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let project = private.path().join("project");
    std::fs::create_dir(&project).unwrap();
    let source = ["--source", DEFAULT_MIGRATIONS];
    let up = groundwork(&project, &[&["migrate", "up"], &source[..]].concat(), &[]);
    assert!(up.status.success(), "{}", text(&up));
    let said = text(&up);
    let relocated = said
        .split_whitespace()
        .find(|w| w.starts_with("/var/lib/groundwork/"))
        .unwrap_or_else(|| panic!("the first run says where: {said}"))
        .to_owned();
    assert!(Path::new(&relocated).join("data/PG_VERSION").is_file());
    assert!(!project.join(".groundwork").exists());
    let status = groundwork(&project, &["db", "status"], &[]);
    assert!(text(&status).contains(&relocated), "{}", text(&status));
    let start = groundwork(&project, &["db", "start"], &[]);
    assert!(start.status.success(), "{}", text(&start));
    let stop = groundwork(&project, &["db", "stop"], &[]);
    assert!(text(&stop).starts_with("stopped"), "{}", text(&stop));
    std::fs::remove_dir_all(&relocated).unwrap();
}

#[tokio::test]
async fn codegen_check_fails_on_stale_code_and_codegen_fixes_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    for sub in ["migrations", "queries", "crates/groundwork/src/generated"] {
        files::copy_tree(&root.join(sub), &dir.path().join(sub));
    }
    let server = TestDb::server_url().unwrap();
    let env = [("GROUNDWORK_CODEGEN_URL", server.as_str())];
    let check = groundwork(dir.path(), &["codegen", "--check"], &env);
    assert!(check.status.success(), "{}", text(&check));
    assert!(text(&check).contains("generated code is current"));

    let users = dir.path().join("queries/identity/users.sql");
    let sql = std::fs::read_to_string(&users).unwrap();
    std::fs::write(
        &users,
        format!("{sql}\n--! user_count\nSELECT count(*) FROM identity.users;\n"),
    )
    .unwrap();
    let check = groundwork(dir.path(), &["codegen", "--check"], &env);
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
    assert!(text(&check).contains("stale:"), "{}", text(&check));

    let generate = groundwork(dir.path(), &["codegen"], &env);
    assert!(generate.status.success(), "{}", text(&generate));
    let code = std::fs::read_to_string(
        dir.path()
            .join("crates/groundwork/src/generated/queries/identity/users.rs"),
    )
    .unwrap();
    assert!(code.contains("pub fn user_count()"));
    let check = groundwork(dir.path(), &["codegen", "--check"], &env);
    assert!(check.status.success(), "{}", text(&check));
}

#[tokio::test]
async fn db_seed_loads_a_form_with_submissions_once() {
    let db = TestDb::builder().empty().build().await;
    let dir = tempfile::tempdir().unwrap();
    let url = db.url(DbRole::Owner);
    let out = groundwork(dir.path(), &["db", "seed", "--database-url", url], &[]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("run `groundwork migrate up` first"),
        "{}",
        text(&out)
    );

    let out = groundwork(
        dir.path(),
        &[
            "migrate",
            "up",
            "--source",
            DEFAULT_MIGRATIONS,
            "--database-url",
            url,
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    for _ in 0..2 {
        let out = groundwork(dir.path(), &["db", "seed", "--database-url", url], &[]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains("1 form(s), 12 submission(s)"),
            "{}",
            text(&out)
        );
    }
    // Written the way the application writes: validated, in every status, with events.
    let statuses: i64 = db
        .pool(DbRole::Owner)
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT count(DISTINCT status) FROM forms.form_submissions",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(statuses, 5);
    assert!(db.count("eventstore.events").await >= 14);
}
