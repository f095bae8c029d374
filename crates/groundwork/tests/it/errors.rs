//! Every SQLSTATE mapping of `groundwork::Error`, provoked on a real server.

use groundwork::Error;
use groundwork_testing::{DbRole, TestDb};
use tokio_postgres::error::SqlState;

async fn setup() -> (TestDb, tokio_postgres::Client) {
    let db = TestDb::builder().empty().build().await;
    let client = db.client(DbRole::Owner).await;
    client
        .batch_execute(
            "CREATE TABLE parents (id int PRIMARY KEY, code text NOT NULL CONSTRAINT parents_code_key UNIQUE);
             CREATE TABLE children (
                 id int PRIMARY KEY,
                 parent_id int NOT NULL CONSTRAINT children_parent_fkey REFERENCES parents (id),
                 qty int NOT NULL CONSTRAINT children_qty_positive CHECK (qty > 0)
             );
             CREATE TABLE bookings (
                 during int4range NOT NULL,
                 CONSTRAINT bookings_no_overlap EXCLUDE USING gist (during WITH &&)
             );
             INSERT INTO parents VALUES (1, 'a'), (2, 'b');",
        )
        .await
        .unwrap();
    (db, client)
}

async fn fail(client: &tokio_postgres::Client, sql: &str) -> Error {
    Error::from(client.batch_execute(sql).await.expect_err(sql))
}

#[tokio::test]
async fn unique_violation_is_a_conflict_naming_the_constraint() {
    let (_db, client) = setup().await;
    let err = fail(&client, "INSERT INTO parents VALUES (3, 'a')").await;
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert_eq!(err.code(), Some(&SqlState::UNIQUE_VIOLATION));
    assert_eq!(err.constraint(), Some("parents_code_key"));
    let v = err.violation().unwrap();
    assert_eq!(
        (v.schema.as_deref(), v.table.as_deref()),
        (Some("public"), Some("parents"))
    );
    assert_eq!(
        err.to_string(),
        "conflict with an existing row: parents_code_key on public.parents: duplicate key \
         value violates unique constraint \"parents_code_key\" (Key (code)=(a) already exists.)"
    );
}

#[tokio::test]
async fn exclusion_violation_is_a_conflict() {
    let (_db, client) = setup().await;
    client
        .batch_execute("INSERT INTO bookings VALUES ('[1,5)')")
        .await
        .unwrap();
    let err = fail(&client, "INSERT INTO bookings VALUES ('[3,7)')").await;
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert_eq!(err.code(), Some(&SqlState::EXCLUSION_VIOLATION));
    assert_eq!(err.constraint(), Some("bookings_no_overlap"));
}

#[tokio::test]
async fn foreign_key_violation_is_a_missing_reference() {
    let (_db, client) = setup().await;
    let err = fail(&client, "INSERT INTO children VALUES (1, 99, 1)").await;
    assert!(matches!(err, Error::MissingReference(_)), "{err:?}");
    assert_eq!(err.code(), Some(&SqlState::FOREIGN_KEY_VIOLATION));
    assert_eq!(err.constraint(), Some("children_parent_fkey"));
    assert_eq!(err.violation().unwrap().table.as_deref(), Some("children"));
    // Deleting a referenced row is the same rule seen from the other side.
    client
        .batch_execute("INSERT INTO children VALUES (1, 1, 1)")
        .await
        .unwrap();
    let err = fail(&client, "DELETE FROM parents WHERE id = 1").await;
    assert!(matches!(err, Error::MissingReference(_)), "{err:?}");
    assert_eq!(err.constraint(), Some("children_parent_fkey"));
}

#[tokio::test]
async fn check_violation_and_bad_data_are_invalid() {
    let (_db, client) = setup().await;
    let err = fail(&client, "INSERT INTO children VALUES (1, 1, 0)").await;
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    assert_eq!(err.code(), Some(&SqlState::CHECK_VIOLATION));
    assert_eq!(err.constraint(), Some("children_qty_positive"));
    let err = fail(&client, "SELECT 'not a number'::int").await;
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    assert_eq!(err.code(), Some(&SqlState::INVALID_TEXT_REPRESENTATION));
}

#[tokio::test]
async fn not_null_violation_is_a_missing_value_naming_the_column() {
    let (_db, client) = setup().await;
    let err = fail(&client, "INSERT INTO parents (id) VALUES (5)").await;
    assert!(matches!(err, Error::MissingValue(_)), "{err:?}");
    assert_eq!(err.code(), Some(&SqlState::NOT_NULL_VIOLATION));
    let v = err.violation().unwrap();
    assert_eq!(
        (v.table.as_deref(), v.column.as_deref()),
        (Some("parents"), Some("code"))
    );
}

#[tokio::test]
async fn serialization_failure_is_retryable() {
    let (db, a) = setup().await;
    let b = db.client(DbRole::Owner).await;
    a.batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT sum(id) FROM parents")
        .await
        .unwrap();
    b.batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT sum(id) FROM parents")
        .await
        .unwrap();
    a.batch_execute("INSERT INTO parents VALUES (10, 'x'); COMMIT")
        .await
        .unwrap();
    let err = match b
        .batch_execute("INSERT INTO parents VALUES (11, 'y')")
        .await
    {
        Err(e) => Error::from(e),
        Ok(()) => Error::from(b.batch_execute("COMMIT").await.unwrap_err()),
    };
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(err.code(), Some(&SqlState::T_R_SERIALIZATION_FAILURE));
}

#[tokio::test]
async fn deadlock_is_retryable() {
    let (db, a) = setup().await;
    let b = db.client(DbRole::Owner).await;
    a.batch_execute("BEGIN; UPDATE parents SET code = 'a1' WHERE id = 1")
        .await
        .unwrap();
    b.batch_execute("BEGIN; UPDATE parents SET code = 'b1' WHERE id = 2")
        .await
        .unwrap();
    let (ra, rb) = tokio::join!(
        a.batch_execute("UPDATE parents SET code = 'a2' WHERE id = 2"),
        b.batch_execute("UPDATE parents SET code = 'b2' WHERE id = 1"),
    );
    let err = Error::from(
        ra.err()
            .or(rb.err())
            .expect("one side is chosen as the victim"),
    );
    assert!(matches!(err, Error::Retryable(_)), "{err:?}");
    assert_eq!(err.code(), Some(&SqlState::T_R_DEADLOCK_DETECTED));
}

#[tokio::test]
async fn other_server_errors_keep_their_sqlstate() {
    let (_db, client) = setup().await;
    let err = fail(&client, "SELEC 1").await;
    assert!(matches!(err, Error::Database(_)), "{err:?}");
    assert_eq!(err.code(), Some(&SqlState::SYNTAX_ERROR));
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn pool_errors_map_through_the_same_place() {
    let (db, _client) = setup().await;
    let client = db
        .pool(DbRole::Owner)
        .get()
        .await
        .map_err(Error::from)
        .unwrap();
    let err = Error::from(
        client
            .batch_execute("INSERT INTO parents VALUES (1, 'dup')")
            .await
            .unwrap_err(),
    );
    assert!(matches!(err, Error::Conflict(_)));
    let unreachable = groundwork::pool::PoolConfig::new("postgres://postgres@127.0.0.1:1/none")
        .build()
        .unwrap();
    let err = Error::from(unreachable.get().await.unwrap_err());
    assert!(
        matches!(err, Error::Connection(_) | Error::Pool(_)),
        "{err:?}"
    );
}
