//! Tenant isolation enforced by PostgreSQL: groundwork_app under row-level security,
//! groundwork_readonly, and the tenant context's lifetime on pooled connections.

use groundwork::Error;
use groundwork::queries::identity::{api_keys, organizations, users};
use groundwork::tenant::{Tenant, begin, with_tenant};
use groundwork_testing::fixtures::ApiKeyFixture;
use groundwork_testing::{DbRole, TestDb};
use serde_json::json;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

struct World {
    db: TestDb,
    a: Uuid,
    b: Uuid,
    ada: Uuid,
    bob: Uuid,
    key_a: Uuid,
    key_b: Uuid,
}

/// Two tenants with one member (its owner) and one API key each, made through the
/// application role.
/// The tenant context as the server sees it: organization and user, '' when unset.
const READ_CONTEXT: &str = "SELECT coalesce(current_setting('app.current_org_id', true), ''), \
                            coalesce(current_setting('app.current_user_id', true), '')";

async fn world() -> World {
    let db = TestDb::builder().pool_size(2).build().await;
    let [a, b] = db.tenants().await;
    let mut keys = Vec::new();
    for t in [a, b] {
        let key = db
            .insert(ApiKeyFixture::new(t.tenant()).scopes(["read"]))
            .await;
        keys.push(key.key.id);
    }
    World {
        db,
        a: a.organization_id,
        b: b.organization_id,
        ada: a.user_id,
        bob: b.user_id,
        key_a: keys[0],
        key_b: keys[1],
    }
}

fn is_rls_violation(err: &Error) -> bool {
    matches!(err, Error::PermissionDenied(_))
        && err
            .violation()
            .unwrap()
            .message
            .contains("row-level security")
}

#[tokio::test]
async fn the_app_role_sees_and_changes_only_its_own_tenant() {
    let w = world().await;
    let mut client = w.db.pool(DbRole::App).get().await.unwrap();
    let tx = begin(&mut client, Tenant::new(w.a, w.ada)).await.unwrap();

    let orgs = organizations::organization_list()
        .bind(
            &tx,
            &None::<chrono::DateTime<chrono::FixedOffset>>,
            &None::<Uuid>,
            &100,
        )
        .all()
        .await
        .unwrap();
    assert_eq!(orgs.iter().map(|o| o.id).collect::<Vec<_>>(), [w.a]);
    // Guessing B's ids finds nothing.
    assert!(
        organizations::organization_get()
            .bind(&tx, &w.b)
            .opt()
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        api_keys::api_key_get()
            .bind(&tx, &w.key_b)
            .opt()
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        users::user_get()
            .bind(&tx, &w.bob)
            .opt()
            .await
            .unwrap()
            .is_none()
    );
    // Lists are the context's tenant's: A's key only.
    let keys = api_keys::api_key_list()
        .bind(&tx, &None::<Uuid>, &100)
        .all()
        .await
        .unwrap();
    assert_eq!(keys.iter().map(|k| k.id).collect::<Vec<_>>(), [w.key_a]);
    // The user itself is visible.
    assert!(
        users::user_get()
            .bind(&tx, &w.ada)
            .opt()
            .await
            .unwrap()
            .is_some()
    );

    // Updates and deletes of B's rows touch nothing.
    let updated = organizations::organization_update()
        .bind(
            &tx,
            &Some("hijacked"),
            &None,
            &None::<serde_json::Value>,
            &None::<serde_json::Value>,
            &None::<Uuid>,
            &w.b,
        )
        .opt()
        .await
        .unwrap();
    assert!(updated.is_none());
    assert_eq!(
        api_keys::api_key_revoke()
            .bind(&tx, &w.key_b)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        organizations::organization_delete()
            .bind(&tx, &w.b)
            .await
            .unwrap(),
        0
    );

    // The queries take the tenant from the context; a statement naming B is refused
    // by the policy.
    let err = Error::from(
        tx.execute(
            "INSERT INTO identity.organization_members (organization_id, user_id, role) \
             VALUES ($1, $2, 'admin')",
            &[&w.b, &w.ada],
        )
        .await
        .unwrap_err(),
    );
    assert!(is_rls_violation(&err), "{err:?}");
    drop(tx);

    // B is untouched, seen as the owner.
    let owner = w.db.pool(DbRole::Owner).get().await.unwrap();
    let b = organizations::organization_get()
        .bind(&owner, &w.b)
        .one()
        .await
        .unwrap();
    assert_ne!(b.name, "hijacked");
    let key =
        w.db.with_tenant(DbRole::App, Tenant::organization(w.b), async |tx| {
            Ok(api_keys::api_key_get().bind(tx, &w.key_b).one().await?)
        })
        .await
        .unwrap();
    assert!(key.revoked_at.is_none());
    let b_members: i64 = owner
        .query_one(
            "SELECT count(*) FROM identity.organization_members WHERE organization_id = $1",
            &[&w.b],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(b_members, 1);
}

#[tokio::test]
async fn without_a_tenant_context_nothing_is_visible_or_writable() {
    let w = world().await;
    let mut client = w.db.pool(DbRole::App).get().await.unwrap();
    // A transaction with no tenant context (also through a transaction pooler).
    let client = groundwork::pool::transaction(&mut client).await.unwrap();
    for table in [
        "identity.organizations",
        "identity.users",
        "identity.organization_members",
        "identity.api_keys",
        "identity.sessions",
        "identity.user_profiles",
    ] {
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "{table} without context");
    }
    let err = Error::from(
        organizations::organization_create()
            .bind(
                &client,
                &None::<Uuid>,
                &"x",
                &"x",
                &json!({}),
                &json!({}),
                &None::<Uuid>,
            )
            .one()
            .await
            .unwrap_err(),
    );
    assert!(is_rls_violation(&err), "{err:?}");
}

