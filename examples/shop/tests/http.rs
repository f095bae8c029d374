//! The shop over real HTTP: the service on 127.0.0.1, a database of its own per test
//! (connected as the application role, the relay as a relay role), and reqwest as the
//! client. A full purchase, a retried checkout, the last units raced for, and the
//! refusals of bad credentials and input.

use std::sync::Arc;
use std::time::Duration;

use groundwork::identity::{NewApiKey, issue_api_key};
use groundwork::outbox::RelayRound;
use groundwork_testing::fixtures::{MemberFixture, ProductFixture, UserFixture};
use groundwork_testing::{DbRole, TestDb};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use shop::{LogPublisher, Shop};
use tokio::sync::{Barrier, oneshot};
use uuid::Uuid;

static PUBLISHER: LogPublisher = LogPublisher;

/// The shop serving one test's database, and an API key of its organization.
struct Running {
    db: TestDb,
    base: String,
    http: reqwest::Client,
    organization_id: Uuid,
    /// The organization's owner.
    user_id: Uuid,
    key: String,
    stop_relay: Option<oneshot::Sender<()>>,
    relay: Option<tokio::task::JoinHandle<RelayRound>>,
}

async fn start() -> Running {
    let db = TestDb::builder().pool_size(12).build().await;
    let [tenant] = db.tenants().await;
    let key = db
        .with_tenant(DbRole::App, tenant.tenant(), async |tx| {
            Ok(issue_api_key(tx, &NewApiKey::new("shop tests"))
                .await
                .expect("issuing an API key")
                .plaintext)
        })
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(shop::serve(
        listener,
        Shop::new(db.pool(DbRole::App).clone()),
    ));
    let (stop_relay, stopped) = oneshot::channel::<()>();
    let relay = tokio::spawn(shop::run_relay(
        db.pool(DbRole::Relay).clone(),
        &PUBLISHER,
        async {
            stopped.await.ok();
        },
    ));
    Running {
        db,
        base,
        http: reqwest::Client::new(),
        organization_id: tenant.organization_id,
        user_id: tenant.user_id,
        key,
        stop_relay: Some(stop_relay),
        relay: Some(relay),
    }
}

impl Running {
    /// A request with the API key, acting for `user`.
    fn request(&self, method: reqwest::Method, path: &str, user: Uuid) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .header("X-User-Id", user.to_string())
    }

    async fn get(&self, path: &str, user: Uuid) -> (StatusCode, Value) {
        send(self.request(reqwest::Method::GET, path, user)).await
    }

    async fn post(&self, path: &str, user: Uuid, body: Value) -> (StatusCode, Value) {
        send(self.request(reqwest::Method::POST, path, user).json(&body)).await
    }

    async fn checkout(&self, user: Uuid, cart_id: &Value, key: &str) -> (StatusCode, Value) {
        send(
            self.request(reqwest::Method::POST, "/checkout", user)
                .header("Idempotency-Key", key)
                .json(&json!({ "cart_id": cart_id })),
        )
        .await
    }

    /// A new active member of the organization.
    async fn member(&self) -> Uuid {
        let user = self.db.insert(UserFixture::default()).await.id;
        self.db
            .insert(MemberFixture::new(self.organization_id, user))
            .await;
        user
    }

    /// A product at `price` with `stock` units.
    async fn product(&self, name: &str, price: &str, stock: i32) -> Uuid {
        let tenant = groundwork::tenant::Tenant::new(self.organization_id, self.user_id);
        self.db
            .insert(
                ProductFixture::new(tenant)
                    .name(name)
                    .price(price.parse::<Decimal>().unwrap())
                    .stock(stock),
            )
            .await
            .id
    }

    /// A value read as the owner (set-up and checks only).
    async fn owner_value(&self, sql: &str) -> String {
        let client = self.db.pool(DbRole::Owner).get().await.unwrap();
        client
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0)
    }

    async fn stock(&self, product: Uuid) -> String {
        self.owner_value(&format!(
            "SELECT on_hand || ':' || reserved FROM inventory.stock_levels WHERE product_id = '{product}'"
        ))
        .await
    }

    /// Stops the relay and returns what it did.
    async fn stop_relay(&mut self) -> RelayRound {
        self.stop_relay.take().unwrap().send(()).ok();
        self.relay.take().unwrap().await.unwrap()
    }
}

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("the shop answers");
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

