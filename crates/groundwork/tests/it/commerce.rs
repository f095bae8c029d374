//! Sales and payments (docs/REQUIREMENTS.md, "sales" and "payments") as services use
//! them: every test acts through the application role with a tenant and a user set.
//! Every rule broken with its exact SQLSTATE and nothing written; the last units under
//! 20 concurrent checkouts; one order for racing retries of one key; refunds racing
//! for the captured amount; expiry giving stock back; tenants and users apart.

use std::sync::Arc;

use crate::common::{buyer, owner_sql};
use groundwork::Error;
use groundwork::payments::{self, NewPaymentMethod, PaymentError, RefundRequest};
use groundwork::sales::{self, Checkout, SalesError};
use groundwork::tenant::Tenant;
use groundwork::types::payments::PaymentStatus;
use groundwork::types::sales::OrderStatus;
use groundwork_testing::fixtures::ProductFixture;
use groundwork_testing::{DbRole, TestDb};
use rust_decimal::Decimal;
use tokio::sync::Barrier;
use uuid::Uuid;

/// Every table checkout and payments write, and the stock counters.
const WRITTEN: &str = "SELECT (SELECT count(*) FROM sales.orders)::text || '/' ||
       (SELECT count(*) FROM sales.order_items) || '/' ||
       (SELECT count(*) FROM sales.order_status_history) || '/' ||
       (SELECT count(*) FROM sales.carts WHERE status = 'open') || '/' ||
       (SELECT count(*) FROM inventory.reservations WHERE status = 'active') || '/' ||
       (SELECT count(*) FROM inventory.movements) || '/' ||
       (SELECT coalesce(sum(on_hand), 0) || ':' || coalesce(sum(reserved), 0) FROM inventory.stock_levels) || '/' ||
       (SELECT count(*) FROM messaging.outbox_messages) || '/' ||
       (SELECT count(*) FROM payments.payments) || '/' ||
       (SELECT coalesce(string_agg(status::text, ',' ORDER BY id), '') FROM payments.payments) || '/' ||
       (SELECT coalesce(sum(refunded_amount), 0) FROM payments.payments) || '/' ||
       (SELECT count(*) FROM payments.refunds) || '/' ||
       (SELECT count(*) FROM payments.payment_transactions) || '/' ||
       (SELECT coalesce(string_agg(status::text, ',' ORDER BY id), '') FROM sales.orders)";

async fn written(db: &TestDb) -> String {
    let owner = db.pool(DbRole::Owner).get().await.unwrap();
    owner.query_one(WRITTEN, &[]).await.unwrap().get(0)
}

