//! The migration runner against real PostgreSQL: apply, revert, status, drift,
//! failure atomicity, concurrency and exact round trips of the real migrations.

use std::path::Path;
use std::time::Duration;

use groundwork_migrate::{
    DownOptions, DownTarget, Drift, MigrateError, MigrationState, Migrator, UpOptions,
};
use groundwork_support::connect::connect;
use groundwork_testing::{DEFAULT_MIGRATIONS, DbRole, TestDb};

fn write(dir: &Path, file: &str, sql: &str) {
    std::fs::write(dir.join(file), sql).unwrap();
}

/// Three reversible migrations that also log each application.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "1_log.up.sql",
        "CREATE TABLE applied_log (name text NOT NULL);",
    );
    write(d, "1_log.down.sql", "DROP TABLE applied_log;");
    write(
        d,
        "2_widgets.up.sql",
        "-- why: widgets\nCREATE TABLE widgets (id int PRIMARY KEY);\nINSERT INTO applied_log VALUES ('2');",
    );
    write(
        d,
        "2_widgets.down.sql",
        "DROP TABLE widgets;\nDELETE FROM applied_log WHERE name = '2';",
    );
    write(
        d,
        "3_gadgets.up.sql",
        "CREATE TABLE gadgets (id int PRIMARY KEY);\nINSERT INTO applied_log VALUES ('3');",
    );
    write(
        d,
        "3_gadgets.down.sql",
        "DROP TABLE gadgets;\nDELETE FROM applied_log WHERE name = '3';",
    );
    dir
}

fn down(target: DownTarget) -> DownOptions {
    DownOptions {
        target,
        dry_run: false,
        production: false,
        allow_production: false,
    }
}

async fn table_exists(client: &tokio_postgres::Client, name: &str) -> bool {
    client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
        .await
        .unwrap()
        .get(0)
}

