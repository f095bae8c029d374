//! Inventory (docs/REQUIREMENTS.md, "inventory") as services use it: every test acts
//! through the application role with a tenant and a user set. Every rule broken with its
//! exact SQLSTATE and nothing written; the last units under 30 concurrent buyers; expiry;
//! the ledger after a random mix of operations; alerts; tenants apart; what the
//! application role may not touch and which locks it cannot hold against others.

use std::sync::Arc;
use std::time::Duration;

use crate::common::{buyer, owner_sql};
use groundwork::Error;
use groundwork::inventory::{
    Adjustment, InventoryError, ReorderSettings, adjust_stock, cleanup_expired, fulfill,
    receive_stock, release, reserve, set_reorder,
};
use groundwork::queries::inventory::{alerts, stock_levels};
use groundwork::tenant::Tenant;
use groundwork_testing::fixtures::{CategoryFixture, ProductFixture};
use groundwork_testing::{DbRole, TestDb, TestTenant};
use tokio::sync::Barrier;
use uuid::Uuid;

const TABLES: [&str; 4] = [
    "inventory.stock_levels",
    "inventory.reservations",
    "inventory.movements",
    "inventory.alerts",
];

/// Row counts of the inventory tables and the product's stock, as the owner sees them.
async fn snapshot(db: &TestDb, product: Uuid) -> (Vec<i64>, Option<(i32, i32)>) {
    let mut counts = Vec::new();
    for t in TABLES {
        counts.push(db.count(t).await);
    }
    let stock = db
        .pool(DbRole::Owner)
        .get()
        .await
        .unwrap()
        .query_opt(
            "SELECT on_hand, reserved FROM inventory.stock_levels WHERE product_id = $1",
            &[&product],
        )
        .await
        .unwrap()
        .map(|r| (r.get(0), r.get(1)));
    (counts, stock)
}

/// The SQLSTATE of running `sql` as the application role for `tenant` (it must fail),
/// with nothing written.
async fn refused(db: &TestDb, tenant: Tenant, product: Uuid, sql: &str) -> String {
    let before = snapshot(db, product).await;
    let err = db
        .with_tenant(DbRole::App, tenant, async |tx| {
            Ok(tx.batch_execute(sql).await?)
        })
        .await
        .expect_err(sql);
    assert_eq!(snapshot(db, product).await, before, "{sql} wrote something");
    err.code().map(|c| c.code().to_owned()).unwrap_or_default()
}