async fn owner_value(db: &TestDb, sql: &str) -> String {
    db.pool(DbRole::Owner)
        .get()
        .await
        .unwrap()
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// The SQLSTATE of `work` run as the application role for `tenant` (it must fail),
/// with nothing written.
async fn refused<T: std::fmt::Debug>(
    db: &TestDb,
    tenant: Tenant,
    work: impl AsyncFnOnce(&deadpool_postgres::Transaction<'_>) -> Result<T, Error>,
) -> String {
    let before = written(db).await;
    let err = db
        .with_tenant(DbRole::App, tenant, work)
        .await
        .expect_err("refused");
    assert_eq!(
        written(db).await,
        before,
        "a refusal wrote something: {err}"
    );
    err.code().map(|c| c.code().to_owned()).unwrap_or_default()
}

/// A product of the tenant at `price` with `stock` units.
async fn product(db: &TestDb, tenant: Tenant, price: &str, stock: i32) -> Uuid {
    db.insert(
        ProductFixture::new(tenant)
            .price(price.parse().unwrap())
            .stock(stock),
    )
    .await
    .id
}

/// The user's open cart holding `items` (product, quantity).
async fn cart(db: &TestDb, who: Tenant, items: &[(Uuid, i32)]) -> Uuid {
    let items = items.to_vec();
    db.with_tenant(DbRole::App, who, async |tx| {
        let cart = match sales::open_cart_of_user(tx).await? {
            Some(cart) => cart,
            None => sales::open_cart(tx, "USD").await?,
        };
        for (product, quantity) in items {
            sales::add_to_cart(tx, cart.id, product, quantity).await?;
        }
        Ok(cart.id)
    })
    .await
    .unwrap()
}

async fn checkout(db: &TestDb, who: Tenant, cart: Uuid, key: &str) -> Result<Uuid, SalesError> {
    let request = Checkout::new(cart, key);
    db.with_tenant(DbRole::App, who, async |tx| {
        Ok(sales::checkout(tx, &request).await?)
    })
    .await
    .map_err(SalesError::from)
}

/// A pending order of `who` for `items`.
async fn order(db: &TestDb, who: Tenant, items: &[(Uuid, i32)]) -> Uuid {
    let cart = cart(db, who, items).await;
    checkout(db, who, cart, &Uuid::new_v4().to_string())
        .await
        .unwrap()
}

/// A card of `who`, valid for years.
async fn card(db: &TestDb, who: Tenant) -> Uuid {
    let method = NewPaymentMethod::card(
        format!("tok_{}", Uuid::new_v4().simple()).replace(char::is_numeric, "x"),
        "visa",
        "4242",
        12,
        2099,
    );
    db.with_tenant(DbRole::App, who, async |tx| {
        Ok(payments::add_payment_method(tx, &method).await?.id)
    })
    .await
    .unwrap()
}

async fn authorize(
    db: &TestDb,
    who: Tenant,
    order: Uuid,
    method: Uuid,
) -> Result<Uuid, PaymentError> {
    db.with_tenant(DbRole::App, who, async |tx| {
        Ok(payments::authorize(tx, order, method).await?)
    })
    .await
    .map_err(PaymentError::from)
}

async fn capture(
    db: &TestDb,
    who: Tenant,
    payment: Uuid,
    amount: Option<&str>,
) -> Result<(), PaymentError> {
    let amount = amount.map(|a| a.parse::<Decimal>().unwrap());
    db.with_tenant(DbRole::App, who, async |tx| {
        Ok(payments::capture(tx, payment, amount).await?)
    })
    .await
    .map_err(PaymentError::from)
}

async fn refund(
    db: &TestDb,
    who: Tenant,
    payment: Uuid,
    amount: &str,
) -> Result<Uuid, PaymentError> {
    let request = RefundRequest {
        payment_id: payment,
        amount: amount.parse().unwrap(),
        reason: "damaged in transit".into(),
    };
    db.with_tenant(DbRole::App, who, async |tx| {
        Ok(payments::refund(tx, &request).await?)
    })
    .await
    .map_err(PaymentError::from)
}

#[tokio::test]
async fn checkout_places_the_order_reserves_writes_the_outbox_and_closes_the_cart() {
    let db = TestDb::builder().pool_size(4).build().await;
    let [a] = db.tenants().await;
    let me = buyer(&db, a.organization_id).await;
    let p = product(&db, a.tenant(), "12.50", 10).await;
    let q = product(&db, a.tenant(), "3.00", 10).await;
    let cart_id = cart(&db, me, &[(p, 2), (q, 1), (p, 1)]).await;

    let placed = checkout(&db, me, cart_id, "req-1").await.unwrap();
    // A retry with the same key returns the same order and writes nothing.
    let before = written(&db).await;
    assert_eq!(checkout(&db, me, cart_id, "req-1").await.unwrap(), placed);
    assert_eq!(written(&db).await, before);

    let (order, items) = db
        .with_tenant(DbRole::App, me, async |tx| {
            Ok((
                sales::order(tx, placed).await?.unwrap(),
                sales::order_items(tx, placed).await?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(order.status, OrderStatus::Pending);
    assert_eq!(order.total_amount, "40.50".parse::<Decimal>().unwrap());
    assert_eq!(order.item_count, 4);
    assert!(order.order_number.starts_with("SO-"));
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| i.reservation_id.is_some()));
    // The reservations last as long as the pending order.
    assert_eq!(
        owner_value(
            &db,
            &format!(
                "SELECT count(*)::text FROM inventory.reservations r JOIN sales.orders o ON o.id = '{placed}'
                 WHERE r.status = 'active' AND r.expires_at = o.expires_at
                   AND o.expires_at BETWEEN now() + interval '29 minutes' AND now() + interval '31 minutes'"
            )
        )
        .await,
        "2"
    );
    assert_eq!(
        owner_value(&db, "SELECT string_agg(product_id::text || ':' || reserved, ',' ORDER BY product_id) FROM inventory.stock_levels").await,
        {
            let mut v = [(p, 3), (q, 1)];
            v.sort();
            v.iter().map(|(id, n)| format!("{id}:{n}")).collect::<Vec<_>>().join(",")
        }
    );
    assert_eq!(
        owner_value(&db, &format!("SELECT topic || ' ' || (payload->>'order_id') FROM messaging.outbox_messages WHERE partition_key = '{placed}'")).await,
        format!("sales.order_placed {placed}")
    );
    assert_eq!(
        owner_value(&db, &format!("SELECT string_agg(coalesce(from_status::text, '-') || '>' || to_status, ',' ORDER BY id) FROM sales.order_status_history WHERE order_id = '{placed}'")).await,
        "->pending"
    );
    assert_eq!(
        owner_value(
            &db,
            &format!("SELECT status::text FROM sales.carts WHERE id = '{cart_id}'")
        )
        .await,
        "checked_out"
    );
    // The closed cart takes no more items; the user opens a new one.
    let err = db
        .with_tenant(DbRole::App, me, async |tx| {
            Ok(sales::add_to_cart(tx, cart_id, p, 1).await?)
        })
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "42501", "{err}");
}

#[tokio::test]
async fn every_sales_rule_refuses_with_its_error_and_writes_nothing() {
    let db = TestDb::builder().pool_size(4).build().await;
    let [a] = db.tenants().await;
    let org = a.organization_id;
    let me = buyer(&db, org).await;
    let other = buyer(&db, org).await;
    let ten = product(&db, a.tenant(), "10.00", 100).await;
    let cheap = product(&db, a.tenant(), "5.00", 100).await;
    let dear = product(&db, a.tenant(), "6000.00", 100).await;
    let one = product(&db, a.tenant(), "1.00", 100).await;
    let scarce = product(&db, a.tenant(), "20.00", 1).await;
    let inactive = product(&db, a.tenant(), "20.00", 10).await;

    let go = |cart: Uuid, key: &str| {
        let request = Checkout::new(cart, key);
        async move |tx: &deadpool_postgres::Transaction<'_>| Ok(sales::checkout(tx, &request).await?)
    };

    // No tenant, no user, an inactive user: 42501.
    let mine = cart(&db, me, &[(ten, 1)]).await;
    let none = Tenant::default();
    assert_eq!(refused(&db, none, go(mine, "k")).await, "42501");
    assert_eq!(
        refused(&db, Tenant::organization(org), go(mine, "k")).await,
        "42501"
    );
    // NULL, empty and oversized keys.
    assert_eq!(
        refused(&db, me, async |tx| Ok(tx
            .execute("SELECT sales.checkout($1, NULL)", &[&mine])
            .await?))
        .await,
        "22004"
    );
    assert_eq!(refused(&db, me, go(mine, "  ")).await, "22023");
    assert_eq!(refused(&db, me, go(mine, &"k".repeat(256))).await, "54000");
    // Another user's cart, or none: WS001.
    assert_eq!(refused(&db, other, go(mine, "k")).await, "WS001");
    assert_eq!(refused(&db, me, go(Uuid::new_v4(), "k")).await, "WS001");
    // An empty cart: WS003.
    let empty = cart(&db, other, &[]).await;
    assert_eq!(refused(&db, other, go(empty, "k")).await, "WS003");
    // Totals below 10.00 and above 10,000.00: WS004 (10.00 itself is fine, below).
    owner_sql(
        &db,
        &format!("DELETE FROM sales.cart_items WHERE cart_id = '{mine}'"),
    )
    .await;
    let low = cart(&db, me, &[(cheap, 1), (one, 4)]).await;
    assert_eq!(refused(&db, me, go(low, "k")).await, "WS004");
    owner_sql(
        &db,
        &format!("DELETE FROM sales.cart_items WHERE cart_id = '{low}'"),
    )
    .await;
    let high = cart(&db, me, &[(dear, 1), (ten, 401)]).await;
    assert_eq!(refused(&db, me, go(high, "k")).await, "WS004");
    owner_sql(
        &db,
        &format!("DELETE FROM sales.cart_items WHERE cart_id = '{high}'"),
    )
    .await;
    // 51 units: WS005 (50 is fine).
    let many = cart(&db, me, &[(one, 51)]).await;
    let err = checkout(&db, me, many, "k").await.unwrap_err();
    assert!(matches!(err, SalesError::TooManyUnits(_)), "{err}");
    assert_eq!(err.violation().unwrap().detail_json().unwrap()["limit"], 50);
    assert_eq!(refused(&db, me, go(many, "k")).await, "WS005");
    owner_sql(
        &db,
        &format!("DELETE FROM sales.cart_items WHERE cart_id = '{many}'"),
    )
    .await;
    // An inactive product: WS009.
    owner_sql(
        &db,
        &format!("UPDATE catalog.products SET active = false WHERE id = '{inactive}'"),
    )
    .await;
    let gone = cart(&db, me, &[(ten, 1), (inactive, 1)]).await;
    assert_eq!(refused(&db, me, go(gone, "k")).await, "WS009");
    owner_sql(
        &db,
        &format!("DELETE FROM sales.cart_items WHERE cart_id = '{gone}'"),
    )
    .await;
    // Out of stock on the second item: WN002, and the first item's reservation is gone too.
    let short = cart(&db, me, &[(ten, 1), (scarce, 2)]).await;
    let err = checkout(&db, me, short, "k").await.unwrap_err();
    assert!(matches!(err, SalesError::OutOfStock(_)), "{err}");
    assert_eq!(refused(&db, me, go(short, "k")).await, "WN002");
    owner_sql(
        &db,
        &format!("DELETE FROM sales.cart_items WHERE cart_id = '{short}'"),
    )
    .await;

    // Exactly 50 units and exactly 10.00 pass; the checked-out cart then refuses a new
    // key (WS002), the key refuses another cart (WS008).
    let fifty = cart(&db, me, &[(one, 50)]).await;
    let first = checkout(&db, me, fifty, "first").await.unwrap();
    assert_eq!(refused(&db, me, go(fifty, "another")).await, "WS002");
    let next = cart(&db, me, &[(ten, 1)]).await;
    assert_eq!(refused(&db, me, go(next, "first")).await, "WS008");
    // Another user of the tenant cannot take the key either.
    let theirs = cart(&db, other, &[(ten, 1)]).await;
    assert_eq!(refused(&db, other, go(theirs, "first")).await, "WS008");
    // An expired cart: WS002.
    owner_sql(
        &db,
        &format!(
            "UPDATE sales.carts SET expires_at = now() - interval '1 second' WHERE id = '{theirs}'"
        ),
    )
    .await;
    assert_eq!(refused(&db, other, go(theirs, "k2")).await, "WS002");

    // Five pending orders, then WS006 for the sixth.
    for i in 2..=5 {
        let c = cart(&db, me, &[(ten, 1)]).await;
        checkout(&db, me, c, &format!("order-{i}")).await.unwrap();
    }
    let sixth = cart(&db, me, &[(ten, 1)]).await;
    let err = checkout(&db, me, sixth, "order-6").await.unwrap_err();
    assert!(matches!(err, SalesError::TooManyPendingOrders(_)), "{err}");
    assert_eq!(refused(&db, me, go(sixth, "order-6")).await, "WS006");
    // A pending order past its time does not count.
    owner_sql(
        &db,
        &format!(
            "UPDATE sales.orders SET expires_at = now() - interval '1 second' WHERE id = '{first}'"
        ),
    )
    .await;
    checkout(&db, me, sixth, "order-6").await.unwrap();
    db.with_tenant(DbRole::App, me, async |tx| {
        Ok(sales::cleanup_expired_orders(tx).await?)
    })
    .await
    .unwrap();
    assert_eq!(
        owner_value(
            &db,
            &format!("SELECT status::text FROM sales.orders WHERE id = '{first}'")
        )
        .await,
        "expired"
    );

    // The rules function, called on a stored order, as other languages do.
    let valid: bool = db
        .with_tenant(DbRole::App, me, async |tx| {
            Ok(tx
                .query_one(
                    "SELECT true FROM sales.orders o, sales.validate_order_business_rules(o) WHERE o.id = $1",
                    &[&first],
                )
                .await?
                .get(0))
        })
        .await
        .unwrap();
    assert!(valid);

    // Illegal transitions: a cancelled order is not paid (WS007) even by the owner.
    db.with_tenant(DbRole::App, me, async |tx| {
        let c = sales::cancel_order(tx, first).await?;
        assert!(!c, "an expired order is not cancelled again");
        Ok(())
    })
    .await
    .unwrap();
    let err = db
        .pool(DbRole::Owner)
        .get()
        .await
        .unwrap()
        .execute(
            &format!("UPDATE sales.orders SET status = 'paid' WHERE id = '{first}'"),
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "WS007");
    // The application writes no order, item or history row directly.
    for sql in [
        format!("UPDATE sales.orders SET status = 'paid' WHERE id = '{first}'"),
        format!("UPDATE sales.orders SET total_amount = 1 WHERE id = '{first}'"),
        format!("DELETE FROM sales.orders WHERE id = '{first}'"),
        format!("DELETE FROM sales.order_status_history WHERE order_id = '{first}'"),
        format!("UPDATE sales.order_items SET unit_price = 0 WHERE order_id = '{first}'"),
        format!("UPDATE sales.carts SET status = 'open' WHERE id = '{fifty}'"),
        "SELECT sales.expire_orders(NULL, 10)".to_owned(),
    ] {
        assert_eq!(
            refused(&db, me, async |tx| Ok(tx.batch_execute(&sql).await?)).await,
            "42501",
            "{sql}"
        );
    }
}

#[tokio::test]
async fn twenty_concurrent_checkouts_for_five_units_make_exactly_five_orders() {
    let db = Arc::new(TestDb::builder().pool_size(20).build().await);
    let [a] = db.tenants().await;
    let last = product(&db, a.tenant(), "25.00", 5).await;
    let filler = product(&db, a.tenant(), "1.00", 1000).await;
    let mut buyers = Vec::new();
    for _ in 0..20 {
        let who = buyer(&db, a.organization_id).await;
        // Two items, the scarce one last in product order half of the time.
        let cart = cart(&db, who, &[(filler, 1), (last, 1)]).await;
        buyers.push((who, cart));
    }
    let barrier = Arc::new(Barrier::new(buyers.len()));
    let mut tasks = Vec::new();
    for (i, (who, cart)) in buyers.into_iter().enumerate() {
        let db = db.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            checkout(&db, who, cart, &format!("race-{i}")).await
        }));
    }
    let mut placed = 0;
    let mut sold_out = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => placed += 1,
            Err(SalesError::OutOfStock(_)) => sold_out += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((placed, sold_out), (5, 15));
    assert_eq!(db.count("sales.orders").await, 5);
    assert_eq!(
        owner_value(&db, &format!("SELECT on_hand || ':' || reserved FROM inventory.stock_levels WHERE product_id = '{last}'")).await,
        "5:5"
    );
    assert_eq!(
        owner_value(&db, &format!("SELECT on_hand || ':' || reserved FROM inventory.stock_levels WHERE product_id = '{filler}'")).await,
        "1000:5",
        "the refused checkouts' first items were given back"
    );
}