async fn recorded(client: &tokio_postgres::Client) -> Vec<i64> {
    client
        .query(
            "SELECT version FROM public.schema_migrations ORDER BY version",
            &[],
        )
        .await
        .map(|rows| rows.iter().map(|r| r.get(0)).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn up_status_down_and_verify() {
    let db = TestDb::builder().empty().build().await;
    let client = db.client(DbRole::Owner).await;
    let dir = fixture();
    let migrator = Migrator::from_dir(dir.path()).unwrap();

    let status = migrator.status(&client).await.unwrap();
    assert!(status.iter().all(|s| s.state == MigrationState::Pending));

    let planned = migrator
        .up(
            &client,
            UpOptions {
                to: None,
                dry_run: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        planned.iter().map(|s| s.version).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(
        !table_exists(&client, "widgets").await,
        "dry run changed nothing"
    );

    let applied = migrator
        .up(
            &client,
            UpOptions {
                to: Some(2),
                dry_run: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        applied.iter().map(|s| s.version).collect::<Vec<_>>(),
        [1, 2]
    );
    assert!(table_exists(&client, "widgets").await);
    assert!(!table_exists(&client, "gadgets").await);

    migrator.up(&client, UpOptions::default()).await.unwrap();
    assert_eq!(recorded(&client).await, [1, 2, 3]);
    let status = migrator.status(&client).await.unwrap();
    assert!(
        status
            .iter()
            .all(|s| matches!(s.state, MigrationState::Applied { changed: false, .. }))
    );
    migrator.verify(&client).await.unwrap();
    assert!(
        migrator
            .up(&client, UpOptions::default())
            .await
            .unwrap()
            .is_empty(),
        "a second up has nothing to do"
    );

    let reverted = migrator
        .down(&client, down(DownTarget::Steps(1)))
        .await
        .unwrap();
    assert_eq!(reverted.iter().map(|s| s.version).collect::<Vec<_>>(), [3]);
    assert!(!table_exists(&client, "gadgets").await);
    migrator
        .down(&client, down(DownTarget::To(1)))
        .await
        .unwrap();
    assert_eq!(recorded(&client).await, [1]);
    migrator.down(&client, down(DownTarget::All)).await.unwrap();
    assert!(recorded(&client).await.is_empty());
    assert!(!table_exists(&client, "applied_log").await);
    migrator.verify(&client).await.unwrap();
}

#[tokio::test]
async fn verify_reports_an_edited_applied_migration() {
    let db = TestDb::builder().empty().build().await;
    let client = db.client(DbRole::Owner).await;
    let dir = fixture();
    Migrator::from_dir(dir.path())
        .unwrap()
        .up(&client, UpOptions::default())
        .await
        .unwrap();
    write(
        dir.path(),
        "2_widgets.up.sql",
        "CREATE TABLE widgets (id bigint PRIMARY KEY);",
    );
    let migrator = Migrator::from_dir(dir.path()).unwrap();
    let err = migrator.verify(&client).await.unwrap_err();
    let MigrateError::Drift(drift) = err else {
        panic!("expected drift, got {err}");
    };
    assert_eq!(
        drift,
        [Drift::Changed {
            version: 2,
            name: "widgets".into()
        }]
    );
    assert_eq!(
        drift[0].to_string(),
        "migration 2 (widgets) was applied but its file changed"
    );
    // up refuses to run over an edited migration.
    let err = migrator
        .up(&client, UpOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        MigrateError::AppliedChanged(Drift::Changed { version: 2, .. })
    ));
}

#[tokio::test]
async fn verify_reports_an_applied_migration_whose_file_is_gone() {
    let db = TestDb::builder().empty().build().await;
    let client = db.client(DbRole::Owner).await;
    let dir = fixture();
    Migrator::from_dir(dir.path())
        .unwrap()
        .up(&client, UpOptions::default())
        .await
        .unwrap();
    std::fs::remove_file(dir.path().join("3_gadgets.up.sql")).unwrap();
    std::fs::remove_file(dir.path().join("3_gadgets.down.sql")).unwrap();
    let migrator = Migrator::from_dir(dir.path()).unwrap();
    let err = migrator.verify(&client).await.unwrap_err();
    let MigrateError::Drift(drift) = err else {
        panic!("expected drift, got {err}");
    };
    assert_eq!(
        drift,
        [Drift::Missing {
            version: 3,
            name: "gadgets".into()
        }]
    );
    let err = migrator
        .down(&client, down(DownTarget::Steps(1)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, MigrateError::MissingFiles { version: 3, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn verify_reports_a_pending_migration_older_than_the_newest_applied() {
    let db = TestDb::builder().empty().build().await;
    let client = db.client(DbRole::Owner).await;
    let dir = fixture();
    Migrator::from_dir(dir.path())
        .unwrap()
        .up(&client, UpOptions::default())
        .await
        .unwrap();
    write(dir.path(), "2500_late.up.sql", "SELECT 1;");
    write(dir.path(), "0_early.up.sql", "SELECT 1;");
    let err = Migrator::from_dir(dir.path())
        .unwrap()
        .verify(&client)
        .await
        .unwrap_err();
    let MigrateError::Drift(drift) = err else {
        panic!("expected drift, got {err}");
    };
    assert_eq!(
        drift,
        [Drift::OutOfOrder {
            version: 0,
            name: "early".into(),
            newest_applied: 3
        }]
    );
}

#[tokio::test]
async fn a_failed_migration_leaves_nothing_applied_or_recorded() {
    let db = TestDb::builder().empty().build().await;
    let client = db.client(DbRole::Owner).await;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "1_ok.up.sql", "CREATE TABLE ok (id int);");
    write(
        dir.path(),
        "2_broken.up.sql",
        "-- why: fails on its third statement\nCREATE TABLE half (id int);\n\
         INSERT INTO half VALUES (1);\n\nINSERT INTO\n  no_such_table VALUES (1);\n",
    );
    let err = Migrator::from_dir(dir.path())
        .unwrap()
        .up(&client, UpOptions::default())
        .await
        .unwrap_err();
    let MigrateError::Failed {
        file,
        line,
        code,
        message,
        ..
    } = &err
    else {
        panic!("expected a failed migration, got {err}");
    };
    assert!(file.ends_with("2_broken.up.sql"));
    assert_eq!(*line, 6, "the line naming the missing table");
    assert_eq!(code, "42P01");
    assert_eq!(message, "relation \"no_such_table\" does not exist");
    assert!(
        err.to_string()
            .contains("2_broken.up.sql failed at line 6: 42P01"),
        "{err}"
    );
    assert!(
        table_exists(&client, "ok").await,
        "the earlier migration stays"
    );
    assert!(
        !table_exists(&client, "half").await,
        "nothing of the failed one remains"
    );
    assert_eq!(recorded(&client).await, [1]);
}

#[tokio::test]
async fn four_concurrent_runners_apply_each_migration_exactly_once() {
    let db = TestDb::builder().empty().build().await;
    let dir = fixture();
    // Slow the first migration down so that the runners really overlap.
    write(
        dir.path(),
        "1_log.up.sql",
        "CREATE TABLE applied_log (name text NOT NULL);\nSELECT pg_sleep(0.3);",
    );
    let mut runners = Vec::new();
    for _ in 0..4 {
        let url = db.url(DbRole::Owner).to_owned();
        let path = dir.path().to_owned();
        runners.push(tokio::spawn(async move {
            let client = connect(&url).await.unwrap();
            Migrator::from_dir(&path)
                .unwrap()
                .up(&client, UpOptions::default())
                .await
                .unwrap()
                .len()
        }));
    }
    let mut total = 0;
    for runner in runners {
        total += runner.await.unwrap();
    }
    assert_eq!(total, 3, "three migrations applied once in all");
    let client = db.client(DbRole::Owner).await;
    let log: Vec<String> = client
        .query("SELECT name FROM applied_log ORDER BY name", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(log, ["2", "3"]);
    assert_eq!(recorded(&client).await, [1, 2, 3]);
}

#[tokio::test]
async fn a_no_transaction_migration_creates_an_index_concurrently_while_another_runner_waits() {
    let db = TestDb::builder().empty().build().await;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "1_items.up.sql",
        "CREATE TABLE items (id int PRIMARY KEY, label text);\n\
         INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 20000) g;\n\
         SELECT pg_sleep(0.2);",
    );
    write(
        dir.path(),
        "2_items_label.up.sql",
        "-- groundwork:no-transaction\nCREATE INDEX CONCURRENTLY items_label_idx ON items (label);",
    );
    write(
        dir.path(),
        "2_items_label.down.sql",
        "-- groundwork:no-transaction\nDROP INDEX CONCURRENTLY items_label_idx;",
    );
    let run = |url: String, path: std::path::PathBuf| async move {
        let client = connect(&url).await.unwrap();
        Migrator::from_dir(&path)
            .unwrap()
            .up(&client, UpOptions::default())
            .await
            .unwrap()
            .len()
    };
    let first = tokio::spawn(run(db.url(DbRole::Owner).to_owned(), dir.path().to_owned()));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = tokio::spawn(run(db.url(DbRole::Owner).to_owned(), dir.path().to_owned()));
    let both = tokio::time::timeout(Duration::from_secs(60), async {
        (first.await.unwrap(), second.await.unwrap())
    })
    .await
    .expect("the runners finished without deadlocking");
    assert_eq!(both.0 + both.1, 2);
    let client = db.client(DbRole::Owner).await;
    let valid: bool = client
        .query_one(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'items_label_idx'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(valid);
    assert_eq!(recorded(&client).await, [1, 2]);
    Migrator::from_dir(dir.path())
        .unwrap()
        .down(&client, down(DownTarget::Steps(1)))
        .await
        .unwrap();
    assert!(!table_exists(&client, "items_label_idx").await);
}

#[tokio::test]
async fn down_is_refused_in_production_unless_allowed() {
    let db = TestDb::builder().empty().build().await;
    let client = db.client(DbRole::Owner).await;
    let dir = fixture();
    let migrator = Migrator::from_dir(dir.path()).unwrap();
    migrator.up(&client, UpOptions::default()).await.unwrap();
    let mut options = down(DownTarget::All);
    options.production = true;
    let err = migrator.down(&client, options).await.unwrap_err();
    assert!(matches!(err, MigrateError::ProductionRefused));
    assert_eq!(
        err.to_string(),
        "refusing to revert migrations with GROUNDWORK_ENV=production; pass \
         --allow-production if you mean it"
    );
    assert_eq!(recorded(&client).await, [1, 2, 3], "nothing was reverted");
    options.allow_production = true;
    migrator.down(&client, options).await.unwrap();
    assert!(recorded(&client).await.is_empty());
}

#[tokio::test]
async fn irreversible_and_misnamed_migrations_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "abc_bad.up.sql", "SELECT 1;");
    let err = Migrator::from_dir(dir.path()).unwrap_err();
    assert!(matches!(err, MigrateError::InvalidFileName(_)), "{err}");

    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "7_up_only.sql", "CREATE TABLE t (id int);");
    let db = TestDb::builder().empty().build().await;
    let client = db.client(DbRole::Owner).await;
    let migrator = Migrator::from_dir(dir.path()).unwrap();
    migrator.up(&client, UpOptions::default()).await.unwrap();
    let err = migrator
        .down(&client, down(DownTarget::All))
        .await
        .unwrap_err();
    assert!(
        matches!(err, MigrateError::Irreversible { version: 7, .. }),
        "{err}"
    );
    assert_eq!(recorded(&client).await, [7]);
}

#[test]
fn new_creates_a_timestamped_pair() {
    let dir = tempfile::tempdir().unwrap();
    let (up, down) = groundwork_migrate::new_migration_files(dir.path(), "Add Widgets!").unwrap();
    let up_name = up.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(up_name.ends_with("_add_widgets.up.sql"), "{up_name}");
    assert_eq!(
        up_name.split('_').next().unwrap().len(),
        14,
        "UTC timestamp version"
    );
    assert!(down.to_str().unwrap().ends_with("_add_widgets.down.sql"));
    let (second, _) = groundwork_migrate::new_migration_files(dir.path(), "more").unwrap();
    assert!(second > up, "a second migration sorts after the first");
    assert_eq!(
        Migrator::from_dir(dir.path()).unwrap().migrations().len(),
        2
    );
}

#[test]
fn a_new_migration_needs_a_name_that_makes_a_file_name() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["", "--- !", "ü"] {
        let err = groundwork_migrate::new_migration_files(dir.path(), name).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "a migration name needs at least one letter or digit (a-z, 0-9), and {name:?} \
                 has none"
            )
        );
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // A name typed over lines stays in the comment.
    let (up, _) = groundwork_migrate::new_migration_files(dir.path(), "add\nDROP TABLE x").unwrap();
    assert!(up.to_str().unwrap().ends_with("_add_drop_table_x.up.sql"));
    assert_eq!(
        std::fs::read_to_string(&up).unwrap(),
        "-- Why: add DROP TABLE x\n\n"
    );
}

/// The catalog, one sorted line per object (see [`groundwork_lint::catalog`]).
pub(crate) async fn catalog(client: &tokio_postgres::Client) -> Vec<String> {
    groundwork_lint::catalog(client).await.unwrap()
}

#[tokio::test]
async fn every_migration_round_trips_to_the_exact_previous_catalog() {
    let db = TestDb::builder().empty().build().await;
    let client = db.client(DbRole::Owner).await;
    let migrator = Migrator::from_dir(DEFAULT_MIGRATIONS).unwrap();
    assert!(!migrator.migrations().is_empty());
    for migration in migrator.migrations() {
        let before = catalog(&client).await;
        let to = Some(migration.version);
        migrator
            .up(&client, UpOptions { to, dry_run: false })
            .await
            .unwrap();
        let after_up = catalog(&client).await;
        assert_ne!(
            before, after_up,
            "migration {} changes the schema",
            migration.version
        );
        migrator
            .down(&client, down(DownTarget::Steps(1)))
            .await
            .unwrap();
        let after_down = catalog(&client).await;
        let missing: Vec<_> = before.iter().filter(|l| !after_down.contains(l)).collect();
        let extra: Vec<_> = after_down.iter().filter(|l| !before.contains(l)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "down of {} ({}) does not restore the catalog\nmissing: {missing:#?}\nleft over: {extra:#?}",
            migration.version,
            migration.name
        );
        migrator
            .up(&client, UpOptions { to, dry_run: false })
            .await
            .unwrap();
        assert_eq!(
            catalog(&client).await,
            after_up,
            "re-applying {} is identical",
            migration.version
        );
    }
}

/// The `migrate` feature's embedded migrations are `migrations/`, and migrate an
/// empty database as the files do.
#[tokio::test]
async fn the_embedded_migrator_is_the_migrations_directory() {
    let embedded = groundwork::migrate::migrator().unwrap();
    let files = Migrator::from_dir(DEFAULT_MIGRATIONS).unwrap();
    let summary = |m: &Migrator| {
        m.migrations()
            .iter()
            .map(|m| {
                (
                    m.version,
                    m.checksum(),
                    m.down.as_ref().map(|d| d.sql.clone()),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(summary(&embedded), summary(&files));
    let db = TestDb::builder().empty().build().await;
    let client = db.client(DbRole::Owner).await;
    let applied = embedded.up(&client, UpOptions::default()).await.unwrap();
    assert_eq!(applied.len(), files.migrations().len());
    files.verify(&client).await.unwrap();
}