#[tokio::test]
async fn a_new_tenant_is_created_under_its_own_context() {
    let w = world().await;
    let mut client = w.db.pool(DbRole::App).get().await.unwrap();
    let id = Uuid::new_v4();
    let created = with_tenant(&mut client, Tenant::organization(id), async |tx| {
        Ok(organizations::organization_create()
            .bind(
                tx,
                &Some(id),
                &"New",
                &"new-org",
                &json!({}),
                &json!({}),
                &None::<Uuid>,
            )
            .one()
            .await?)
    })
    .await
    .unwrap();
    assert_eq!(created.id, id);
}

#[tokio::test]
async fn the_readonly_role_cannot_write() {
    let w = world().await;
    let mut client = w.db.pool(DbRole::Readonly).get().await.unwrap();
    let tx = begin(&mut client, Tenant::new(w.a, w.ada)).await.unwrap();
    assert!(
        organizations::organization_get()
            .bind(&tx, &w.a)
            .opt()
            .await
            .unwrap()
            .is_some()
    );
    let err = Error::from(
        organizations::organization_update()
            .bind(
                &tx,
                &Some("renamed"),
                &None,
                &None::<serde_json::Value>,
                &None::<serde_json::Value>,
                &None::<Uuid>,
                &w.a,
            )
            .opt()
            .await
            .unwrap_err(),
    );
    assert_eq!(
        err.code(),
        Some(&SqlState::INSUFFICIENT_PRIVILEGE),
        "{err:?}"
    );
    assert_eq!(
        err.violation().unwrap().message,
        "permission denied for table organizations"
    );
}