#[tokio::test]
async fn concurrent_checkouts_with_one_key_make_one_order() {
    let db = Arc::new(TestDb::builder().pool_size(10).build().await);
    let [a] = db.tenants().await;
    let me = buyer(&db, a.organization_id).await;
    let p = product(&db, a.tenant(), "15.00", 100).await;
    let cart_id = cart(&db, me, &[(p, 2)]).await;
    let barrier = Arc::new(Barrier::new(10));
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let db = db.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            checkout(&db, me, cart_id, "same-key").await
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap().unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(db.count("sales.orders").await, 1);
    assert_eq!(db.count("sales.order_items").await, 1);
    assert_eq!(
        owner_value(&db, "SELECT count(*)::text FROM messaging.outbox_messages WHERE topic = 'sales.order_placed'").await,
        "1"
    );
    assert_eq!(
        owner_value(
            &db,
            &format!("SELECT reserved::text FROM inventory.stock_levels WHERE product_id = '{p}'")
        )
        .await,
        "2"
    );
}

#[tokio::test]
async fn a_purchase_authorizes_captures_settles_and_refunds_with_its_log() {
    let db = TestDb::builder().pool_size(4).build().await;
    let [a] = db.tenants().await;
    let me = buyer(&db, a.organization_id).await;
    let clerk = a.tenant();
    let p = product(&db, a.tenant(), "20.00", 10).await;
    let placed = order(&db, me, &[(p, 3)]).await;
    let method = card(&db, me).await;
    let payment = authorize(&db, me, placed, method).await.unwrap();
    // The merchant (another user of the tenant) captures 50.00 of 60.00.
    capture(&db, clerk, payment, Some("50.00")).await.unwrap();
    assert_eq!(
        owner_value(&db, &format!("SELECT on_hand || ':' || reserved FROM inventory.stock_levels WHERE product_id = '{p}'")).await,
        "7:0",
        "capture sells the reservations"
    );
    assert_eq!(
        owner_value(&db, &format!("SELECT string_agg(kind || ' ' || quantity, ',') FROM inventory.movements WHERE product_id = '{p}'")).await,
        "receipt 10,sale -3"
    );
    db.with_tenant(DbRole::App, clerk, async |tx| {
        Ok(payments::settle(tx, payment).await?)
    })
    .await
    .unwrap();
    refund(&db, clerk, payment, "20.00").await.unwrap();
    let err = refund(&db, clerk, payment, "30.01").await.unwrap_err();
    assert!(matches!(err, PaymentError::AmountExceeded(_)), "{err}");
    assert_eq!(err.available(), Some("30.00".parse().unwrap()));
    refund(&db, clerk, payment, "30.00").await.unwrap();
    let (paid, sold) = db
        .with_tenant(DbRole::App, me, async |tx| {
            Ok((
                payments::payment(tx, payment).await?.unwrap(),
                sales::order(tx, placed).await?.unwrap(),
            ))
        })
        .await
        .unwrap();
    assert_eq!(paid.status, PaymentStatus::Refunded);
    assert_eq!(paid.refunded_amount, "50.00".parse::<Decimal>().unwrap());
    assert_eq!(sold.status, OrderStatus::Refunded);
    assert_eq!(
        owner_value(&db, &format!("SELECT string_agg(kind || ':' || amount || ':' || status_after, ',' ORDER BY id) FROM payments.payment_transactions WHERE payment_id = '{payment}'")).await,
        "authorization:60.00:authorized,capture:50.00:captured,settlement:50.00:settled,refund:20.00:settled,refund:30.00:refunded"
    );
    assert_eq!(
        owner_value(&db, &format!("SELECT string_agg(coalesce(from_status::text, '-') || '>' || to_status, ',' ORDER BY id) FROM sales.order_status_history WHERE order_id = '{placed}'")).await,
        "->pending,pending>paid,paid>refunded"
    );
    assert_eq!(
        owner_value(
            &db,
            "SELECT string_agg(topic, ',' ORDER BY id) FROM messaging.outbox_messages"
        )
        .await,
        "sales.order_placed,payments.payment_captured,payments.payment_refunded,payments.payment_refunded"
    );
}

