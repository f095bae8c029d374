//! The migration runner under pressure, on real PostgreSQL: lock timeouts retried with
//! backoff, and migrations interrupted half-way (the connection terminated, or the
//! server process killed) leaving the schema and `schema_migrations` consistent, so
//! that the next run finishes the work.

use std::path::Path;
use std::time::Duration;

use groundwork_migrate::{MigrateError, Migrator, StatementLimits, UpOptions};
use groundwork_provision::{Origin, Postgres, Settings};
use groundwork_support::connect::{connect, with_database};
use groundwork_testing::{DbRole, TestDb};
use tokio_postgres::Client;

fn write(dir: &Path, file: &str, sql: &str) {
    std::fs::write(dir.join(file), sql).unwrap();
}

fn quick(attempts: u32) -> StatementLimits {
    StatementLimits {
        lock_timeout: Duration::from_millis(100),
        statement_timeout: Duration::from_secs(60),
        attempts,
        backoff: Duration::from_millis(50),
    }
}

async fn recorded(client: &Client) -> Vec<i64> {
    client
        .query(
            "SELECT version FROM public.schema_migrations ORDER BY version",
            &[],
        )
        .await
        .map(|rows| rows.iter().map(|r| r.get(0)).collect())
        .unwrap_or_default()
}

async fn has_column(client: &Client, table: &str, column: &str) -> bool {
    client
        .query_one(
            "SELECT count(*) > 0 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2",
            &[&table, &column],
        )
        .await
        .unwrap()
        .get(0)
}

/// A table, then a migration that alters it (and so needs ACCESS EXCLUSIVE).
fn alter_migrations() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "1_items.up.sql",
        "CREATE TABLE items (id bigint PRIMARY KEY);",
    );
    write(
        dir.path(),
        "2_label.up.sql",
        "-- why: labels\nALTER TABLE items ADD COLUMN label text;",
    );
    dir
}

#[tokio::test]
async fn a_lock_wait_that_times_out_is_retried_until_the_lock_is_free() {
    let db = TestDb::builder().empty().build().await;
    let dir = alter_migrations();
    let client = db.client(DbRole::Owner).await;
    let migrator = Migrator::from_dir(dir.path())
        .unwrap()
        .with_limits(quick(20));
    migrator
        .up(
            &client,
            UpOptions {
                to: Some(1),
                dry_run: false,
            },
        )
        .await
        .unwrap();
    // A reader in a long transaction holds ACCESS SHARE on the table.
    let reader = db.client(DbRole::Owner).await;
    reader
        .batch_execute("BEGIN; SELECT count(*) FROM items")
        .await
        .unwrap();
    let release = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        reader.batch_execute("COMMIT").await.unwrap();
    };
    let (applied, ()) = tokio::join!(migrator.up(&client, UpOptions::default()), release);
    assert_eq!(applied.unwrap().len(), 1);
    assert!(has_column(&client, "items", "label").await);
    assert_eq!(recorded(&client).await, [1, 2]);
}

