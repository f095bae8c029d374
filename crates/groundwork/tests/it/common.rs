//! Set-up shared by the integration test modules.

use std::sync::Arc;

use groundwork::tenant::Tenant;
use groundwork_testing::fixtures::{MemberFixture, UserFixture};
use groundwork_testing::{DbRole, TestDb, TestTenant};
use uuid::Uuid;

/// A migrated test database with pools of `pool_size` and one tenant.
pub async fn db_with_tenant(pool_size: usize) -> (Arc<TestDb>, TestTenant) {
    let db = TestDb::builder().pool_size(pool_size).build().await;
    let [tenant] = db.tenants().await;
    (Arc::new(db), tenant)
}

/// Creates a table as the owner, for a test's handler to write through the
/// application role: `definition` is the part after `CREATE TABLE public.<name>`.
pub async fn scratch_table(db: &TestDb, name: &str, definition: &str) {
    db.pool(DbRole::Owner)
        .get()
        .await
        .unwrap()
        .batch_execute(&format!(
            "CREATE TABLE public.{name} {definition};
             GRANT SELECT, INSERT ON public.{name} TO groundwork_app;
             GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO groundwork_app;"
        ))
        .await
        .unwrap();
}

/// The database error inside an identity error (the others do not happen in tests).
pub fn database(error: groundwork::identity::IdentityError) -> groundwork::Error {
    match error {
        groundwork::identity::IdentityError::Database(e) => e,
        other => panic!("{other}"),
    }
}

/// Runs `sql` (one or more statements) as the owner: set-up and back-dating only.
pub async fn owner_sql(db: &TestDb, sql: &str) {
    db.pool(DbRole::Owner)
        .get()
        .await
        .unwrap()
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A new user who is an active member of the organization, and the tenant acting for
/// both: someone to buy, reserve or pay as.
pub async fn buyer(db: &TestDb, org: Uuid) -> Tenant {
    let user = db.insert(UserFixture::default()).await.id;
    db.insert(MemberFixture::new(org, user)).await;
    Tenant::new(org, user)
}