#[tokio::test]
async fn every_payment_rule_refuses_with_its_error_and_writes_nothing() {
    let db = TestDb::builder().pool_size(4).build().await;
    let [a, b] = db.tenants().await;
    let org = a.organization_id;
    let me = buyer(&db, org).await;
    let other = buyer(&db, org).await;
    let p = product(&db, a.tenant(), "20.00", 100).await;
    let placed = order(&db, me, &[(p, 1)]).await;
    let mine = card(&db, me).await;
    let theirs = card(&db, other).await;

    let auth = |order: Uuid, method: Uuid| {
        async move |tx: &deadpool_postgres::Transaction<'_>| {
            Ok(payments::authorize(tx, order, method).await?)
        }
    };
    let cap = |payment: Uuid, amount: Option<&str>| {
        let amount = amount.map(|a| a.parse::<Decimal>().unwrap());
        async move |tx: &deadpool_postgres::Transaction<'_>| {
            Ok(payments::capture(tx, payment, amount).await?)
        }
    };
    let back = |payment: Uuid, amount: &str| {
        let request = RefundRequest {
            payment_id: payment,
            amount: amount.parse().unwrap(),
            reason: "returned".into(),
        };
        async move |tx: &deadpool_postgres::Transaction<'_>| {
            Ok(payments::refund(tx, &request).await?)
        }
    };

    // Authorization: another user's method or order, an expired or removed card.
    assert_eq!(refused(&db, me, auth(placed, theirs)).await, "WY004");
    assert_eq!(refused(&db, other, auth(placed, theirs)).await, "WY001");
    assert_eq!(
        refused(&db, Tenant::organization(org), auth(placed, mine)).await,
        "42501"
    );
    let old = db
        .with_tenant(DbRole::App, me, async |tx| {
            Ok(payments::add_payment_method(
                tx,
                &NewPaymentMethod::card("tok_expired_card", "visa", "0005", 1, 2020),
            )
            .await?
            .id)
        })
        .await
        .unwrap();
    assert_eq!(refused(&db, me, auth(placed, old)).await, "WY004");
    // Capture before authorization (no payment), refund before capture.
    assert_eq!(refused(&db, me, cap(Uuid::new_v4(), None)).await, "WY001");
    let payment = authorize(&db, me, placed, mine).await.unwrap();
    assert_eq!(refused(&db, me, back(payment, "1.00")).await, "WY002");
    // A second authorization of the order: WY005.
    assert_eq!(refused(&db, me, auth(placed, mine)).await, "WY005");
    // Above the authorized amount, zero, negative.
    assert_eq!(refused(&db, me, cap(payment, Some("20.01"))).await, "WY003");
    assert_eq!(refused(&db, me, cap(payment, Some("0"))).await, "22023");
    assert_eq!(refused(&db, me, cap(payment, Some("-5"))).await, "22023");
    // Another tenant sees no such payment.
    let outsider = b.tenant();
    assert_eq!(refused(&db, outsider, cap(payment, None)).await, "WY001");
    // Void, then capture after void: WY002; void again: WY002.
    db.with_tenant(DbRole::App, me, async |tx| {
        Ok(payments::void(tx, payment).await?)
    })
    .await
    .unwrap();
    assert_eq!(refused(&db, me, cap(payment, None)).await, "WY002");
    assert_eq!(
        refused(&db, me, async |tx| Ok(payments::void(tx, payment).await?)).await,
        "WY002"
    );
    // The order stays pending: it is paid with a new authorization.
    let second = authorize(&db, me, placed, mine).await.unwrap();
    capture(&db, me, second, None).await.unwrap();
    // Paid: no more authorizations (WY005), no capture again (WY002), no cancel (WS007).
    assert_eq!(refused(&db, me, auth(placed, mine)).await, "WY005");
    assert_eq!(refused(&db, me, cap(second, None)).await, "WY002");
    assert_eq!(
        refused(&db, me, async |tx| Ok(
            sales::cancel_order(tx, placed).await?
        ))
        .await,
        "WS007"
    );
    // Refunds: above what was captured, no reason, a reason too long.
    assert_eq!(refused(&db, me, back(second, "20.01")).await, "WY003");
    assert_eq!(
        refused(&db, me, async |tx| Ok(tx
            .execute("SELECT payments.refund_payment($1, 1, '')", &[&second])
            .await?))
        .await,
        "22023"
    );
    assert_eq!(
        refused(&db, me, async |tx| Ok(tx
            .execute("SELECT payments.refund_payment($1, 1, NULL)", &[&second])
            .await?))
        .await,
        "22004"
    );
    let long = "x".repeat(501);
    assert_eq!(
        refused(&db, me, async |tx| Ok(tx
            .execute(
                "SELECT payments.refund_payment($1, 1, $2)",
                &[&second, &long]
            )
            .await?))
        .await,
        "54000"
    );
    // An expired order is not authorized (WY006).
    let late = order(&db, me, &[(p, 1)]).await;
    owner_sql(
        &db,
        &format!(
            "UPDATE sales.orders SET expires_at = now() - interval '1 second' WHERE id = '{late}'"
        ),
    )
    .await;
    assert_eq!(refused(&db, me, auth(late, mine)).await, "WY006");

    // The application never writes payments, refunds or the log directly; the log and
    // refunds refuse even the owner (WY007).
    refund(&db, me, second, "5.00").await.unwrap();
    for sql in [
        format!("UPDATE payments.payments SET status = 'captured' WHERE id = '{payment}'"),
        format!("UPDATE payments.payments SET refunded_amount = 0 WHERE id = '{second}'"),
        format!(
            "INSERT INTO payments.refunds (organization_id, payment_id, amount, reason) VALUES ('{org}', '{second}', 1, 'x')"
        ),
        format!("DELETE FROM payments.payment_transactions WHERE payment_id = '{second}'"),
        format!(
            "UPDATE payments.payment_methods SET user_id = '{}' WHERE id = '{mine}'",
            other.user_id.unwrap()
        ),
    ] {
        assert_eq!(
            refused(&db, me, async |tx| Ok(tx.batch_execute(&sql).await?)).await,
            "42501",
            "{sql}"
        );
    }
    let owner = db.pool(DbRole::Owner).get().await.unwrap();
    for sql in [
        "UPDATE payments.payment_transactions SET amount = 0".to_owned(),
        "DELETE FROM payments.refunds".to_owned(),
        "TRUNCATE payments.payment_transactions CASCADE".to_owned(),
        format!("UPDATE payments.payments SET status = 'authorized' WHERE id = '{second}'"),
    ] {
        let err = owner.batch_execute(&sql).await.unwrap_err();
        let expected = if sql.contains("status") {
            "WY002"
        } else {
            "WY007"
        };
        assert_eq!(err.code().unwrap().code(), expected, "{sql}: {err}");
    }
    // A refund written by hand above the captured amount fails the payment's CHECK.
    let err = owner
        .batch_execute(&format!(
            "INSERT INTO payments.refunds (organization_id, payment_id, amount, reason) VALUES ('{org}', '{second}', 15.01, 'x')"
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "23514", "{err}");
}