/// Runs `sql` as the application role for `tenant` and returns the first column of
/// its first row as text.
async fn value(db: &TestDb, tenant: Tenant, sql: &str) -> Option<String> {
    db.with_tenant(DbRole::App, tenant, async |tx| {
        Ok(tx.query_one(sql, &[]).await?.get::<_, Option<String>>(0))
    })
    .await
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[tokio::test]
async fn every_inventory_rule_refuses_with_its_error_and_writes_nothing() {
    let db = TestDb::builder().pool_size(4).build().await;
    let [a] = db.tenants().await;
    let me = a.tenant();
    let p = db.insert(ProductFixture::new(me).stock(5)).await.id;
    let bare = db.insert(ProductFixture::new(me)).await.id;
    let missing = Uuid::new_v4();
    // A fulfilled and an expired reservation, and one active reservation of 1.
    let sold = db
        .with_tenant(DbRole::App, me, async |tx| Ok(reserve(tx, p, 1).await?))
        .await
        .unwrap();
    db.with_tenant(DbRole::App, me, async |tx| Ok(fulfill(tx, sold).await?))
        .await
        .unwrap();
    let lapsed = db
        .with_tenant(DbRole::App, me, async |tx| Ok(reserve(tx, p, 1).await?))
        .await
        .unwrap();
    owner_sql(
        &db,
        &format!(
            "UPDATE inventory.reservations SET expires_at = now() - interval '1 second' WHERE id = '{lapsed}'"
        ),
    )
    .await;
    db.with_tenant(DbRole::App, me, async |tx| Ok(reserve(tx, p, 1).await?))
        .await
        .unwrap();

    let cases: Vec<(String, &str)> = vec![
        (
            format!("SELECT inventory.reserve_inventory('{p}', 0)"),
            "22023",
        ),
        (
            format!("SELECT inventory.reserve_inventory('{p}', -3)"),
            "22023",
        ),
        (
            format!("SELECT inventory.reserve_inventory('{p}', 1000001)"),
            "54000",
        ),
        (
            format!("SELECT inventory.reserve_inventory('{p}', NULL)"),
            "22004",
        ),
        (
            "SELECT inventory.reserve_inventory(NULL, 1)".to_owned(),
            "22004",
        ),
        (
            format!("SELECT inventory.reserve_inventory('{missing}', 1)"),
            "WN001",
        ),
        (
            format!("SELECT inventory.reserve_inventory('{p}', 4)"),
            "WN002",
        ),
        (
            format!("SELECT inventory.reserve_inventory('{bare}', 1)"),
            "WN002",
        ),
        (
            format!("SELECT inventory.receive_stock('{missing}', 1)"),
            "WN001",
        ),
        (format!("SELECT inventory.receive_stock('{p}', 0)"), "22023"),
        (
            format!("SELECT inventory.receive_stock('{p}', 1000001)"),
            "54000",
        ),
        (
            format!("SELECT inventory.receive_stock('{p}', NULL)"),
            "22004",
        ),
        (
            format!("SELECT inventory.adjust_stock('{p}', -4, 'count')"),
            "WN002",
        ),
        (
            format!("SELECT inventory.adjust_stock('{p}', 0, 'count')"),
            "22023",
        ),
        (
            format!("SELECT inventory.adjust_stock('{p}', 1, '  ')"),
            "22023",
        ),
        (
            format!("SELECT inventory.adjust_stock('{p}', 1, repeat('x', 501))"),
            "54000",
        ),
        (
            format!("SELECT inventory.release_reservation('{sold}')"),
            "WN004",
        ),
        (
            format!("SELECT inventory.release_reservation('{missing}')"),
            "WN001",
        ),
        (
            format!("SELECT inventory.fulfill_reservation('{sold}')"),
            "WN004",
        ),
        (
            format!("SELECT inventory.fulfill_reservation('{lapsed}')"),
            "WN004",
        ),
        (
            "SELECT inventory.release_reservation(NULL)".to_owned(),
            "22004",
        ),
        // Stock moves through the functions only: the ledger cannot be bypassed.
        (
            format!("UPDATE inventory.stock_levels SET on_hand = 100 WHERE product_id = '{p}'"),
            "42501",
        ),
        (
            format!("UPDATE inventory.stock_levels SET reserved = 0 WHERE product_id = '{p}'"),
            "42501",
        ),
        (
            format!(
                "INSERT INTO inventory.movements (organization_id, product_id, kind, quantity, on_hand_after) VALUES ('{}', '{p}', 'receipt', 5, 10)",
                a.organization_id
            ),
            "42501",
        ),
        (
            format!("DELETE FROM inventory.reservations WHERE product_id = '{p}'"),
            "42501",
        ),
        (
            format!("UPDATE inventory.alerts SET resolved_at = now() WHERE product_id = '{p}'"),
            "42501",
        ),
        // The reorder settings are the application's, within their CHECKs.
        (
            format!(
                "UPDATE inventory.stock_levels SET reorder_point = -1 WHERE product_id = '{p}'"
            ),
            "23514",
        ),
        (
            "INSERT INTO inventory.suppliers (name, email) VALUES ('Acme', 'not an email')"
                .to_owned(),
            "23514",
        ),
        (
            "INSERT INTO inventory.suppliers (name, lead_time_days) VALUES ('Acme', 400)"
                .to_owned(),
            "23514",
        ),
    ];
    for (sql, code) in &cases {
        assert_eq!(refused(&db, me, p, sql).await, *code, "{sql}");
    }
    // The sixth active reservation of one user and product.
    for _ in 0..4 {
        owner_sql(
            &db,
            &format!(
                "UPDATE inventory.stock_levels SET on_hand = on_hand + 1 WHERE product_id = '{p}'"
            ),
        )
        .await;
    }
    for _ in 0..4 {
        db.with_tenant(DbRole::App, me, async |tx| Ok(reserve(tx, p, 1).await?))
            .await
            .unwrap();
    }
    let sql = format!("SELECT inventory.reserve_inventory('{p}', 1)");
    assert_eq!(refused(&db, me, p, &sql).await, "WN003");
    // Without a tenant, with a malformed one, without a user, for a suspended
    // organization: refused, nothing written.
    let cases = [
        (Tenant::default(), "42501"),
        (Tenant::user(a.user_id), "42501"),
        (Tenant::organization(a.organization_id), "42501"),
    ];
    for (tenant, code) in cases {
        assert_eq!(refused(&db, tenant, p, &sql).await, code, "{tenant:?}");
    }
    assert_eq!(
        refused(
            &db,
            Tenant::default(),
            p,
            &format!("SELECT set_config('app.current_org_id', 'not-a-uuid', true); {sql}")
        )
        .await,
        "22P02"
    );
    for op in [
        format!("SELECT inventory.receive_stock('{p}', 1)"),
        "SELECT inventory.cleanup_expired_reservations()".to_owned(),
    ] {
        assert_eq!(
            refused(&db, Tenant::default(), p, &op).await,
            "42501",
            "{op}"
        );
    }
    owner_sql(
        &db,
        &format!(
            "UPDATE identity.organizations SET status = 'suspended' WHERE id = '{}'",
            a.organization_id
        ),
    )
    .await;
    assert_eq!(refused(&db, me, p, &sql).await, "42501");

    // The typed errors.
    owner_sql(
        &db,
        &format!(
            "UPDATE identity.organizations SET status = 'active' WHERE id = '{}'",
            a.organization_id
        ),
    )
    .await;
    let typed = |r: Result<Uuid, Error>| InventoryError::from(r.unwrap_err());
    let err = typed(
        db.with_tenant(DbRole::App, me, async |tx| Ok(reserve(tx, p, 1).await?))
            .await,
    );
    assert!(
        matches!(err, InventoryError::ReservationLimit(_)),
        "{err:?}"
    );
    let other = buyer(&db, a.organization_id).await;
    let err = typed(
        db.with_tenant(
            DbRole::App,
            other,
            async |tx| Ok(reserve(tx, p, 100).await?),
        )
        .await,
    );
    assert!(matches!(err, InventoryError::OutOfStock(_)), "{err:?}");
    // An inactive user reserves nothing.
    owner_sql(
        &db,
        &format!(
            "UPDATE identity.users SET status = 'suspended' WHERE id = '{}'",
            other.user_id.unwrap()
        ),
    )
    .await;
    assert_eq!(
        refused(
            &db,
            other,
            p,
            &format!("SELECT inventory.reserve_inventory('{p}', 1)")
        )
        .await,
        "42501"
    );
    let err = typed(
        db.with_tenant(DbRole::App, me, async |tx| {
            Ok(reserve(tx, missing, 1).await?)
        })
        .await,
    );
    assert!(matches!(err, InventoryError::NotFound(_)), "{err:?}");
    let err = InventoryError::from(
        db.with_tenant(DbRole::App, me, async |tx| Ok(fulfill(tx, sold).await?))
            .await
            .unwrap_err(),
    );
    assert!(matches!(err, InventoryError::NotActive(_)), "{err:?}");
    let err = typed(
        db.with_tenant(DbRole::App, me, async |tx| Ok(reserve(tx, p, 0).await?))
            .await,
    );
    assert!(
        matches!(err, InventoryError::Database(Error::Invalid(_))),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_concurrent_reservations_of_the_last_ten_units_sell_exactly_ten() {
    let db = Arc::new(TestDb::builder().pool_size(32).build().await);
    let [a] = db.tenants().await;
    let p = db
        .insert(ProductFixture::new(a.tenant()).stock(10))
        .await
        .id;
    let mut buyers = Vec::new();
    for _ in 0..30 {
        buyers.push(buyer(&db, a.organization_id).await);
    }
    // Thirty connections, each in its own transaction, released at once.
    let barrier = Arc::new(Barrier::new(30));
    let mut tasks = Vec::new();
    for tenant in buyers {
        let (db, barrier) = (db.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = db.pool(DbRole::App).get().await.unwrap();
            let tx = groundwork::tenant::begin(&mut client, tenant)
                .await
                .unwrap();
            tx.batch_execute("SELECT 1").await.unwrap();
            barrier.wait().await;
            let result = reserve(&tx, p, 1).await;
            if result.is_ok() {
                tx.commit().await.unwrap();
            }
            result
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => won += 1,
            Err(InventoryError::OutOfStock(_)) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(won, 10);
    let level = db
        .with_tenant(DbRole::App, a.tenant(), async |tx| {
            Ok(stock_levels::stock_level_get().bind(tx, &p).one().await?)
        })
        .await
        .unwrap();
    assert_eq!(
        (level.on_hand, level.reserved, level.available),
        (10, 10, 0)
    );
    assert_eq!(
        db.count("inventory.reservations WHERE status = 'active'")
            .await,
        10
    );
}

#[tokio::test]
async fn expired_reservations_give_their_stock_back() {
    let db = TestDb::builder().pool_size(4).build().await;
    let [a, b] = db.tenants().await;
    let me = a.tenant();
    let p = db.insert(ProductFixture::new(me).stock(5)).await.id;
    let q = db.insert(ProductFixture::new(b.tenant()).stock(5)).await.id;
    let r = db
        .with_tenant(DbRole::App, me, async |tx| Ok(reserve(tx, p, 5).await?))
        .await
        .unwrap();
    db.with_tenant(DbRole::App, b.tenant(), async |tx| {
        Ok(reserve(tx, q, 5).await?)
    })
    .await
    .unwrap();
    // Five minutes after creation.
    assert_eq!(
        value(
            &db,
            me,
            &format!("SELECT (expires_at - created_at)::text FROM inventory.reservations WHERE id = '{r}'")
        )
        .await
        .as_deref(),
        Some("00:05:00")
    );
    owner_sql(
        &db,
        "UPDATE inventory.reservations SET expires_at = now() - interval '1 second'",
    )
    .await;
    let expired = db
        .with_tenant(DbRole::App, me, async |tx| Ok(cleanup_expired(tx).await?))
        .await
        .unwrap();
    assert_eq!(expired, 1, "the tenant's own only");
    let available =
        format!("SELECT available::text FROM inventory.stock_levels WHERE product_id = '{p}'");
    assert_eq!(value(&db, me, &available).await.as_deref(), Some("5"));
    assert_eq!(
        value(
            &db,
            me,
            &format!("SELECT status::text FROM inventory.reservations WHERE id = '{r}'")
        )
        .await
        .as_deref(),
        Some("expired")
    );
    // Released or expired already: false, nothing changes.
    assert!(
        !db.with_tenant(DbRole::App, me, async |tx| Ok(release(tx, r).await?))
            .await
            .unwrap()
    );
    // The worker role cleans every tenant's, with no tenant set; again finds nothing.
    let worker = db.pool(DbRole::Worker).get().await.unwrap();
    let n: i32 = worker
        .query_one("SELECT inventory.cleanup_expired_reservations()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    assert_eq!(
        worker
            .query_one("SELECT inventory.cleanup_expired_reservations()", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        0
    );
    // The worker reads no stock.
    assert!(
        worker
            .query("SELECT * FROM inventory.stock_levels", &[])
            .await
            .is_err()
    );
    // An expired reservation never blocks a sale, even before the clean-up runs.
    let r2 = db
        .with_tenant(DbRole::App, me, async |tx| Ok(reserve(tx, p, 5).await?))
        .await
        .unwrap();
    owner_sql(
        &db,
        &format!("UPDATE inventory.reservations SET expires_at = now() - interval '1 second' WHERE id = '{r2}'"),
    )
    .await;
    let other = buyer(&db, a.organization_id).await;
    db.with_tenant(DbRole::App, other, async |tx| Ok(reserve(tx, p, 5).await?))
        .await
        .unwrap();
    assert_eq!(value(&db, me, &available).await.as_deref(), Some("0"));
    assert_eq!(
        db.count("inventory.reservations WHERE status = 'active'")
            .await,
        1
    );
}

/// xorshift64*: the same sequence for the same seed, with no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

#[tokio::test]
async fn the_ledger_explains_on_hand_after_a_random_mix() {
    let db = TestDb::builder().pool_size(4).build().await;
    let [a] = db.tenants().await;
    let org = a.organization_id;
    let products = [
        db.insert(ProductFixture::new(a.tenant()).stock(20))
            .await
            .id,
        db.insert(ProductFixture::new(a.tenant()).stock(3)).await.id,
        db.insert(ProductFixture::new(a.tenant())).await.id,
    ];
    let mut users = vec![a.tenant()];
    for _ in 0..2 {
        users.push(buyer(&db, org).await);
    }
    let mut rng = Rng(0x5eed_2026_1206);
    let mut reservations: Vec<(Tenant, Uuid)> = Vec::new();
    for step in 0..400 {
        let p = products[rng.below(3) as usize];
        let user = users[rng.below(3) as usize];
        let quantity = 1 + rng.below(6) as i32;
        let outcome: Result<(), Error> = match rng.below(7) {
            0 => {
                db.with_tenant(DbRole::App, user, async |tx| {
                    Ok(receive_stock(tx, p, quantity).await.map(|_| ())?)
                })
                .await
            }
            1 => {
                let quantity = if rng.below(2) == 0 {
                    quantity
                } else {
                    -quantity
                };
                let adjustment = Adjustment {
                    product_id: p,
                    quantity,
                    reason: format!("count at step {step}"),
                };
                db.with_tenant(DbRole::App, user, async |tx| {
                    Ok(adjust_stock(tx, &adjustment).await.map(|_| ())?)
                })
                .await
            }
            2 | 3 => db
                .with_tenant(DbRole::App, user, async |tx| {
                    Ok(reserve(tx, p, quantity).await?)
                })
                .await
                .map(|id| reservations.push((user, id))),
            4 if !reservations.is_empty() => {
                let (user, id) =
                    reservations.swap_remove(rng.below(reservations.len() as u64) as usize);
                db.with_tenant(DbRole::App, user, async |tx| {
                    Ok(release(tx, id).await.map(|_| ())?)
                })
                .await
            }
            5 if !reservations.is_empty() => {
                let (user, id) =
                    reservations.swap_remove(rng.below(reservations.len() as u64) as usize);
                db.with_tenant(DbRole::App, user, async |tx| {
                    Ok(fulfill(tx, id).await.map(|_| ())?)
                })
                .await
            }
            _ => {
                owner_sql(
                    &db,
                    "UPDATE inventory.reservations SET expires_at = now() - interval '1 second'
                     WHERE id IN (SELECT id FROM inventory.reservations WHERE status = 'active' LIMIT 1)",
                )
                .await;
                db.with_tenant(DbRole::App, user, async |tx| {
                    Ok(cleanup_expired(tx).await.map(|_| ())?)
                })
                .await
            }
        };
        if let Err(e) = outcome {
            // Only the rules may refuse: stock, the limit, a finished reservation.
            let e = InventoryError::from(e);
            assert!(
                matches!(
                    e,
                    InventoryError::OutOfStock(_)
                        | InventoryError::ReservationLimit(_)
                        | InventoryError::NotActive(_)
                ),
                "step {step}: {e:?}"
            );
        }
        let broken = db
            .pool(DbRole::Owner)
            .get()
            .await
            .unwrap()
            .query(
                "SELECT s.product_id::text FROM inventory.stock_levels s
                 WHERE s.on_hand <> (SELECT coalesce(sum(m.quantity), 0) FROM inventory.movements m
                                     WHERE m.product_id = s.product_id)
                    OR s.reserved <> (SELECT coalesce(sum(r.quantity), 0) FROM inventory.reservations r
                                      WHERE r.product_id = s.product_id AND r.status = 'active')
                    OR s.available < 0
                    OR (s.available <= s.reorder_point) <> EXISTS (
                           SELECT FROM inventory.alerts al WHERE al.product_id = s.product_id
                             AND al.resolved_at IS NULL)",
                &[],
            )
            .await
            .unwrap();
        assert!(
            broken.is_empty(),
            "step {step}: ledger or alerts out of step: {:?}",
            broken
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
        );
    }
    assert!(db.count("inventory.movements WHERE kind = 'sale'").await > 0);
    assert!(
        db.count("inventory.movements WHERE kind = 'adjustment'")
            .await
            > 0
    );
    assert!(
        db.count("inventory.reservations WHERE status = 'expired'")
            .await
            > 0
    );
}

#[tokio::test]
async fn alerts_open_at_the_reorder_point_and_resolve_above_it() {
    let db = TestDb::builder().pool_size(4).build().await;
    let [a] = db.tenants().await;
    let me = a.tenant();
    let p = db.insert(ProductFixture::new(me).stock(10)).await.id;
    let open = async || {
        db.with_tenant(DbRole::App, me, async |tx| {
            Ok(alerts::alert_list_by_product()
                .bind(tx, &p, &10)
                .all()
                .await?)
        })
        .await
        .unwrap()
    };
    db.with_tenant(DbRole::App, me, async |tx| {
        Ok(set_reorder(
            tx,
            p,
            &ReorderSettings {
                reorder_point: Some(4),
                reorder_quantity: Some(20),
                ..Default::default()
            },
        )
        .await?)
    })
    .await
    .unwrap()
    .unwrap();
    assert!(open().await.is_empty());
    // 10 -> 5 available: above; -> 4: at the point, one alert; -> 2: still one.
    for (quantity, alerts) in [(5, 0), (1, 1), (2, 1)] {
        db.with_tenant(DbRole::App, me, async |tx| {
            Ok(reserve(tx, p, quantity).await?)
        })
        .await
        .unwrap();
        let found = open().await;
        assert_eq!(found.len(), alerts, "after reserving {quantity}");
        assert!(found.iter().all(|a| a.resolved_at.is_none()));
    }
    let alert = &open().await[0];
    assert_eq!(
        (alert.available, alert.reorder_point, alert.reorder_quantity),
        (4, 4, 20)
    );
    // Receiving 1 (available 3) keeps it open; 2 more (available 5) resolves it.
    for (quantity, resolved) in [(1, false), (2, true)] {
        db.with_tenant(DbRole::App, me, async |tx| {
            Ok(receive_stock(tx, p, quantity).await?)
        })
        .await
        .unwrap();
        assert_eq!(open().await[0].resolved_at.is_some(), resolved);
    }
    assert_eq!(db.count("inventory.alerts").await, 1);
}

#[tokio::test]
async fn another_tenant_sees_and_changes_nothing() {
    let db = TestDb::builder().pool_size(4).build().await;
    let [a, b] = db.tenants().await;
    let p = db
        .insert(ProductFixture::new(a.tenant()).name("Walnut desk").stock(5))
        .await
        .id;
    let r = db
        .with_tenant(DbRole::App, a.tenant(), async |tx| {
            Ok(reserve(tx, p, 2).await?)
        })
        .await
        .unwrap();
    owner_sql(
        &db,
        "UPDATE inventory.reservations SET expires_at = now() - interval '1 second'",
    )
    .await;
    let them = b.tenant();
    for sql in [
        format!("SELECT inventory.reserve_inventory('{p}', 1)"),
        format!("SELECT inventory.receive_stock('{p}', 1)"),
        format!("SELECT inventory.adjust_stock('{p}', -1, 'theft')"),
        format!("SELECT inventory.release_reservation('{r}')"),
        format!("SELECT inventory.fulfill_reservation('{r}')"),
    ] {
        assert_eq!(refused(&db, them, p, &sql).await, "WN001", "{sql}");
    }
    // Its clean-up leaves the other tenant's expired reservation alone.
    let before = snapshot(&db, p).await;
    db.with_tenant(DbRole::App, them, async |tx| Ok(cleanup_expired(tx).await?))
        .await
        .unwrap();
    assert_eq!(snapshot(&db, p).await, before);
    for table in [
        "catalog.products",
        "inventory.stock_levels",
        "inventory.reservations",
        "inventory.movements",
        "inventory.alerts",
        "inventory.stock_analytics",
    ] {
        assert_eq!(
            value(&db, them, &format!("SELECT count(*)::text FROM {table}"))
                .await
                .as_deref(),
            Some("0"),
            "{table}"
        );
    }
    for sql in [
        "SELECT count(*)::text FROM catalog.search_products('walnut')".to_owned(),
        format!("SELECT catalog.get_product_details('{p}')::text"),
    ] {
        assert!(
            matches!(value(&db, them, &sql).await.as_deref(), None | Some("0")),
            "{sql}"
        );
    }
    // Writes that claim the other tenant's rows are refused by row-level security.
    let sql =
        format!("UPDATE inventory.stock_levels SET reorder_point = 3 WHERE product_id = '{p}'");
    assert_eq!(
        db.with_tenant(DbRole::App, them, async |tx| Ok(tx
            .execute(&sql, &[])
            .await?))
            .await
            .unwrap(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_tenant_holds_a_lock_another_tenant_waits_for() {
    let db = TestDb::builder().pool_size(8).build().await;
    let [a, b]: [TestTenant; 2] = db.tenants().await;
    let p = db
        .insert(ProductFixture::new(a.tenant()).stock(50))
        .await
        .id;
    let q = db
        .insert(ProductFixture::new(b.tenant()).stock(50))
        .await
        .id;
    let [moving, parent] = [
        db.insert(CategoryFixture::new(a.tenant())).await.id,
        db.insert(CategoryFixture::new(a.tenant())).await.id,
    ];
    let [theirs, their_parent] = [
        db.insert(CategoryFixture::new(b.tenant())).await.id,
        db.insert(CategoryFixture::new(b.tenant())).await.id,
    ];
    // Both tenants have an expired reservation.
    for (tenant, product) in [(a.tenant(), p), (b.tenant(), q)] {
        db.with_tenant(DbRole::App, tenant, async |tx| {
            Ok(reserve(tx, product, 1).await?)
        })
        .await
        .unwrap();
    }
    owner_sql(
        &db,
        "UPDATE inventory.reservations SET expires_at = now() - interval '1 second'",
    )
    .await;
    // Tenant A holds its stock row and its category-tree guard in an open transaction.
    let mut holder = db.pool(DbRole::App).get().await.unwrap();
    let tx = groundwork::tenant::begin(&mut holder, a.tenant())
        .await
        .unwrap();
    reserve(&tx, p, 1).await.unwrap();
    tx.batch_execute(&format!(
        "UPDATE catalog.categories SET parent_id = '{parent}' WHERE id = '{moving}'"
    ))
    .await
    .unwrap();
    // Tenant B reserves, receives and moves categories without waiting.
    let started = std::time::Instant::now();
    let mut client = db.pool(DbRole::App).get().await.unwrap();
    let tx_b = groundwork::tenant::begin(&mut client, b.tenant())
        .await
        .unwrap();
    tx_b.batch_execute("SET LOCAL lock_timeout = '2s'")
        .await
        .unwrap();
    reserve(&tx_b, q, 1).await.unwrap();
    receive_stock(&tx_b, q, 1).await.unwrap();
    tx_b.batch_execute(&format!(
        "UPDATE catalog.categories SET parent_id = '{their_parent}' WHERE id = '{theirs}'"
    ))
    .await
    .unwrap();
    tx_b.commit().await.unwrap();
    // The maintenance role skips what A holds instead of waiting for it.
    let worker = db.pool(DbRole::Worker).get().await.unwrap();
    worker
        .batch_execute("SET lock_timeout = '2s'")
        .await
        .unwrap();
    let n: i32 = worker
        .query_one("SELECT inventory.cleanup_expired_reservations()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "B's expired reservation, not A's behind A's lock");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    tx.rollback().await.unwrap();
    let n: i32 = worker
        .query_one("SELECT inventory.cleanup_expired_reservations()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "A's, once A let go");
}
