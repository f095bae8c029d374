//! TestDb: isolation between clones, clean-up on success, retention on failure.

use groundwork_testing::{DbRole, TestDb};

use crate::common;

async fn organization_count(db: &TestDb) -> i64 {
    common::count(db, "identity.organizations").await
}

async fn database_exists(name: &str) -> bool {
    let admin = groundwork_migrate::connect::connect(&TestDb::server_url().unwrap())
        .await
        .unwrap();
    admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn writes_in_one_test_database_are_invisible_in_another() {
    let (a, b) = tokio::join!(TestDb::new(), TestDb::new());
    assert_ne!(a.name(), b.name());
    let [_] = a.tenants().await;
    assert_eq!(organization_count(&a).await, 1);
    assert_eq!(organization_count(&b).await, 0, "b is a separate clone");
    // A third clone still comes from the pristine template.
    assert_eq!(organization_count(&TestDb::new().await).await, 0);
}

#[tokio::test]
async fn a_clone_has_every_migration_applied() {
    let db = TestDb::new().await;
    let client = db.client(DbRole::Owner).await;
    let migrator =
        groundwork_migrate::Migrator::from_dir(groundwork_testing::DEFAULT_MIGRATIONS).unwrap();
    migrator.verify(&client).await.unwrap();
    let status = migrator.status(&client).await.unwrap();
    assert_eq!(status.len(), migrator.migrations().len());
    assert!(status.iter().all(|s| matches!(
        s.state,
        groundwork_migrate::MigrationState::Applied { changed: false, .. }
    )));
}

#[tokio::test]
async fn a_passing_test_drops_its_database() {
    let db = TestDb::new().await;
    let name = db.name().to_owned();
    assert!(database_exists(&name).await);
    drop(db);
    assert!(!database_exists(&name).await);
}

#[tokio::test]
async fn a_failing_test_keeps_its_database() {
    let name = std::thread::spawn(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            runtime.block_on(async {
                let db = TestDb::new().await;
                tx.send(db.name().to_owned()).unwrap();
                panic!("simulated test failure");
            })
        }));
        assert!(panicked.is_err());
        rx.recv().unwrap()
    })
    .join()
    .unwrap();
    assert!(database_exists(&name).await, "kept for inspection");
    let admin = groundwork_migrate::connect::connect(&TestDb::server_url().unwrap())
        .await
        .unwrap();
    admin
        .batch_execute(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .await
        .unwrap();
}
