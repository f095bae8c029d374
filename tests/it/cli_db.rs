//! `groundwork db ...` end to end, as a user runs it: on the embedded cluster of a
//! temporary project, and on a test server named by `--database-url`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use groundwork::tenant::Tenant;
use groundwork_support::connect::{connect, with_database};
use groundwork_testing::{DEFAULT_MIGRATIONS, DbRole, TestDb};
use tempfile::TempDir;
use uuid::Uuid;

use crate::files;
use crate::output::{stdout, text};

/// Runs the binary in `dir` with stdin closed (not a terminal), as a script would.
fn groundwork(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_groundwork"));
    cmd.current_dir(dir)
        .args(args)
        .env_remove("GROUNDWORK_ENV")
        .env_remove("DATABASE_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// How `db status` describes a database with every migration of `migrations/` applied.
fn fully_migrated() -> String {
    let mut versions: Vec<String> = std::fs::read_dir(DEFAULT_MIGRATIONS)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".up.sql")
                .and_then(|stem| stem.split('_').next().map(ToOwned::to_owned))
        })
        .collect();
    versions.sort();
    format!(
        "migrated ({} applied, the newest {})",
        versions.len(),
        versions.last().unwrap()
    )
}

/// Whether the embedded cluster can run here: the local lane's, not a `DATABASE_URL`
/// or container lane's.
fn embedded_lane() -> bool {
    std::env::var_os("DATABASE_URL").is_none()
        && !std::env::var("GROUNDWORK_POSTGRES").is_ok_and(|v| v == "container")
}

/// A project directory with a copy of `migrations/` and its cluster in a directory
/// the server's user can reach; the cluster is stopped when the project is dropped.
struct Project {
    dir: TempDir,
}

impl Project {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // The server runs as an unprivileged user when we are root: let it in.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        files::copy_tree(
            Path::new(DEFAULT_MIGRATIONS),
            &dir.path().join("migrations"),
        );
        Self { dir }
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let cluster = self.dir.path().join("cluster");
        let mut all = vec![("GROUNDWORK_DATA_DIR", cluster.to_str().unwrap())];
        all.extend(env);
        groundwork(self.dir.path(), args, &all)
    }

    /// Runs `args`, checks that it succeeded and returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        stdout(&out)
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.run(&["db", "stop"]);
    }
}