#[tokio::test]
async fn a_full_purchase() {
    let mut shop = start().await;
    let buyer = shop.member().await;
    let lamp = shop.product("Brass desk lamp", "20.00", 10).await;
    shop.product("Oak bookshelf", "120.00", 3).await;

    // Search finds the lamp, with its stock.
    let (status, found) = shop.get("/products?q=lamp&in_stock=true", buyer).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let products = found["products"].as_array().unwrap();
    assert_eq!(products.len(), 1, "{found}");
    assert_eq!(products[0]["id"], json!(lamp));
    assert_eq!(products[0]["price"], json!("20.00"));
    assert_eq!(products[0]["available"], json!(10));
    let (_, cheap) = shop.get("/products?max_price=50", buyer).await;
    assert_eq!(cheap["products"].as_array().unwrap().len(), 1, "{cheap}");
    let (status, details) = shop.get(&format!("/products/{lamp}"), buyer).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(details["stock"]["available"], json!(10));

    // Two lamps in the cart.
    let (status, cart) = shop
        .post(
            "/cart/items",
            buyer,
            json!({ "product_id": lamp, "quantity": 2 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cart}");
    assert_eq!(cart["total"], json!("40.00"));
    let (_, cart) = shop.get("/cart", buyer).await;
    assert_eq!(cart["items"][0]["quantity"], json!(2));
    assert_eq!(cart["currency"], json!("USD"));

    // Checkout: a pending order holding two units.
    let (status, order) = shop.checkout(buyer, &cart["cart_id"], "purchase-1").await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["status"], json!("pending"));
    assert_eq!(order["total"], json!("40.00"));
    assert_eq!(order["items"][0]["product_id"], json!(lamp));
    let order_id = order["order_id"].as_str().unwrap().to_owned();
    assert_eq!(shop.stock(lamp).await, "10:2");
    let (status, _) = shop.get("/cart", buyer).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the cart was checked out");

    // A card, an authorization, a capture: the order is paid and the units are sold.
    let (status, card) = shop
        .post(
            "/payment-methods",
            buyer,
            json!({ "token": "tok_visa_4242", "brand": "visa", "last_four": "4242",
                    "exp_month": 12, "exp_year": 2040 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{card}");
    let (status, payment) = shop
        .post(
            &format!("/orders/{order_id}/payments"),
            buyer,
            json!({ "payment_method_id": card["payment_method_id"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{payment}");
    assert_eq!(payment["status"], json!("authorized"));
    assert_eq!(payment["amount"], json!("40.00"));
    let payment_id = payment["payment_id"].as_str().unwrap().to_owned();
    let (status, payment) = send(shop.request(
        reqwest::Method::POST,
        &format!("/payments/{payment_id}/capture"),
        buyer,
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{payment}");
    assert_eq!(payment["status"], json!("captured"));
    assert_eq!(payment["captured_amount"], json!("40.00"));
    let (_, order) = shop.get(&format!("/orders/{order_id}"), buyer).await;
    assert_eq!(order["status"], json!("paid"));
    assert_eq!(shop.stock(lamp).await, "8:0");

    // Paid: no longer cancellable.
    let (status, refused) = shop
        .post(&format!("/orders/{order_id}/cancel"), buyer, json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["code"], json!("WS007"));

    // A partial refund, then one above what is left.
    let refunds = format!("/payments/{payment_id}/refunds");
    let (status, refund) = shop
        .post(
            &refunds,
            buyer,
            json!({ "amount": "15.00", "reason": "scratched" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{refund}");
    assert_eq!(refund["payment"]["refunded_amount"], json!("15.00"));
    let (status, refused) = shop
        .post(
            &refunds,
            buyer,
            json!({ "amount": "30.00", "reason": "again" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["code"], json!("WY003"));
    assert_eq!(refused["detail"]["available"], json!(25.00));

    // The relay delivers the order's outbox message.
    let delivered = "SELECT count(*)::text FROM messaging.outbox_messages
                     WHERE topic = 'sales.order_placed' AND status = 'delivered'";
    for _ in 0..100 {
        if shop.owner_value(delivered).await == "1" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(shop.owner_value(delivered).await, "1");
    assert!(shop.stop_relay().await.delivered >= 1);
}

#[tokio::test]
async fn a_retried_checkout_returns_the_same_order() {
    let shop = start().await;
    let buyer = shop.member().await;
    let product = shop.product("Walnut tray", "12.50", 10).await;
    let (_, cart) = shop
        .post(
            "/cart/items",
            buyer,
            json!({ "product_id": product, "quantity": 2 }),
        )
        .await;

    let (status, first) = shop.checkout(buyer, &cart["cart_id"], "retry-7f3a").await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    // The same request again, and twice more at once: the same order each time.
    let (status, again) = shop.checkout(buyer, &cart["cart_id"], "retry-7f3a").await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["order_id"], first["order_id"]);
    let (a, b) = tokio::join!(
        shop.checkout(buyer, &cart["cart_id"], "retry-7f3a"),
        shop.checkout(buyer, &cart["cart_id"], "retry-7f3a"),
    );
    assert_eq!(a.1["order_id"], first["order_id"]);
    assert_eq!(b.1["order_id"], first["order_id"]);
    assert_eq!(
        shop.owner_value("SELECT count(*)::text FROM sales.orders")
            .await,
        "1"
    );
    assert_eq!(shop.stock(product).await, "10:2");

    // The key belongs to that checkout: another cart under it is refused.
    let (_, other) = shop
        .post(
            "/cart/items",
            buyer,
            json!({ "product_id": product, "quantity": 1 }),
        )
        .await;
    assert_ne!(other["cart_id"], cart["cart_id"]);
    let (status, refused) = shop.checkout(buyer, &other["cart_id"], "retry-7f3a").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["code"], json!("WS008"));
    assert_eq!(
        shop.owner_value("SELECT count(*)::text FROM sales.orders")
            .await,
        "1"
    );
}

#[tokio::test]
async fn twenty_buyers_race_for_the_last_five_units() {
    const BUYERS: usize = 20;
    let shop = Arc::new(start().await);
    let product = shop.product("Limited print", "25.00", 5).await;
    let mut carts = Vec::new();
    for _ in 0..BUYERS {
        let buyer = shop.member().await;
        let (status, cart) = shop
            .post(
                "/cart/items",
                buyer,
                json!({ "product_id": product, "quantity": 1 }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{cart}");
        carts.push((buyer, cart["cart_id"].clone()));
    }

    let start_line = Arc::new(Barrier::new(BUYERS));
    let racers = carts.into_iter().enumerate().map(|(i, (buyer, cart))| {
        let shop = shop.clone();
        let start_line = start_line.clone();
        tokio::spawn(async move {
            start_line.wait().await;
            shop.checkout(buyer, &cart, &format!("race-{i}")).await
        })
    });
    let mut placed = 0;
    let mut sold_out = 0;
    for racer in racers.collect::<Vec<_>>() {
        let (status, body) = racer.await.unwrap();
        match status {
            StatusCode::CREATED => placed += 1,
            StatusCode::CONFLICT => {
                assert_eq!(body["code"], json!("WN002"), "{body}");
                sold_out += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((placed, sold_out), (5, BUYERS - 5));
    assert_eq!(
        shop.owner_value("SELECT count(*)::text FROM sales.orders")
            .await,
        "5"
    );
    assert_eq!(shop.stock(product).await, "5:5");
}

#[tokio::test]
async fn bad_credentials_and_input_are_refused() {
    let shop = start().await;
    let buyer = shop.member().await;
    let url = format!("{}/products", shop.base);

    // No key, a malformed one, a well-formed unknown one: 401.
    let (status, body) = send(shop.http.get(&url)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], json!("28000"));
    let (status, _) = send(shop.http.get(&url).bearer_auth("not-a-key")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let unknown = format!("gw_00000000_{}", "0".repeat(64));
    let (status, _) = send(shop.http.get(&url).bearer_auth(unknown)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A user who is not a member of the key's organization: 403.
    let stranger = shop.db.insert(UserFixture::default()).await.id;
    let (status, body) = shop.get("/products", stranger).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], json!("42501"));
    // No user for the cart: 400; a malformed one: 400.
    let (status, body) = send(
        shop.http
            .get(format!("{}/cart", shop.base))
            .bearer_auth(&shop.key),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], json!("22004"));
    let (status, _) = send(
        shop.http
            .get(format!("{}/cart", shop.base))
            .bearer_auth(&shop.key)
            .header("X-User-Id", "me"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Checkout without an Idempotency-Key: 400, nothing placed.
    let product = shop.product("Linen apron", "18.00", 4).await;
    let (_, cart) = shop
        .post(
            "/cart/items",
            buyer,
            json!({ "product_id": product, "quantity": 1 }),
        )
        .await;
    let (status, body) = shop
        .post("/checkout", buyer, json!({ "cart_id": cart["cart_id"] }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], json!("22004"));
    assert_eq!(
        shop.owner_value("SELECT count(*)::text FROM sales.orders")
            .await,
        "0"
    );

    // A quantity out of range, and a product that is not there.
    let (status, body) = shop
        .post(
            "/cart/items",
            buyer,
            json!({ "product_id": product, "quantity": 0 }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = shop
        .get(&format!("/products/{}", Uuid::new_v4()), buyer)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Below the order minimum of 10.00: a business rule, 422.
    let cheap = shop.product("Tea towel", "4.00", 4).await;
    let other = shop.member().await;
    let (_, cart) = shop
        .post(
            "/cart/items",
            other,
            json!({ "product_id": cheap, "quantity": 1 }),
        )
        .await;
    let (status, body) = shop.checkout(other, &cart["cart_id"], "cheap-1").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], json!("WS004"));
}