#[tokio::test]
async fn a_lock_held_throughout_fails_after_every_attempt_naming_the_file_and_line() {
    let db = TestDb::builder().empty().build().await;
    let dir = alter_migrations();
    let client = db.client(DbRole::Owner).await;
    let migrator = Migrator::from_dir(dir.path())
        .unwrap()
        .with_limits(quick(3));
    migrator
        .up(
            &client,
            UpOptions {
                to: Some(1),
                dry_run: false,
            },
        )
        .await
        .unwrap();
    let reader = db.client(DbRole::Owner).await;
    reader
        .batch_execute("BEGIN; SELECT count(*) FROM items")
        .await
        .unwrap();
    let err = migrator
        .up(&client, UpOptions::default())
        .await
        .unwrap_err();
    match &err {
        MigrateError::LockNotAvailable {
            file,
            line,
            attempts,
            ..
        } => {
            assert!(file.ends_with("2_label.up.sql"), "{err}");
            assert_eq!((*line, *attempts), (2, 3), "{err}");
        }
        other => panic!("expected a lock timeout, got {other}"),
    }
    assert!(!has_column(&client, "items", "label").await);
    assert_eq!(recorded(&client).await, [1]);
    // The session's own settings are untouched by the migration's.
    let timeout: String = client
        .query_one("SHOW lock_timeout", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(timeout, "0");
}

/// How a running migration is interrupted.
#[derive(Clone, Copy, Debug)]
enum Interrupt {
    /// `pg_terminate_backend`: the connection goes away.
    Connection,
    /// SIGKILL to the server process serving the runner: the server restarts every
    /// connection and recovers.
    ServerProcess,
}

/// A table with rows and a function that sleeps while `groundwork.test_slow` is on in
/// the session, so that the runner's session is slow and a later one is not.
const SETUP: &str = "CREATE TABLE items (id bigint PRIMARY KEY, n int NOT NULL);
INSERT INTO items SELECT g, g FROM generate_series(1, 200) g;
CREATE FUNCTION slow(n int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF current_setting('groundwork.test_slow', true) = 'on' THEN
        PERFORM pg_sleep(0.05);
    END IF;
    RETURN n;
END $$;";

/// Runs migration 2 on a session made slow, interrupts it while its slow statement
/// runs, checks what is left, then runs the migrations again on a new connection.
async fn interrupted(url: &str, interrupt: Interrupt, no_transaction: bool) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "1_items.up.sql", SETUP);
    if no_transaction {
        write(
            dir.path(),
            "2_index.up.sql",
            "-- groundwork:no-transaction\n\
             CREATE INDEX CONCURRENTLY IF NOT EXISTS items_n_idx ON items (n);\n\
             CREATE INDEX CONCURRENTLY IF NOT EXISTS items_slow_idx ON items (slow(n));\n",
        );
    } else {
        write(
            dir.path(),
            "2_label.up.sql",
            "ALTER TABLE items ADD COLUMN label text;\n\
             UPDATE items SET label = 'n' || slow(n);\n\
             CREATE TABLE item_notes (item_id bigint REFERENCES items);\n",
        );
    }
    let migrator = Migrator::from_dir(dir.path()).unwrap();
    let runner = connect(url).await.unwrap();
    migrator
        .up(
            &runner,
            UpOptions {
                to: Some(1),
                dry_run: false,
            },
        )
        .await
        .unwrap();
    // A throw-away server does not wait for its WAL at commit; a production server
    // does, and a crash must not lose what the runner saw committed.
    runner
        .batch_execute("SET groundwork.test_slow = on; SET synchronous_commit = on")
        .await
        .unwrap();
    let pid: i32 = runner
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let watcher = connect(url).await.unwrap();
    let interrupt_it = async {
        // Until the slow statement runs.
        loop {
            let active: bool = watcher
                .query_one(
                    "SELECT count(*) > 0 FROM pg_stat_activity
                     WHERE pid = $1 AND state = 'active' AND query LIKE '%slow(n)%'",
                    &[&pid],
                )
                .await
                .unwrap()
                .get(0);
            if active {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        match interrupt {
            Interrupt::Connection => {
                watcher
                    .query_one("SELECT pg_terminate_backend($1)", &[&pid])
                    .await
                    .unwrap();
            }
            Interrupt::ServerProcess => {
                // The server's own user kills the process; the watcher's connection
                // goes down with every other one.
                let _ = watcher
                    .batch_execute(&format!("COPY (SELECT 1) TO PROGRAM 'kill -9 {pid}'"))
                    .await;
                // The postmaster resets every connection once it notices the crash, which
                // on a busy machine can be a while after the killed process is gone: wait
                // for the watcher's own connection to go, so that no connection made
                // before the reset is taken for one made after it.
                for _ in 0..1000 {
                    if watcher.simple_query("SELECT 1").await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    };
    let (outcome, ()) = tokio::join!(migrator.up(&runner, UpOptions::default()), interrupt_it);
    assert!(
        outcome.is_err(),
        "the interrupted migration reports failure"
    );

    // After a crash the server takes a moment to accept connections again.
    let mut checker = None;
    for _ in 0..200 {
        if let Ok(client) = connect(url).await
            && client.simple_query("SELECT 1").await.is_ok()
        {
            checker = Some(client);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let checker = checker.expect("the server accepts connections again");
    assert_eq!(recorded(&checker).await, [1], "migration 2 is not recorded");
    if no_transaction {
        // The first statement finished; the second left its index INVALID.
        let valid: Vec<(String, bool)> = checker
            .query(
                "SELECT c.relname::text, i.indisvalid FROM pg_index i
                 JOIN pg_class c ON c.oid = i.indexrelid
                 WHERE i.indrelid = 'items'::regclass AND c.relname <> 'items_pkey'
                 ORDER BY 1",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(
            valid,
            [
                ("items_n_idx".to_owned(), true),
                ("items_slow_idx".to_owned(), false)
            ]
        );
    } else {
        assert!(!has_column(&checker, "items", "label").await, "rolled back");
        let notes: bool = checker
            .query_one("SELECT to_regclass('item_notes') IS NULL", &[])
            .await
            .unwrap()
            .get(0);
        assert!(notes, "rolled back");
    }

    // The next run, on a new connection, finishes the work.
    let applied = migrator.up(&checker, UpOptions::default()).await.unwrap();
    assert_eq!(applied.len(), 1);
    assert_eq!(recorded(&checker).await, [1, 2]);
    if no_transaction {
        let all_valid: bool = checker
            .query_one(
                "SELECT bool_and(indisvalid) AND count(*) = 3 FROM pg_index
                 WHERE indrelid = 'items'::regclass",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(all_valid, "the INVALID index was dropped and built again");
    } else {
        let labelled: i64 = checker
            .query_one("SELECT count(*) FROM items WHERE label IS NOT NULL", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(labelled, 200);
    }
}

#[tokio::test]
async fn a_transaction_whose_connection_is_terminated_leaves_nothing_and_runs_again() {
    let db = TestDb::builder().empty().build().await;
    interrupted(db.url(DbRole::Owner), Interrupt::Connection, false).await;
}

#[tokio::test]
async fn a_concurrent_index_build_whose_connection_is_terminated_is_recovered() {
    let db = TestDb::builder().empty().build().await;
    interrupted(db.url(DbRole::Owner), Interrupt::Connection, true).await;
}

/// A server of the test's own: killing a server process restarts every connection of
/// its server. None when the tests share a server given by DATABASE_URL.
async fn own_server() -> Option<(Postgres, String)> {
    let server = Postgres::ephemeral(&Settings::from_env().unwrap())
        .await
        .unwrap();
    if server.origin() == Origin::Url {
        eprintln!("skipped: DATABASE_URL names a shared server, and this test crashes one");
        return None;
    }
    let admin = connect(server.url()).await.unwrap();
    admin
        .batch_execute("CREATE DATABASE interrupted")
        .await
        .unwrap();
    let url = with_database(server.url(), "interrupted");
    Some((server, url))
}

#[tokio::test]
async fn a_transaction_whose_server_process_is_killed_leaves_nothing_and_runs_again() {
    let Some((_server, url)) = own_server().await else {
        return;
    };
    interrupted(&url, Interrupt::ServerProcess, false).await;
}

#[tokio::test]
async fn a_concurrent_index_build_whose_server_process_is_killed_is_recovered() {
    let Some((_server, url)) = own_server().await else {
        return;
    };
    interrupted(&url, Interrupt::ServerProcess, true).await;
}
