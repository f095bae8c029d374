//! The `groundwork` binary end to end, as a user runs it: from a subdirectory of a
//! project, with a `.env` file, in a terminal or not, on a test database and on the
//! embedded cluster.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use groundwork_testing::{DEFAULT_MIGRATIONS, DbRole, TestDb};

use crate::files;
use crate::output::{stdout, text};

/// The binary, to run in `dir`, without the test process's settings that change what
/// it does (GROUNDWORK_ENV, NO_COLOR). Stdin is not a terminal unless the test makes
/// it one.
fn binary(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_groundwork"));
    cmd.current_dir(dir)
        .env_remove("GROUNDWORK_ENV")
        .env_remove("NO_COLOR");
    cmd
}

fn groundwork(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = binary(dir);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
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
        &["migrate", "down", "--all", "--yes", "--allow-production"],
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

/// Run from anywhere in a project, the commands share one cluster, in the root's
/// `.groundwork/`.
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
    std::fs::write(dir.path().join("groundwork.toml"), "").unwrap();
    let (app, docs) = (dir.path().join("crates/app/src"), dir.path().join("docs"));
    for sub in [&app, &docs] {
        std::fs::create_dir_all(sub).unwrap();
    }
    let source = ["--source", DEFAULT_MIGRATIONS];
    let run = |in_dir: &Path, args: &[&str]| groundwork(in_dir, &[args, &source[..]].concat(), &[]);
    let out = run(&app, &["migrate", "up"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(dir.path().join(".groundwork/data/PG_VERSION").exists());
    assert!(!app.join(".groundwork").exists(), "no second cluster");
    // Started for that command only: stopped again.
    let status = groundwork(&docs, &["db", "status"], &[]);
    assert_eq!(status.status.code(), Some(3), "{}", text(&status));
    assert!(
        text(&status).contains(&dir.path().join(".groundwork").display().to_string()),
        "{}",
        text(&status)
    );

    let start = groundwork(&docs, &["db", "start"], &[]);
    assert!(start.status.success(), "{}", text(&start));
    let out = run(&app, &["migrate", "status"]);
    assert!(text(&out).contains("applied"), "{}", text(&out));
    // Started with `db start`: still running after another command.
    let status = groundwork(dir.path(), &["db", "status"], &[]);
    assert!(status.status.success(), "{}", text(&status));
    let url = groundwork(&app, &["db", "url", "--role", "owner"], &[]);
    assert!(text(&url).starts_with("postgres://postgres@127.0.0.1:"));
    let stop = groundwork(&app, &["db", "stop"], &[]);
    assert!(text(&stop).starts_with("stopped"), "{}", text(&stop));
    assert!(!docs.join(".groundwork").exists() && !app.join(".groundwork").exists());
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
    std::fs::write(project.join("groundwork.toml"), "").unwrap();
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

/// A throw-away project: `migrations/` with `files`, and `crates/app/src` to run
/// commands from.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let migrations = dir.path().join("migrations");
        std::fs::create_dir_all(&migrations).unwrap();
        std::fs::create_dir_all(dir.path().join("crates/app/src")).unwrap();
        for (name, sql) in files {
            std::fs::write(migrations.join(name), sql).unwrap();
        }
        Self { dir }
    }

    /// A project with groundwork's own migrations.
    fn with_groundworks_migrations() -> Self {
        let project = Self::new(&[]);
        files::copy_tree(
            Path::new(DEFAULT_MIGRATIONS),
            &project.root().join("migrations"),
        );
        project
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn app(&self) -> PathBuf {
        self.root().join("crates/app")
    }

    fn src(&self) -> PathBuf {
        self.root().join("crates/app/src")
    }

    fn migration_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.root().join("migrations"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

const TABLE_A: [(&str, &str); 2] = [
    ("1_a.up.sql", "CREATE TABLE a (id int);"),
    ("1_a.down.sql", "DROP TABLE a;"),
];

fn last_line(out: &Output) -> String {
    stdout(out).lines().last().unwrap_or_default().to_owned()
}

/// `applied N migrations in X ms` (or `reverted`, `redid`).
fn assert_summary(out: &Output, verb: &str, n: usize) {
    let noun = if n == 1 { "migration" } else { "migrations" };
    let last = last_line(out);
    let ms = last
        .strip_prefix(&format!("{verb} {n} {noun} in "))
        .and_then(|rest| rest.strip_suffix(" ms"))
        .unwrap_or_else(|| panic!("no summary line: {}", text(out)));
    ms.parse::<u64>()
        .unwrap_or_else(|_| panic!("not a duration: {last}"));
}

#[tokio::test]
async fn commands_in_a_subdirectory_act_on_the_project_root() {
    let db = TestDb::builder().empty().build().await;
    let url = db.url(DbRole::Owner);
    let project = Project::new(&TABLE_A);
    let more = project.app().join("more-migrations");
    std::fs::create_dir_all(&more).unwrap();
    std::fs::write(more.join("2_b.up.sql"), "CREATE TABLE b (id int);").unwrap();

    // The root's migrations/, from two levels down.
    let out = groundwork(
        &project.src(),
        &["migrate", "status", "--database-url", url],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout(&out).lines().nth(1).is_some_and(|row| {
        row.split_whitespace().collect::<Vec<_>>() == ["1", "a", "pending"]
    }));
    let out = groundwork(&project.src(), &["migrate", "new", "add c"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let files = project.migration_files();
    assert!(
        files.iter().any(|f| f.ends_with("_add_c.up.sql")),
        "{files:?}"
    );
    assert!(!project.src().join("migrations").exists());

    // A relative --source is relative to where the command was typed.
    let out = groundwork(
        &project.app(),
        &[
            "migrate",
            "up",
            "--source",
            "more-migrations",
            "--database-url",
            url,
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).starts_with("applied 2 b in "),
        "{}",
        text(&out)
    );
    assert_summary(&out, "applied", 1);

    // A missing directory is named in full.
    let out = groundwork(
        &project.src(),
        &[
            "migrate",
            "status",
            "--source",
            "nowhere",
            "--database-url",
            url,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let nowhere = project.src().join("nowhere");
    assert!(
        text(&out).contains(&format!("no migrations directory at {}", nowhere.display())),
        "{}",
        text(&out)
    );
}

#[test]
fn outside_a_project_the_error_names_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("somewhere");
    std::fs::create_dir(&work).unwrap();
    let expected = format!(
        "error: no groundwork project in {} or any directory above it: looked for a \
         groundwork.toml file or a migrations/ directory",
        work.display()
    );
    for args in [
        &["migrate", "status"][..],
        &["migrate", "new", "first"],
        &["db", "start"],
    ] {
        let out = binary(&work)
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("GROUNDWORK_DATA_DIR")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        assert!(
            text(&out).starts_with(&expected),
            "{args:?}: {}",
            text(&out)
        );
    }
    assert!(!work.join(".groundwork").exists() && !work.join("migrations").exists());

    // groundwork.toml marks the root, also without migrations/ yet.
    std::fs::write(dir.path().join("groundwork.toml"), "").unwrap();
    let out = binary(&work).args(["migrate", "status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let migrations = dir.path().join("migrations");
    assert!(
        text(&out).contains(&format!(
            "no migrations directory at {}",
            migrations.display()
        )),
        "{}",
        text(&out)
    );
    let out = binary(&work)
        .args(["migrate", "new", "first"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read_dir(&migrations).unwrap().count(), 2);
}

/// The root's `.env`, then the current directory's, fill in what the environment does
/// not set.
#[tokio::test]
async fn dot_env_files_fill_in_what_the_environment_does_not_set() {
    let db = TestDb::builder().empty().build().await;
    let project = Project::new(&TABLE_A);
    let unreachable = "postgres://nobody@127.0.0.1:1/nowhere";
    std::fs::write(
        project.root().join(".env"),
        format!(
            "# the project's database\nDATABASE_URL={}\n",
            db.url(DbRole::Owner)
        ),
    )
    .unwrap();
    std::fs::write(
        project.src().join(".env"),
        format!("DATABASE_URL={unreachable}\nGROUNDWORK_ENV=production\n"),
    )
    .unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = binary(&project.src());
        cmd.args(args)
            .env_remove("DATABASE_URL")
            .envs(env.iter().copied());
        cmd.output().unwrap()
    };

    // DATABASE_URL from the root's .env: the current directory's comes second.
    let out = run(&["migrate", "up"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_summary(&out, "applied", 1);
    // GROUNDWORK_ENV, set by the current directory's .env only.
    let out = run(&["migrate", "down"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("GROUNDWORK_ENV=production"),
        "{}",
        text(&out)
    );
    // The environment wins over both.
    let out = run(&["migrate", "down"], &[("GROUNDWORK_ENV", "development")]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&["migrate", "status"], &[("DATABASE_URL", unreachable)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains(unreachable), "{}", text(&out));

    std::fs::write(project.root().join(".env"), "DATABASE_URL='unterminated\n").unwrap();
    let out = run(&["migrate", "status"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let file = project.root().join(".env");
    assert!(
        text(&out).starts_with(&format!("error: reading {}:", file.display())),
        "{}",
        text(&out)
    );
}

#[test]
fn completions_print_a_script_for_each_shell() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, expected) in [
        ("bash", "_groundwork()"),
        ("zsh", "#compdef groundwork"),
        ("fish", "complete -c groundwork"),
        ("elvish", "edit:completion:arg-completer[groundwork]"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = groundwork(dir.path(), &["completions", shell], &[]);
        assert!(out.status.success(), "{shell}: {}", text(&out));
        let script = stdout(&out);
        assert!(script.contains(expected), "{shell}: {script}");
        assert!(
            script.contains("redo"),
            "{shell}: subcommands are completed"
        );
    }
    let out = groundwork(dir.path(), &["completions", "tcsh"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// Runs `cmd` with a terminal (a pseudo-terminal) as stdin, stdout and stderr, typing
/// `input`; returns the exit code and everything the terminal showed.
fn in_terminal(mut cmd: Command, input: &str) -> (Option<i32>, String) {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // Both ends close on exec, so that no other test's child keeps the terminal open.
    // SAFETY: plain libc calls on file descriptors this function owns.
    let (master, terminal) = unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(master >= 0, "posix_openpt");
        let master = OwnedFd::from_raw_fd(master);
        assert_eq!(libc::grantpt(master.as_raw_fd()), 0);
        assert_eq!(libc::unlockpt(master.as_raw_fd()), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(
            libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()),
            0
        );
        let terminal = libc::open(
            name.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        assert!(terminal >= 0, "opening the terminal");
        (master, OwnedFd::from_raw_fd(terminal))
    };
    cmd.env("TERM", "xterm-256color")
        .stdin(Stdio::from(terminal.try_clone().unwrap()))
        .stdout(Stdio::from(terminal.try_clone().unwrap()))
        .stderr(Stdio::from(terminal));
    let mut child = cmd.spawn().unwrap();
    // The command holds the terminal's other copies until it is dropped.
    drop(cmd);
    let mut master = std::fs::File::from(master);
    master.write_all(input.as_bytes()).unwrap();
    let (sender, received) = std::sync::mpsc::channel();
    let mut reader = master.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut buffer = [0; 4096];
        // Reading fails (EIO) once every copy of the terminal is closed.
        while let Ok(n @ 1..) = reader.read(&mut buffer) {
            if sender.send(buffer[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let status = child.wait().unwrap();
    let mut shown = Vec::new();
    while let Ok(chunk) = received.recv_timeout(Duration::from_secs(2)) {
        shown.extend(chunk);
    }
    (status.code(), String::from_utf8_lossy(&shown).into_owned())
}

#[tokio::test]
async fn colour_and_progress_only_on_a_terminal_or_when_asked() {
    let db = TestDb::builder().empty().build().await;
    let url = db.url(DbRole::Owner);
    let project = Project::new(&TABLE_A);
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = args.to_vec();
        all.extend(["--database-url", url]);
        groundwork(&project.src(), &all, env)
    };
    let green_applied = "\x1b[32mapplied\x1b[0m 1 a in ";

    // Into a pipe: plain text, no spinner.
    let out = run(&["migrate", "up"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains('\x1b') && !text(&out).contains('\r'));
    assert!(
        !text(&out).contains("applying migrations"),
        "{}",
        text(&out)
    );
    let out = run(&["migrate", "redo", "--color", "always"], &[]);
    assert!(stdout(&out).contains(green_applied), "{}", text(&out));
    let out = run(&["migrate", "status", "--color", "never"], &[]);
    assert!(!text(&out).contains('\x1b'), "{}", text(&out));

    // On a terminal: colour and a spinner, unless NO_COLOR or --color never.
    let terminal = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = binary(&project.src());
        cmd.args(args)
            .args(["--database-url", url])
            .envs(env.iter().copied());
        in_terminal(cmd, "")
    };
    let (code, shown) = terminal(&["migrate", "redo"], &[]);
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains(green_applied), "{shown:?}");
    assert!(shown.contains("reverting and applying again"), "{shown:?}");
    let (code, shown) = terminal(&["migrate", "status"], &[("NO_COLOR", "1")]);
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("1        a     applied"), "{shown:?}");
    assert!(
        !shown.contains("\x1b[3") && !shown.contains("\x1b[1m"),
        "{shown:?}"
    );
    let (_, shown) = terminal(&["migrate", "status", "--color", "never"], &[]);
    assert!(
        !shown.contains("\x1b[3") && !shown.contains("\x1b[1m"),
        "{shown:?}"
    );
}

#[tokio::test]
async fn migrate_reports_asks_before_reverting_everything_and_redoes() {
    let db = TestDb::builder().empty().build().await;
    let url = db.url(DbRole::Owner);
    let project = Project::with_groundworks_migrations();
    let count = project.migration_files().len() / 2;
    let newest = project
        .migration_files()
        .last()
        .map(|f| f.trim_end_matches(".up.sql").replacen('_', " ", 1))
        .unwrap();
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--database-url", url]);
        groundwork(&project.src(), &all, &[])
    };

    let out = run(&["migrate", "up"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_summary(&out, "applied", count);
    assert_eq!(last_line(&run(&["migrate", "up"])), "nothing to apply");

    let status = stdout(&run(&["migrate", "status"]));
    let mut lines = status.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["VERSION", "NAME", "STATE", "APPLIED", "AT"]
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), count, "{status}");
    for row in &rows {
        // version, name, state, date, time, UTC
        assert_eq!(
            (row.len(), row[2], row[5]),
            (6, "applied", "UTC"),
            "{status}"
        );
    }

    let out = run(&["migrate", "redo"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = stdout(&out);
    let lines: Vec<&str> = said.lines().collect();
    assert!(
        lines[0].starts_with(&format!("reverted {newest} in ")),
        "{said}"
    );
    assert!(
        lines[1].starts_with(&format!("applied {newest} in ")),
        "{said}"
    );
    assert_summary(&out, "redid", 1);
    let out = run(&["migrate", "redo", "--steps", "2"]);
    assert_summary(&out, "redid", 2);

    // Stdin is not a terminal: no question can be asked, so --all needs --yes.
    let out = run(&["migrate", "down", "--all"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("pass --yes"), "{}", text(&out));
    let out = run(&["migrate", "down", "--all", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        last_line(&out),
        format!("{count} migrations would be reverted")
    );
    assert!(!stdout(&run(&["migrate", "status"])).contains("pending"));

    // On a terminal it asks; only yes reverts.
    let down_all = || {
        let mut cmd = binary(&project.src());
        cmd.args(["migrate", "down", "--all", "--database-url", url]);
        cmd
    };
    let question = format!("revert all {count} applied migrations of database ");
    let (code, shown) = in_terminal(down_all(), "n\n");
    assert_eq!(code, Some(1), "{shown}");
    assert!(
        shown.contains(&question) && shown.contains("? [y/N] "),
        "{shown}"
    );
    assert!(shown.contains("nothing reverted"), "{shown}");
    assert!(!stdout(&run(&["migrate", "status"])).contains("pending"));
    let (code, shown) = in_terminal(down_all(), "y\n");
    assert_eq!(code, Some(0), "{shown}");
    assert!(
        shown.contains(&format!("reverted\x1b[0m {count} migrations in ")),
        "{shown}"
    );

    let out = run(&["migrate", "up"]);
    assert_summary(&out, "applied", count);
    let out = run(&["migrate", "down", "--all", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_summary(&out, "reverted", count);
    assert_eq!(last_line(&run(&["migrate", "down"])), "nothing to revert");
    assert_eq!(
        last_line(&run(&["migrate", "redo"])),
        "nothing to redo: no migration is applied"
    );
}

#[test]
fn migration_names_need_a_letter_or_digit() {
    let project = Project::new(&[]);
    for name in ["", "--- !", "   "] {
        let out = groundwork(&project.src(), &["migrate", "new", "--", name], &[]);
        assert_eq!(out.status.code(), Some(2), "{name:?}: {}", text(&out));
        assert!(
            text(&out).contains(&format!(
                "invalid value '{name}' for '<NAME>': a migration name needs at least one \
                 letter or digit"
            )),
            "{name:?}: {}",
            text(&out)
        );
    }
    assert!(project.migration_files().is_empty());
    let out = groundwork(
        &project.src(),
        &["migrate", "new", "x", "--tenant-table", "invoices"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("as SCHEMA.TABLE"), "{}", text(&out));
    let out = groundwork(
        &project.src(),
        &["migrate", "new", "x", "--tenant-table", "public.invoices"],
        &[],
    );
    assert!(
        text(&out).contains("public is not an application schema"),
        "{}",
        text(&out)
    );
    assert!(project.migration_files().is_empty());
}

/// Tables of `tables` that break a tenant-table convention, one line per problem: the
/// catalog checks of `crates/groundwork/tests/it/conventions.rs` and `security.rs`.
async fn tenant_table_problems(client: &tokio_postgres::Client, tables: &[&str]) -> Vec<String> {
    const PROBLEMS: &str = "
        WITH t AS (
            SELECT c.oid, c.relname, c.relrowsecurity, c.relowner, n.nspowner,
                   n.nspname, a.attnum AS org
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'organization_id'
            WHERE c.oid = ANY ($1::text[]::regclass[])
        )
        SELECT t.oid::regclass || ': primary key does not lead with organization_id'
        FROM t JOIN pg_index i ON i.indrelid = t.oid AND i.indisprimary
        WHERE i.indkey[0] <> t.org
        UNION ALL
        SELECT t.oid::regclass || ': unique key without organization_id: ' || i.indexrelid::regclass
        FROM t JOIN pg_index i ON i.indrelid = t.oid
        WHERE i.indisunique AND NOT (t.org = ANY (i.indkey::int2[]))
        UNION ALL
        SELECT t.oid::regclass || ': row-level security is off' FROM t WHERE NOT t.relrowsecurity
        UNION ALL
        SELECT t.oid::regclass || ': no tenant policy for ' || r.rolname
        FROM t CROSS JOIN pg_roles r
        WHERE r.rolname IN ('groundwork_app', 'groundwork_readonly')
          AND NOT EXISTS (
              SELECT FROM pg_policy p
              WHERE p.polrelid = t.oid AND p.polpermissive AND r.oid = ANY (p.polroles)
                AND pg_get_expr(p.polqual, p.polrelid) = '(organization_id = identity.current_org_id())'
                AND pg_get_expr(p.polwithcheck, p.polrelid) = '(organization_id = identity.current_org_id())')
        UNION ALL
        SELECT t.oid::regclass || ': owned by ' || pg_get_userbyid(t.relowner)
        FROM t WHERE pg_get_userbyid(t.relowner) <> 'groundwork_owner'
        UNION ALL
        SELECT t.oid::regclass || ': schema owned by ' || pg_get_userbyid(t.nspowner)
        FROM t WHERE pg_get_userbyid(t.nspowner) <> 'groundwork_owner'
        UNION ALL
        SELECT t.oid::regclass || ': no updated_at trigger'
        FROM t WHERE NOT EXISTS (
            SELECT FROM pg_trigger g WHERE g.tgrelid = t.oid
              AND g.tgfoid = 'public.set_updated_at()'::regprocedure)
        UNION ALL
        SELECT t.oid::regclass || ': ' || r.rolname || ' may not ' || p.privilege
        FROM t CROSS JOIN (VALUES ('groundwork_app', 'SELECT'), ('groundwork_app', 'DELETE'),
                                  ('groundwork_readonly', 'SELECT')) p (role, privilege)
        JOIN pg_roles r ON r.rolname = p.role
        WHERE NOT has_table_privilege(r.oid, t.oid, p.privilege)
           OR NOT has_schema_privilege(r.oid, t.nspname, 'USAGE')
        UNION ALL
        SELECT t.oid::regclass || ': groundwork_readonly may write'
        FROM t WHERE has_table_privilege('groundwork_readonly', t.oid, 'INSERT, UPDATE, DELETE')
        ORDER BY 1";
    let tables: Vec<String> = tables.iter().map(|t| (*t).to_owned()).collect();
    let found = client
        .query_one(
            "SELECT count(*) FROM pg_class WHERE oid = ANY ($1::text[]::regclass[])",
            &[&tables],
        )
        .await;
    assert_eq!(found.unwrap().get::<_, i64>(0), tables.len() as i64);
    client
        .query(PROBLEMS, &[&tables])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// `migrate new --tenant-table` writes a pair that passes the conventions on top of
/// groundwork's migrations, keeps tenants apart, and whose down file restores the
/// exact catalog.
#[tokio::test]
async fn a_tenant_table_migration_follows_the_conventions_and_reverts_cleanly() {
    let project = Project::with_groundworks_migrations();
    let new = |name: &str, table: &str| {
        let out = groundwork(
            &project.src(),
            &["migrate", "new", name, "--tenant-table", table],
            &[],
        );
        assert!(out.status.success(), "{}", text(&out));
    };
    // A new schema, and a table in one that a migration already creates.
    new("invoices to bill", "billing.invoices");
    new("project labels", "projects.labels");
    let read = |suffix: &str| {
        let file = project
            .migration_files()
            .into_iter()
            .find(|f| f.ends_with(suffix))
            .unwrap();
        std::fs::read_to_string(project.root().join("migrations").join(file)).unwrap()
    };
    let (invoices, labels) = (
        read("_invoices_to_bill.up.sql"),
        read("_project_labels.up.sql"),
    );
    assert!(
        invoices.starts_with("-- Why: invoices to bill."),
        "{invoices}"
    );
    assert!(invoices.contains("CREATE SCHEMA billing;"), "{invoices}");
    assert!(invoices.contains("public.groundwork_set_owner('billing', 'groundwork_owner')"));
    assert!(!labels.contains("CREATE SCHEMA"), "{labels}");
    assert!(read("_invoices_to_bill.down.sql").contains("DROP SCHEMA billing;"));

    let db = TestDb::new().await;
    let owner = db.client(DbRole::Owner).await;
    let before = crate::migrate::catalog(&owner).await;
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--database-url", db.url(DbRole::Owner)]);
        groundwork(&project.src(), &all, &[])
    };
    let out = run(&["migrate", "up"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_summary(&out, "applied", 2);

    let tables = ["billing.invoices", "projects.labels"];
    let problems = tenant_table_problems(&owner, &tables).await;
    assert!(problems.is_empty(), "{problems:#?}");

    // Each tenant writes and sees its own rows; updated_at follows changes.
    let [a, b] = db.tenants().await;
    for table in tables {
        let inserted =
            format!("INSERT INTO {table} (name) VALUES ('first') RETURNING id, organization_id");
        let (id, organization): (uuid::Uuid, uuid::Uuid) = db
            .with_tenant(DbRole::App, a.tenant(), async |tx| {
                let row = tx.query_one(&inserted, &[]).await?;
                Ok((row.get(0), row.get(1)))
            })
            .await
            .unwrap();
        assert_eq!(organization, a.organization_id);
        let update = format!(
            "UPDATE {table} SET name = 'second' WHERE id = $1 RETURNING updated_at > created_at"
        );
        let newer: bool = db
            .with_tenant(DbRole::App, a.tenant(), async |tx| {
                Ok(tx.query_one(&update, &[&id]).await?.get(0))
            })
            .await
            .unwrap();
        assert!(newer, "{table}: updated_at is stamped");
        let count = format!("SELECT count(*) FROM {table}");
        for (role, tenant, expected) in [
            (DbRole::Readonly, a, 1),
            (DbRole::App, b, 0),
            (DbRole::Readonly, b, 0),
        ] {
            let seen: i64 = db
                .with_tenant(role, tenant.tenant(), async |tx| {
                    Ok(tx.query_one(&count, &[]).await?.get(0))
                })
                .await
                .unwrap();
            assert_eq!(seen, expected, "{table} as {role:?}");
        }
        let stolen = format!("INSERT INTO {table} (organization_id, name) VALUES ($1, 'x')");
        let refused = db
            .with_tenant(DbRole::App, b.tenant(), async |tx| {
                Ok(tx.execute(&stolen, &[&a.organization_id]).await?)
            })
            .await;
        assert!(
            refused.is_err(),
            "{table}: a tenant cannot write another's rows"
        );
    }

    let out = run(&["migrate", "down", "--steps", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_summary(&out, "reverted", 2);
    let after = crate::migrate::catalog(&owner).await;
    let missing: Vec<_> = before.iter().filter(|l| !after.contains(l)).collect();
    let extra: Vec<_> = after.iter().filter(|l| !before.contains(l)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "the down files do not restore the catalog\nmissing: {missing:#?}\nleft over: {extra:#?}"
    );
    let out = run(&["migrate", "up"]);
    assert_summary(&out, "applied", 2);
}

#[test]
fn help_lists_the_exit_codes_and_wrong_command_lines_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = groundwork(dir.path(), &["--help"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let help = stdout(&out);
    for line in [
        "Exit codes:",
        "  0  success",
        "  1  failure: ",
        "  2  usage: ",
        "  3  `db status`: the embedded cluster is stopped",
        "completions",
        "--color <WHEN>",
    ] {
        assert!(help.contains(line), "{line:?} in\n{help}");
    }
    let help = stdout(&groundwork(dir.path(), &["migrate", "--help"], &[]));
    for command in ["up", "down", "redo", "status", "verify", "new"] {
        assert!(
            help.contains(&format!("\n  {command} ")),
            "{command} in\n{help}"
        );
    }
    let help = stdout(&groundwork(dir.path(), &["migrate", "down", "--help"], &[]));
    assert!(help.contains("-y, --yes"), "{help}");
    let help = stdout(&groundwork(dir.path(), &["migrate", "new", "--help"], &[]));
    assert!(help.contains("--tenant-table <SCHEMA.TABLE>"), "{help}");

    for args in [
        &["migrate", "sideways"][..],
        &["migrate", "up", "--to", "soon"],
        &["migrate", "down", "--all", "--steps", "2"],
        &["--color", "sometimes", "migrate", "status"],
    ] {
        let out = groundwork(dir.path(), args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
    }
    // Failures exit 1, before any server is started.
    let out = groundwork(
        dir.path(),
        &["migrate", "status", "--source", "/nonexistent/migrations"],
        &[("DATABASE_URL", "postgres://nobody@127.0.0.1:1/nowhere")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        text(&out).trim_end(),
        "error: no migrations directory at /nonexistent/migrations; create it with \
         `groundwork migrate new NAME` or pass --source DIR"
    );
}