#[tokio::test]
async fn the_app_role_cannot_change_the_schema() {
    let w = world().await;
    let client = w.db.pool(DbRole::App).get().await.unwrap();
    for ddl in [
        "CREATE TABLE identity.intruder (id int)",
        "CREATE TABLE public.intruder (id int)",
        "ALTER TABLE identity.users ADD COLUMN shoe_size int",
        "DROP TABLE identity.api_keys",
        "ALTER TABLE identity.organizations DISABLE ROW LEVEL SECURITY",
        "CREATE SCHEMA intruder",
    ] {
        let err = Error::from(client.batch_execute(ddl).await.unwrap_err());
        assert_eq!(
            err.code(),
            Some(&SqlState::INSUFFICIENT_PRIVILEGE),
            "{ddl}: {err:?}"
        );
    }
}

#[tokio::test]
async fn tenant_context_does_not_outlive_its_transaction_on_a_pooled_connection() {
    let w = world().await;
    let pool = {
        let mut config = groundwork::pool::PoolConfig::new(w.db.url(DbRole::App));
        config.max_size = 1;
        config.build().unwrap()
    };
    {
        let mut client = pool.get().await.unwrap();
        let seen = with_tenant(&mut client, Tenant::new(w.a, w.ada), async |tx| {
            let row = tx.query_one(READ_CONTEXT, &[]).await?;
            let visible = organizations::organization_list()
                .bind(
                    tx,
                    &None::<chrono::DateTime<chrono::FixedOffset>>,
                    &None::<Uuid>,
                    &10,
                )
                .all()
                .await?;
            Ok((row.get::<_, String>(0), visible.len()))
        })
        .await
        .unwrap();
        assert_eq!(seen, (w.a.to_string(), 1));
    }
    // The next request gets the same (only) connection.
    let client = pool.get().await.unwrap();
    let row = client.query_one(READ_CONTEXT, &[]).await.unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1)),
        (String::new(), String::new())
    );
    let visible: i64 = client
        .query_one("SELECT count(*) FROM identity.organizations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(visible, 0, "the previous request's tenant is gone");

    // A failed request rolls back and leaves no context either.
    let mut client = client;
    let err = with_tenant(&mut client, Tenant::new(w.b, w.bob), async |tx| {
        tx.batch_execute("SELECT 1/0").await?;
        Ok(())
    })
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    let row = client.query_one(READ_CONTEXT, &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "");
}

/// `begin` sends the context without waiting for it; whatever the caller sends first,
/// and however (prepared, simple, nothing at all), runs with the context set, and the
/// context ends with the transaction.
#[tokio::test]
async fn begin_sets_the_context_before_the_first_statement() {
    let w = world().await;
    let pool = {
        let mut config = groundwork::pool::PoolConfig::new(w.db.url(DbRole::App));
        config.max_size = 1;
        config.build().unwrap()
    };
    let mut client = pool.get().await.unwrap();
    for round in 0..20 {
        let (tenant, expected) = match round % 3 {
            0 => (Tenant::new(w.a, w.ada), format!("{}/{}", w.a, w.ada)),
            1 => (Tenant::organization(w.b), format!("{}/", w.b)),
            _ => (Tenant::user(w.ada), format!("/{}", w.ada)),
        };
        let tx = begin(&mut client, tenant).await.unwrap();
        let seen = if round % 2 == 0 {
            let row = tx.query_one(READ_CONTEXT, &[]).await.unwrap();
            format!("{}/{}", row.get::<_, String>(0), row.get::<_, String>(1))
        } else {
            match &tx.simple_query(READ_CONTEXT).await.unwrap()[1] {
                tokio_postgres::SimpleQueryMessage::Row(row) => {
                    format!("{}/{}", row.get(0).unwrap(), row.get(1).unwrap())
                }
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(seen, expected, "round {round}");
        match round % 4 {
            0 => tx.commit().await.unwrap(),
            1 => tx.rollback().await.unwrap(),
            _ => drop(tx),
        }
    }
    // A transaction with no statement of its own commits, and leaves nothing behind.
    let tx = begin(&mut client, Tenant::new(w.a, w.ada)).await.unwrap();
    tx.commit().await.unwrap();
    let row = client.query_one(READ_CONTEXT, &[]).await.unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1)),
        (String::new(), String::new())
    );
}