#[tokio::test]
async fn ten_concurrent_refunds_of_a_quarter_let_at_most_four_through() {
    let db = Arc::new(TestDb::builder().pool_size(10).build().await);
    let [a] = db.tenants().await;
    let me = buyer(&db, a.organization_id).await;
    let p = product(&db, a.tenant(), "40.00", 10).await;
    let placed = order(&db, me, &[(p, 1)]).await;
    let method = card(&db, me).await;
    let payment = authorize(&db, me, placed, method).await.unwrap();
    capture(&db, me, payment, None).await.unwrap();
    let barrier = Arc::new(Barrier::new(10));
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let db = db.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            refund(&db, me, payment, "10.00").await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(PaymentError::AmountExceeded(_)) | Err(PaymentError::InvalidTransition(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(ok, 4);
    assert_eq!(
        owner_value(&db, &format!("SELECT status || ' ' || refunded_amount || ' ' || (SELECT sum(amount) FROM payments.refunds) FROM payments.payments WHERE id = '{payment}'")).await,
        "refunded 40.00 40.00"
    );
}

#[tokio::test]
async fn expired_orders_and_payments_give_their_stock_back() {
    let db = TestDb::builder().pool_size(4).build().await;
    let [a, b] = db.tenants().await;
    let me = buyer(&db, a.organization_id).await;
    let p = product(&db, a.tenant(), "20.00", 10).await;
    let unpaid = order(&db, me, &[(p, 2)]).await;
    let authorized = order(&db, me, &[(p, 3)]).await;
    let cancelled = order(&db, me, &[(p, 1)]).await;
    let method = card(&db, me).await;
    let payment = authorize(&db, me, authorized, method).await.unwrap();
    let stock = format!(
        "SELECT on_hand || ':' || reserved FROM inventory.stock_levels WHERE product_id = '{p}'"
    );
    assert_eq!(owner_value(&db, &stock).await, "10:6");

    // Cancelling gives the stock back.
    assert!(
        db.with_tenant(DbRole::App, me, async |tx| Ok(sales::cancel_order(
            tx, cancelled
        )
        .await?))
            .await
            .unwrap()
    );
    assert_eq!(owner_value(&db, &stock).await, "10:5");

    owner_sql(
        &db,
        &format!(
            "UPDATE sales.orders SET expires_at = now() - interval '1 second' WHERE id IN ('{unpaid}', '{authorized}');
             UPDATE payments.payments SET expires_at = now() - interval '1 second' WHERE id = '{payment}';"
        ),
    )
    .await;
    // Another tenant's clean-up touches nothing of this one.
    let theirs = db
        .with_tenant(DbRole::App, b.tenant(), async |tx| {
            Ok((
                sales::cleanup_expired_orders(tx).await?,
                payments::cleanup_expired_payments(tx).await?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(theirs, (0, 0));
    // The expired authorization expires with its order; capture is refused meanwhile.
    let err = capture(&db, me, payment, None).await.unwrap_err();
    assert!(matches!(err, PaymentError::Expired(_)), "{err}");
    let expired = db
        .with_tenant(DbRole::App, me, async |tx| {
            Ok(payments::cleanup_expired_payments(tx).await?)
        })
        .await
        .unwrap();
    assert_eq!(expired, 1);
    assert_eq!(owner_value(&db, &stock).await, "10:2");
    // The worker, with no tenant, expires every tenant's orders.
    let worker = db.pool(DbRole::Worker).get().await.unwrap();
    let n: i32 = worker
        .query_one("SELECT sales.cleanup_expired_orders()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    assert_eq!(owner_value(&db, &stock).await, "10:0");
    assert_eq!(
        owner_value(&db, "SELECT string_agg(o.status || '/' || coalesce((SELECT string_agg(p.status::text, ',') FROM payments.payments p WHERE p.order_id = o.id), '-'), ' ' ORDER BY o.created_at) FROM sales.orders o").await,
        "expired/- expired/expired cancelled/-"
    );
    assert_eq!(
        owner_value(
            &db,
            "SELECT string_agg(DISTINCT status::text, ',') FROM inventory.reservations"
        )
        .await,
        "expired,released"
    );
    // Without a tenant the application role cleans nothing up.
    let app = db.pool(DbRole::App).get().await.unwrap();
    for sql in [
        "SELECT sales.cleanup_expired_orders()",
        "SELECT payments.cleanup_expired_payments()",
    ] {
        let err = app.query_one(sql, &[]).await.unwrap_err();
        assert_eq!(err.code().unwrap().code(), "42501", "{sql}");
    }
}

#[tokio::test]
async fn carts_and_payment_methods_are_the_users_own_and_tenants_stay_apart() {
    let db = TestDb::builder().pool_size(4).build().await;
    let [a, b] = db.tenants().await;
    let me = buyer(&db, a.organization_id).await;
    let other = buyer(&db, a.organization_id).await;
    let p = product(&db, a.tenant(), "20.00", 10).await;
    let placed = order(&db, me, &[(p, 1)]).await;
    let mine = cart(&db, me, &[(p, 1)]).await;
    let method = card(&db, me).await;

    let db = &db;
    let seen = async |who: Tenant| {
        db.with_tenant(DbRole::App, who, async |tx| {
            let row = tx
                .query_one(
                    "SELECT (SELECT count(*) FROM sales.carts), (SELECT count(*) FROM sales.cart_items),
                            (SELECT count(*) FROM payments.payment_methods), (SELECT count(*) FROM sales.orders)",
                    &[],
                )
                .await?;
            Ok((row.get::<_, i64>(0), row.get::<_, i64>(1), row.get::<_, i64>(2), row.get::<_, i64>(3)))
        })
        .await
        .unwrap()
    };
    // Mine: the open cart and the checked-out one, with their items; my card; my order.
    assert_eq!(seen(me).await, (2, 2, 1, 1));
    // Another user of the tenant sees the tenant's orders, none of my carts or cards.
    assert_eq!(seen(other).await, (0, 0, 0, 1));
    // Another tenant sees nothing.
    assert_eq!(seen(b.tenant()).await, (0, 0, 0, 0));
    // Another user cannot add to my cart, or use my card.
    let before = written(db).await;
    let err = db
        .with_tenant(DbRole::App, other, async |tx| {
            Ok(sales::add_to_cart(tx, mine, p, 1).await?)
        })
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "42501", "{err}");
    assert_eq!(written(db).await, before);
    let err = authorize(db, other, placed, method).await.unwrap_err();
    assert!(matches!(err, PaymentError::NotFound(_)), "{err}");
    // One default method per user.
    let second = card(db, me).await;
    for m in [method, second] {
        db.with_tenant(DbRole::App, me, async |tx| {
            Ok(payments::set_default_payment_method(tx, m).await?)
        })
        .await
        .unwrap();
    }
    assert_eq!(
        owner_value(
            db,
            "SELECT string_agg(id::text, ',') FROM payments.payment_methods WHERE is_default"
        )
        .await,
        second.to_string()
    );
}

#[tokio::test]
async fn no_column_can_hold_a_card_number() {
    let db = TestDb::new().await;
    let owner = db.pool(DbRole::Owner).get().await.unwrap();
    let [a] = db.tenants().await;
    // None exists today.
    let found: i64 = owner
        .query_one(
            "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND a.attnum > 0
               AND a.attname ~* '(card_?num|^pan$|_pan$|primary_account_number|^cvv|_cvv|^cvc|_cvc|security_code)'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(found, 0);
    // A token that holds a card number is refused.
    for token in [
        "4242424242424242",
        "tok_4242 4242 4242 4242",
        "pm-378282246310005",
    ] {
        let err = db
            .with_tenant(DbRole::App, a.tenant(), async |tx| {
                Ok(payments::add_payment_method(
                    tx,
                    &NewPaymentMethod::card(token, "visa", "4242", 12, 2099),
                )
                .await?)
            })
            .await
            .unwrap_err();
        assert_eq!(err.code().unwrap().code(), "23514", "{token}: {err}");
    }
    // A long number that is not one (Luhn fails), or a UUID's digits, is a token like
    // any other.
    db.with_tenant(DbRole::App, a.tenant(), async |tx| {
        Ok(payments::add_payment_method(
            tx,
            &NewPaymentMethod::card(
                "ref_00907314-3745-4519-8694-b911a605733b",
                "visa",
                "4241",
                12,
                2099,
            ),
        )
        .await?)
    })
    .await
    .unwrap();
    db.with_tenant(DbRole::App, a.tenant(), async |tx| {
        Ok(payments::add_payment_method(
            tx,
            &NewPaymentMethod::card("ref_4242424242424241", "visa", "4241", 12, 2099),
        )
        .await?)
    })
    .await
    .unwrap();
    // And no such column can be made, in any schema, even by the owner.
    for sql in [
        "CREATE TABLE public.cards (card_number text)",
        "ALTER TABLE payments.payment_methods ADD COLUMN cvv text",
        "CREATE TABLE public.pans AS SELECT '4242424242424242'::text AS pan",
    ] {
        let err = owner.batch_execute(sql).await.unwrap_err();
        assert_eq!(err.code().unwrap().code(), "42501", "{sql}: {err}");
    }
}

#[tokio::test]
async fn the_sales_and_payments_services_each_do_their_part_and_no_more() {
    let db = TestDb::builder().pool_size(4).build().await;
    let [a] = db.tenants().await;
    let me = buyer(&db, a.organization_id).await;
    let p = product(&db, a.tenant(), "20.00", 10).await;
    let cart_id = cart(&db, me, &[(p, 2)]).await;
    let method = card(&db, me).await;
    let request = Checkout::new(cart_id, "svc-1");
    let placed = db
        .with_tenant(DbRole::SalesService, me, async |tx| {
            Ok(sales::checkout(tx, &request).await?)
        })
        .await
        .unwrap();
    let payment = db
        .with_tenant(DbRole::PaymentsService, me, async |tx| {
            let payment = payments::authorize(tx, placed, method).await?;
            payments::capture(tx, payment, None).await?;
            Ok(payment)
        })
        .await
        .unwrap();
    assert_eq!(
        owner_value(
            &db,
            &format!("SELECT status::text FROM sales.orders WHERE id = '{placed}'")
        )
        .await,
        "paid"
    );
    // Neither reaches into the other's functions or tables, nor into stock.
    for (role, sql) in [
        (
            DbRole::SalesService,
            format!("SELECT payments.refund_payment('{payment}', 1, 'x')"),
        ),
        (
            DbRole::SalesService,
            "SELECT count(*) FROM payments.payments".to_owned(),
        ),
        (
            DbRole::PaymentsService,
            format!("SELECT sales.cancel_order('{placed}')"),
        ),
        (
            DbRole::PaymentsService,
            "SELECT count(*) FROM sales.orders".to_owned(),
        ),
        (
            DbRole::SalesService,
            "UPDATE inventory.stock_levels SET on_hand = 0".to_owned(),
        ),
        (
            DbRole::AnalyticsService,
            format!("SELECT payments.void_payment('{payment}')"),
        ),
    ] {
        let before = written(&db).await;
        let err = db
            .with_tenant(role, me, async |tx| Ok(tx.batch_execute(&sql).await?))
            .await
            .unwrap_err();
        assert_eq!(
            err.code().unwrap().code(),
            "42501",
            "{role:?}: {sql}: {err}"
        );
        assert_eq!(written(&db).await, before);
    }
    // The analytics role reads both schemas' figures.
    let days: i64 = db
        .with_tenant(DbRole::AnalyticsService, me, async |tx| {
            Ok(tx
                .query_one(
                    "SELECT (SELECT count(*) FROM sales.order_analytics) + (SELECT count(*) FROM payments.payment_analytics)",
                    &[],
                )
                .await?
                .get(0))
        })
        .await
        .unwrap();
    assert_eq!(days, 2);
}
