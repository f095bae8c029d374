//! Set-up shared by the integration test binaries.
#![allow(dead_code)] // each binary uses a different part

use std::path::Path;
use std::sync::Arc;

use groundwork::queries::identity::organizations::organization_create;
use groundwork::testing::TestDb;
use uuid::Uuid;

/// A migrated test database with a pool of `pool_size` and one organization.
pub async fn db_with_organization(pool_size: usize, slug: &str) -> (Arc<TestDb>, Uuid) {
    let db = TestDb::builder().pool_size(pool_size).build().await;
    let org = organization(&db, slug).await;
    (Arc::new(db), org)
}

/// Creates an organization named and slugged `slug`; returns its id.
pub async fn organization(db: &TestDb, slug: &str) -> Uuid {
    let client = db.pool().get().await.unwrap();
    organization_create()
        .bind(
            &client,
            &None::<Uuid>,
            &slug,
            &slug,
            &serde_json::json!({}),
            &serde_json::json!({}),
            &None::<Uuid>,
        )
        .one()
        .await
        .unwrap()
        .id
}

/// Copies the directory tree `from` to `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}