/// The `NAME=value` lines of `out`, which must be all it has.
fn assignments(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .map(|line| {
            let (name, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("not a NAME=value line: {line:?} in {out}"));
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

/// How many submissions `url` sees with the tenant context `org` (and `user`), in a
/// transaction as a service sets it.
async fn submissions_seen(url: &str, org: &str, user: Option<&str>) -> i64 {
    let mut client = connect(url).await.unwrap();
    let tx = client.transaction().await.unwrap();
    tx.execute(
        "SELECT set_config('app.current_org_id', $1, true), \
                set_config('app.current_user_id', $2, true)",
        &[&org, &user.unwrap_or("")],
    )
    .await
    .unwrap();
    tx.query_one("SELECT count(*) FROM forms.form_submissions", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn db_url_hands_out_the_application_role_which_meets_row_level_security() {
    if !embedded_lane() {
        return;
    }
    let project = Project::new();

    // Before the migrations there is no application role to hand out.
    let out = project.run(&["db", "url"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(
            "the database groundwork is not migrated yet, so there is no application role \
             (groundwork_app) to connect as: run `groundwork migrate up` first"
        ),
        "{}",
        text(&out)
    );
    let owner = project.ok(&["db", "url", "--role", "owner"]);
    assert!(
        owner.starts_with("postgres://postgres@127.0.0.1:"),
        "{owner}"
    );

    project.ok(&["migrate", "up"]);
    let ids = assignments(&project.ok(&["db", "seed"]));
    let app = project.ok(&["db", "url"]).trim().to_owned();
    let readonly = project
        .ok(&["db", "url", "--role", "readonly"])
        .trim()
        .to_owned();
    let owner = project
        .ok(&["db", "url", "--role", "owner"])
        .trim()
        .to_owned();
    let port = owner
        .trim_start_matches("postgres://postgres@127.0.0.1:")
        .trim_end_matches("/groundwork");
    assert_eq!(
        app,
        format!("postgres://groundwork_dev_app:groundwork_dev@127.0.0.1:{port}/groundwork")
    );
    assert_eq!(
        readonly,
        format!("postgres://groundwork_dev_readonly:groundwork_dev@127.0.0.1:{port}/groundwork")
    );

    // A random tenant sees nothing as the application role; the owner sees every row.
    let stranger = Uuid::new_v4().to_string();
    assert_eq!(submissions_seen(&app, &stranger, None).await, 0);
    assert_eq!(submissions_seen(&owner, &stranger, None).await, 12);
    // The seeded tenant sees its own.
    let (org, user) = (&ids["ORGANIZATION_ID"], &ids["USER_ID"]);
    assert_eq!(submissions_seen(&app, org, Some(user)).await, 12);
    // The read-only role reads under row-level security and writes nothing.
    assert_eq!(submissions_seen(&readonly, org, Some(user)).await, 12);
    let client = connect(&readonly).await.unwrap();
    let error = client
        .batch_execute("DELETE FROM forms.form_submissions")
        .await
        .unwrap_err();
    assert_eq!(error.code().unwrap().code(), "42501", "{error}");

    // psql, with the same URLs.
    let count = |role: &str| {
        let tenant = format!("SELECT set_config('app.current_org_id', '{stranger}', false)");
        let out = project.run(&[
            "db",
            "psql",
            "--role",
            role,
            "--",
            "-tA",
            "-c",
            &tenant,
            "-c",
            "SELECT current_user, count(*) FROM forms.form_submissions",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        stdout(&out).lines().last().unwrap_or_default().to_owned()
    };
    assert_eq!(count("app"), "groundwork_dev_app|0");
    assert_eq!(count("owner"), "postgres|12");
    // psql's exit status is the command's.
    let out = project.run(&["db", "psql", "--", "-c", "SELECT 1/0"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("division by zero"), "{}", text(&out));
}

#[tokio::test]
async fn db_url_on_a_database_url_server_makes_the_dev_roles_only_when_asked() {
    let empty = TestDb::builder().empty().build().await;
    let dir = tempfile::tempdir().unwrap();
    let url = empty.url(DbRole::Owner);
    let out = groundwork(dir.path(), &["db", "url", "--database-url", url], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("is not migrated yet") && text(&out).contains("groundwork migrate up"),
        "{}",
        text(&out)
    );
    let out = groundwork(
        dir.path(),
        &["db", "url", "--role", "owner", "--database-url", url],
        &[],
    );
    assert_eq!(stdout(&out).trim(), url, "{}", text(&out));

    let db = TestDb::new().await;
    let url = db.url(DbRole::Owner);
    let out = groundwork(
        dir.path(),
        &["db", "url", "--create-dev-roles", "--database-url", url],
        &[("GROUNDWORK_ENV", "production")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("refusing to make the development roles"),
        "{}",
        text(&out)
    );
    if std::env::var_os("DATABASE_URL").is_some() {
        return; // a server of the developer's: no roles with a public password there
    }
    let out = groundwork(dir.path(), &["db", "url", "--database-url", url], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("has no development roles")
            && text(&out).contains("pass --create-dev-roles"),
        "{}",
        text(&out)
    );
    for _ in 0..2 {
        let out = groundwork(
            dir.path(),
            &["db", "url", "--create-dev-roles", "--database-url", url],
            &[],
        );
        assert!(out.status.success(), "{}", text(&out));
        let app = stdout(&out).trim().to_owned();
        assert!(
            app.starts_with("postgres://groundwork_dev_app:groundwork_dev@")
                && app.ends_with(&format!("/{}", db.name())),
            "{app}"
        );
        let client = connect(&app).await.unwrap();
        let row = client
            .query_one(
                "SELECT current_user::text, pg_has_role('groundwork_app', 'USAGE')",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "groundwork_dev_app");
        assert!(row.get::<_, bool>(1));
    }
}

#[tokio::test]
async fn db_create_drop_and_reset_on_a_database_url_server() {
    let server = TestDb::server_url().unwrap();
    let name = format!("gw_cli_db_{}", Uuid::new_v4().simple());
    let url = with_database(&server, &name);
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = args.to_vec();
        all.extend(["--database-url", url.as_str()]);
        groundwork(dir.path(), &all, env)
    };
    let exists = async || {
        connect(&server)
            .await
            .unwrap()
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await
            .unwrap()
            .is_some()
    };

    let out = run(&["db", "create"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(stdout(&out), format!("created database {name}\n"));
    let out = run(&["db", "create"], &[]);
    assert_eq!(stdout(&out), format!("database {name} already exists\n"));

    // No terminal to ask on, and no --yes: nothing happens.
    let out = run(&["db", "drop"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("stdin is not a terminal; pass --yes"),
        "{}",
        text(&out)
    );
    let out = run(&["db", "reset"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    for command in ["drop", "reset"] {
        let out = run(
            &["db", command, "--yes"],
            &[("GROUNDWORK_ENV", "production")],
        );
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(
            text(&out).contains(&format!(
                "refusing to {command} the database with GROUNDWORK_ENV=production; pass \
                 --allow-production"
            )),
            "{}",
            text(&out)
        );
    }
    assert!(exists().await);

    // Reset: drop (with the seed data), create, migrate up.
    let migrations = ["--source", DEFAULT_MIGRATIONS];
    let out = run(&[&["migrate", "up"][..], &migrations].concat(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&["db", "seed"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&[&["db", "reset", "--yes"][..], &migrations].concat(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    let said = stdout(&out);
    assert!(
        said.starts_with(&format!(
            "dropped database {name}\ncreated database {name}\napplied 20261201000000 foundation in "
        )),
        "{said}"
    );
    assert_eq!(
        said.lines().filter(|l| l.starts_with("applied ")).count(),
        std::fs::read_dir(DEFAULT_MIGRATIONS)
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".up.sql"))
            .count()
    );
    let organizations: i64 = connect(&url)
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM identity.organizations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(organizations, 0);
    let out = run(
        &[
            &["db", "reset", "--yes", "--allow-production"][..],
            &migrations,
        ]
        .concat(),
        &[("GROUNDWORK_ENV", "production")],
    );
    assert!(out.status.success(), "{}", text(&out));

    // On a terminal, drop asks; only yes drops.
    if Path::new("/usr/bin/script").is_file() {
        let on_terminal = |answer: &str| {
            let command = format!(
                "'{}' db drop --database-url '{url}'",
                env!("CARGO_BIN_EXE_groundwork")
            );
            let mut script = Command::new("/usr/bin/script")
                .args(["-qec", &command, "/dev/null"])
                .env_remove("GROUNDWORK_ENV")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write as _;
            writeln!(script.stdin.take().unwrap(), "{answer}").unwrap();
            let out = script.wait_with_output().unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let said = on_terminal("n");
        assert!(
            said.contains(&format!("Drop database {name} on ")) && said.contains("not dropped"),
            "{said}"
        );
        assert!(exists().await);
        let said = on_terminal("y");
        assert!(said.contains(&format!("dropped database {name}")), "{said}");
        assert!(!exists().await);
    }

    let out = run(&["db", "drop", "--yes"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!exists().await);
    let out = run(&["db", "drop", "--yes"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(stdout(&out), format!("database {name} does not exist\n"));

    // The server's own databases are not the application's.
    let out = groundwork(
        dir.path(),
        &["db", "drop", "--yes", "--database-url", &server],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("refusing to drop postgres, which the server needs for itself"),
        "{}",
        text(&out)
    );
}

#[test]
fn db_create_drop_and_reset_on_the_embedded_cluster() {
    if !embedded_lane() {
        return;
    }
    let project = Project::new();
    assert_eq!(
        project.ok(&["db", "create"]),
        "created database groundwork\n"
    );
    assert_eq!(
        project.ok(&["db", "create"]),
        "database groundwork already exists\n"
    );
    project.ok(&["migrate", "up"]);
    project.ok(&["db", "seed"]);
    let out = project.run(&["db", "drop"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    let said = project.ok(&["db", "reset", "--yes"]);
    assert!(
        said.starts_with("dropped database groundwork\ncreated database groundwork\napplied "),
        "{said}"
    );
    // Migrated afresh, without the seed data, and the application role still works.
    let status = project.run(&["db", "status"]);
    assert_eq!(status.status.code(), Some(3), "{}", text(&status));
    project.ok(&["db", "start"]);
    assert!(
        project
            .ok(&["db", "status"])
            .contains(&format!("database groundwork: {}", fully_migrated()))
    );
    let out = project.ok(&[
        "db",
        "psql",
        "--role",
        "owner",
        "--",
        "-tA",
        "-c",
        "SELECT count(*) FROM identity.organizations",
    ]);
    assert_eq!(out.trim(), "0");
    assert!(
        project
            .ok(&["db", "url"])
            .starts_with("postgres://groundwork_dev_app:")
    );

    assert_eq!(
        project.ok(&["db", "drop", "--yes"]),
        "dropped database groundwork\n"
    );
    let status = project.ok(&["db", "status"]);
    assert!(
        status.contains("database groundwork: does not exist; run `groundwork db create`"),
        "{status}"
    );
}

#[test]
fn db_health_maintain_and_backup_on_the_embedded_cluster_which_preloads_query_statistics() {
    if !embedded_lane() {
        return;
    }
    let project = Project::new();
    project.ok(&["migrate", "up"]);
    // Started for the command and stopped after it, the cluster answers every check.
    let health = project.ok(&["db", "health"]);
    assert_eq!(health.lines().count(), 21, "{health}");
    let maintained = project.ok(&["db", "maintain"]);
    assert!(
        maintained
            .lines()
            .last()
            .unwrap()
            .starts_with("maintained "),
        "{maintained}"
    );
    let slow = project.ok(&[
        "db",
        "psql",
        "--role",
        "owner",
        "--",
        "-tA",
        "-c",
        "SELECT count(*) > 0 FROM ops.get_slow_queries(5)",
    ]);
    assert_eq!(slow.trim(), "t", "pg_stat_statements is preloaded");
    let backup = project.dir.path().join("backup");
    project.ok(&["db", "backup", "--out", backup.to_str().unwrap()]);
    let verified = project.ok(&["db", "restore", "--verify", backup.to_str().unwrap()]);
    assert!(
        verified.contains(" verified: checksums match"),
        "{verified}"
    );
}

#[tokio::test]
async fn db_seed_prints_the_ids_it_made_as_name_value_lines() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let url = db.url(DbRole::Owner);
    let seed = || groundwork(dir.path(), &["db", "seed", "--database-url", url], &[]);
    let out = seed();
    assert!(out.status.success(), "{}", text(&out));
    // stdout is only the ids, for an env file; the summary goes to stderr.
    let ids = assignments(&stdout(&out));
    assert_eq!(
        ids.keys().collect::<Vec<_>>(),
        ["ORGANIZATION_ID", "SERVICE_REQUEST_FORM_ID", "USER_ID"]
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 form(s), 12 submission(s)"),
        "{}",
        text(&out)
    );
    // Loading again loads nothing and prints the same ids.
    assert_eq!(assignments(&stdout(&seed())), ids);

    // They are the seeded rows, and a tenant context made of them sees its data as the
    // application role does.
    let owner = db.client(DbRole::Owner).await;
    let id = |sql: &'static str| {
        let owner = &owner;
        async move {
            owner
                .query_one(sql, &[])
                .await
                .unwrap()
                .get::<_, Uuid>(0)
                .to_string()
        }
    };
    assert_eq!(
        ids["ORGANIZATION_ID"],
        id("SELECT id FROM identity.organizations WHERE slug = 'acme-development'").await
    );
    assert_eq!(
        ids["USER_ID"],
        id("SELECT id FROM identity.users WHERE email = 'dev@acme.test'").await
    );
    assert_eq!(
        ids["SERVICE_REQUEST_FORM_ID"],
        id("SELECT id FROM forms.form_definitions WHERE name = 'Service request'").await
    );
    let tenant = Tenant::new(
        ids["ORGANIZATION_ID"].parse().unwrap(),
        ids["USER_ID"].parse().unwrap(),
    );
    let form: Uuid = ids["SERVICE_REQUEST_FORM_ID"].parse().unwrap();
    let submissions: i64 = db
        .with_tenant(DbRole::App, tenant, async |tx| {
            Ok(tx
                .query_one(
                    "SELECT count(*) FROM forms.form_submissions WHERE form_definition_id = $1",
                    &[&form],
                )
                .await?
                .get(0))
        })
        .await
        .unwrap();
    assert_eq!(submissions, 12);
}

#[tokio::test]
async fn db_status_reports_on_the_database_url_server() {
    let dir = tempfile::tempdir().unwrap();
    let status = |url: &str| groundwork(dir.path(), &["db", "status", "--database-url", url], &[]);

    let db = TestDb::new().await;
    let out = status(db.url(DbRole::Owner));
    assert!(out.status.success(), "{}", text(&out));
    let said = stdout(&out);
    assert!(said.starts_with("reachable: "), "{said}");
    assert!(
        said.contains(&format!("database {}: {}", db.name(), fully_migrated())),
        "{said}"
    );

    let empty = TestDb::builder().empty().build().await;
    let out = status(empty.url(DbRole::Owner));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains(&format!(
            "database {}: not migrated; run `groundwork migrate up`",
            empty.name()
        )),
        "{}",
        text(&out)
    );

    let missing = with_database(db.url(DbRole::Owner), "gw_cli_db_missing");
    let out = status(&missing);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains("database gw_cli_db_missing: does not exist"),
        "{}",
        text(&out)
    );

    // Nothing listens on port 1: stopped, as for the embedded cluster.
    let out = status("postgres://postgres@127.0.0.1:1/groundwork");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        stdout(&out).starts_with("unreachable: 127.0.0.1:1 ("),
        "{}",
        text(&out)
    );

    // A server that answers but refuses: an error.
    let stranger =
        groundwork_support::connect::with_credentials(db.url(DbRole::Owner), "gw_nobody", "x");
    let out = status(&stranger);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("gw_nobody"), "{}", text(&out));
}

#[test]
fn db_help_says_where_the_cluster_is_and_what_status_exits_with() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let help = |args: &[&str]| {
        let out = groundwork(dir.path(), args, &[]);
        assert!(out.status.success(), "{}", text(&out));
        // Whatever the wrapping.
        stdout(&out)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let db = help(&["db", "--help"]);
    for expected in [
        "kept in .groundwork/ under the working directory (GROUNDWORK_DATA_DIR overrides)",
        "As root the server runs as the `postgres` user",
        "kept in /var/lib/groundwork/<project directory name>-<hash> instead",
        "`groundwork db status` names the directory in use",
        "connect as groundwork_dev_app",
        "Exit status: 0 done; 1 failed; 2 bad arguments; 3 (`db status`) the server is \
         stopped or unreachable",
    ] {
        assert!(db.contains(expected), "{expected:?} in:\n{db}");
    }
    let status = help(&["db", "status", "--help"]);
    assert!(
        status.contains(
            "3 the embedded cluster is stopped (or not created yet), or the \
                         --database-url server is unreachable"
        ),
        "{status}"
    );

    // A cluster not made yet: stopped, and where it will be.
    let data = dir.path().join("nowhere-yet");
    let out = groundwork(
        dir.path(),
        &["db", "status"],
        &[("GROUNDWORK_DATA_DIR", data.to_str().unwrap())],
    );
    if embedded_lane() {
        assert_eq!(out.status.code(), Some(3), "{}", text(&out));
        assert!(
            stdout(&out).starts_with(&format!("not created yet ({})", data.display())),
            "{}",
            text(&out)
        );
    }
}
