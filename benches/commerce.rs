//! Reservations under contention and product search on a real-sized catalog.
//!
//! One tenant with 100,000 products (names and descriptions from a shop's vocabulary,
//! loaded by the owner in bulk) of which 1,000 have stock. Eight clients, each on its
//! own connection, each operation one tenant transaction (BEGIN with the tenant and
//! user set, the statement, COMMIT), in 4 rounds of 2 seconds per phase, the phases
//! taking turns:
//!
//! - `reserve_hot`: `inventory.reserve_inventory(product, 1)` on ONE product, as the
//!   application role, each by another buyer (12,000 take turns, so none holds more
//!   than one reservation of the product in a phase: the per-user limit of 5 is not
//!   what is measured);
//! - `reserve_spread`: the same across the 1,000 products, picked at random;
//! - the baseline: a plain `UPDATE inventory.stock_levels SET on_hand = on_hand - 1` of
//!   the same rows in the same transaction shape (as the owner, which may write
//!   on_hand), on the one product and across the 1,000, run next to each.
//!
//! Then `catalog.search_products` as the application role: 400 searches (a query of one
//! to three words from the vocabulary, a third with a price range, a fifth in stock
//! only, some with a category), p50 and p95 in milliseconds. The plans inside the
//! functions (auto_explain) are printed for docs/BENCHMARKS.md.
//!
//! Then checkout (`sales.checkout`) of a 3-item cart (three of the 1,000 stocked
//! products, one unit each, picked at random): 8 clients, each checkout one tenant
//! transaction of another buyer as the application role (BEGIN with the tenant and user
//! set, the checkout, COMMIT), next to the baseline of inserting the same order and
//! its three item rows with two plain prepared INSERTs in the same transaction shape
//! (as the owner: the application role may not write orders), in 4 rounds of 2
//! seconds each, taking turns; the carts are made in bulk before each round and every
//! round starts from the same empty order tables.
//!
//! Run with `cargo bench --bench commerce`; the last two lines are
//! `inventory: reserve_hot_per_s=<x> reserve_spread_per_s=<x> update_baseline_per_s=<x> search_p50_ms=<x> search_p95_ms=<x>`,
//! where the baseline is the plain update across the 1,000 products (the line before
//! them gives both baselines and the ratios), and
//! `checkout: checkout_per_s=<x> checkout_p95_ms=<x> baseline_insert_per_s=<x> ratio=<x>`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use groundwork::inventory::reserve;
use groundwork::sales::{Checkout, checkout};
use groundwork::tenant::{Tenant, begin};
use groundwork_testing::{DbRole, TestDb};
use rust_decimal::Decimal;
use uuid::Uuid;

const PRODUCTS: i64 = 100_000;
const STOCKED: usize = 1_000;
const CLIENTS: usize = 8;
const USERS_PER_CLIENT: usize = 1_500;
const SECONDS: u64 = 2;
const ROUNDS: usize = 4;
const SEARCHES: usize = 400;

/// xorshift64*: reproducible picks with no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    }
}

#[derive(Clone, Copy)]
enum Work {
    Reserve,
    Update,
}

/// Operations per second of `CLIENTS` clients for `SECONDS`, each on its own
/// connection, on `products` (one: hot).
async fn run(
    db: &Arc<TestDb>,
    org: Uuid,
    users: &Arc<Vec<Uuid>>,
    products: &Arc<Vec<Uuid>>,
    work: Work,
) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (db, users, products, stop) =
            (db.clone(), users.clone(), products.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let role = match work {
                Work::Reserve => DbRole::App,
                Work::Update => DbRole::Owner,
            };
            let mut client = db.pool(role).get().await.unwrap();
            let update = client
                .prepare("UPDATE inventory.stock_levels SET on_hand = on_hand - 1 WHERE organization_id = $1 AND product_id = $2")
                .await
                .unwrap();
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (c as u64 + 1));
            let mut done = 0usize;
            while !stop.load(Ordering::Relaxed) {
                // Another buyer each time: a client's buyers take turns, so that none
                // holds more than one reservation of the hot product in a phase.
                let user = users[c * USERS_PER_CLIENT + done % USERS_PER_CLIENT];
                let product = products[rng.below(products.len())];
                let tx = begin(&mut client, Tenant::new(org, user)).await.unwrap();
                match work {
                    Work::Reserve => {
                        reserve(&tx, product, 1).await.unwrap();
                    }
                    Work::Update => {
                        tx.execute(&update, &[&org, &product]).await.unwrap();
                    }
                }
                tx.commit().await.unwrap();
                done += 1;
            }
            done
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(SECONDS)).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// Gives reservations back, so that every phase starts from the same stock.
async fn reset(db: &TestDb) {
    let owner = db.pool(DbRole::Owner).get().await.unwrap();
    owner
        .batch_execute(
            "DELETE FROM inventory.reservations;
             UPDATE inventory.stock_levels SET reserved = 0, on_hand = 1000000000;",
        )
        .await
        .unwrap();
    // On its own: a multi-statement batch is one transaction, and VACUUM needs none.
    owner
        .batch_execute("VACUUM ANALYZE inventory.stock_levels, inventory.reservations")
        .await
        .unwrap();
}

/// A buyer's 3-item cart: who, the cart, and its products with their prices.
#[derive(Clone)]
struct Cart {
    user: Uuid,
    cart: Uuid,
    products: [(Uuid, Decimal); 3],
}

/// Empties the order tables, gives reservations back and makes one open 3-item cart
/// (three different stocked products, one unit each) for every buyer; returns them,
/// each client's in its own slice.
async fn carts(db: &TestDb, org: Uuid, stocked: &[Uuid], round: usize) -> Arc<Vec<Cart>> {
    let owner = db.pool(DbRole::Owner).get().await.unwrap();
    owner
        .batch_execute(
            "SET session_replication_role = replica; -- past the log's refusal to be truncated
             TRUNCATE sales.order_status_history, sales.order_items, sales.orders, sales.cart_items,
                      sales.carts, messaging.outbox_messages CASCADE;
             RESET session_replication_role;
             DELETE FROM inventory.reservations;
             UPDATE inventory.stock_levels SET reserved = 0, on_hand = 1000000000;",
        )
        .await
        .unwrap();
    let made = owner
        .query(
            "INSERT INTO sales.carts (organization_id, user_id)
             SELECT $1, id FROM identity.users WHERE email LIKE '%@bench.test' ORDER BY email
             RETURNING user_id, id",
            &[&org],
        )
        .await
        .unwrap();
    let prices: std::collections::HashMap<Uuid, Decimal> = owner
        .query(
            "SELECT id, price FROM catalog.products WHERE id = ANY($1)",
            &[&stocked],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut rng = Rng(0x2545_f491 ^ (round as u64 + 7));
    let n = stocked.len();
    let carts: Vec<Cart> = made
        .iter()
        .map(|r| {
            // Offsets 0, 1 to n/2 - 1 and n/2 to n - 2 from a random start: three different products.
            let start = rng.below(n);
            let picks = [0, 1 + rng.below(n / 2 - 1), n / 2 + rng.below(n / 2 - 1)]
                .map(|offset| stocked[(start + offset) % n]);
            Cart {
                user: r.get(0),
                cart: r.get(1),
                products: picks.map(|p| (p, prices[&p])),
            }
        })
        .collect();
    // Fresh statistics first: the items' trigger looks each cart up by key.
    owner.batch_execute("ANALYZE sales.carts").await.unwrap();
    let cart_ids: Vec<Uuid> = carts.iter().flat_map(|c| [c.cart; 3]).collect();
    let product_ids: Vec<Uuid> = carts
        .iter()
        .flat_map(|c| c.products.map(|(p, _)| p))
        .collect();
    owner
        .execute(
            "INSERT INTO sales.cart_items (organization_id, cart_id, product_id, quantity)
             SELECT $1, c, p, 1 FROM unnest($2::uuid[], $3::uuid[]) AS i (c, p)",
            &[&org, &cart_ids, &product_ids],
        )
        .await
        .unwrap();
    owner
        .batch_execute("VACUUM ANALYZE sales.carts, sales.cart_items, sales.orders, inventory.stock_levels, inventory.reservations")
        .await
        .unwrap();
    Arc::new(carts)
}

/// Checkouts (or the baseline's plain inserts) per second of `CLIENTS` clients for
/// `SECONDS`, and each one's time in milliseconds.
async fn run_orders(
    db: &Arc<TestDb>,
    org: Uuid,
    carts: &Arc<Vec<Cart>>,
    plain: bool,
) -> (f64, Vec<f64>) {
    let per_client = carts.len() / CLIENTS;
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (db, carts, stop) = (db.clone(), carts.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let role = if plain { DbRole::Owner } else { DbRole::App };
            let mut client = db.pool(role).get().await.unwrap();
            let insert_order = client
                .prepare(
                    "INSERT INTO sales.orders (id, organization_id, order_number, user_id, cart_id,
                         idempotency_key, currency, subtotal_amount, total_amount, item_count, expires_at)
                     VALUES ($1, $2, 'SO-' || upper(substr(md5($5), 1, 16)), $3, $4, $5, 'USD',
                             $6, $6, 3, now() + interval '30 minutes')",
                )
                .await
                .unwrap();
            let insert_items = client
                .prepare(
                    "INSERT INTO sales.order_items (organization_id, order_id, product_id, sku, name,
                         quantity, unit_price, line_total)
                     VALUES ($1, $2, $3, 'SKU', 'Product', 1, $4, $4), ($1, $2, $5, 'SKU', 'Product', 1, $6, $6),
                            ($1, $2, $7, 'SKU', 'Product', 1, $8, $8)",
                )
                .await
                .unwrap();
            let mut times = Vec::new();
            let mut done = 0usize;
            while !stop.load(Ordering::Relaxed) && done < per_client {
                let cart = &carts[c * per_client + done];
                let started = Instant::now();
                let tx = begin(&mut client, Tenant::new(org, cart.user)).await.unwrap();
                let key = format!("bench-{}", cart.cart);
                if plain {
                    let id = Uuid::new_v4();
                    let total: Decimal = cart.products.iter().map(|(_, price)| *price).sum();
                    tx.execute(&insert_order, &[&id, &org, &cart.user, &cart.cart, &key, &total])
                        .await
                        .unwrap();
                    let [(a, pa), (b, pb), (d, pd)] = &cart.products;
                    tx.execute(&insert_items, &[&org, &id, a, pa, b, pb, d, pd])
                        .await
                        .unwrap();
                } else {
                    checkout(&tx, &Checkout::new(cart.cart, key)).await.unwrap();
                }
                tx.commit().await.unwrap();
                times.push(started.elapsed().as_secs_f64() * 1000.0);
                done += 1;
            }
            times
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(SECONDS)).await;
    stop.store(true, Ordering::Relaxed);
    let mut times = Vec::new();
    for task in tasks {
        times.extend(task.await.unwrap());
    }
    (times.len() as f64 / started.elapsed().as_secs_f64(), times)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let db = Arc::new(TestDb::builder().pool_size(CLIENTS + 2).build().await);
    let [owner] = db.tenants().await;
    let org = owner.organization_id;
    let loader = db.pool(DbRole::Owner).get().await.unwrap();
    let started = Instant::now();
    loader
        .batch_execute(&format!(
            "SELECT setseed(0.2026);
             CREATE TEMP TABLE words AS SELECT
                 ARRAY['wireless','compact','premium','classic','ergonomic','portable','vintage',
                       'smart','heavy-duty','lightweight','organic','waterproof','handmade','modern',
                       'rustic','foldable','adjustable','insulated','rechargeable','minimalist',
                       'deluxe','professional','eco-friendly','stainless','silent','magnetic',
                       'cordless','digital','ceramic','bamboo'] AS adjectives,
                 ARRAY['oak','walnut','steel','aluminium','leather','cotton','wool','glass',
                       'copper','linen','silicone','carbon','marble','canvas','titanium'] AS materials,
                 ARRAY['headphones','desk','chair','lamp','backpack','kettle','blender','speaker',
                       'keyboard','mouse','monitor','jacket','boots','tent','bicycle','helmet',
                       'watch','wallet','mug','teapot','knife','pan','pillow','blanket','rug',
                       'shelf','camera','tripod','drone','router','charger','notebook','pen',
                       'umbrella','sunglasses','scarf','gloves','mattress','sofa','stool'] AS nouns,
                 ARRAY['for everyday use','built to last','with a two-year warranty',
                       'designed in Copenhagen','for travel and the office','easy to clean',
                       'for small apartments','with fast charging','for outdoor adventures',
                       'a bestseller this season','with noise cancelling','for professionals',
                       'gift ready','made from recycled materials','with a lifetime guarantee',
                       'dishwasher safe','with a matte finish','hand stitched','tested in the Alps',
                       'with a soft-touch grip','ready in minutes','with spare parts included',
                       'fits in a carry-on','with an anti-slip base','certified organic',
                       'with USB-C','quiet in operation','UV resistant','with a carrying case',
                       'machine washable','with adjustable straps','for left and right hands',
                       'with a ten-year frame warranty','stackable for storage','with a leather strap',
                       'for beginners and experts','with Bluetooth 5.3','sourced from small farms',
                       'with a glass lid','assembled in Portugal'] AS phrases,
                 ARRAY['home','office','outdoor','kitchen','audio','travel','sport','gift',
                       'sale','new','eco','kids','garden','bath','camping','fitness','tech',
                       'fashion','decor','storage','lighting','bedroom','pets','tools','winter',
                       'summer','bestseller','limited','premium','basics'] AS tags;
             INSERT INTO catalog.categories (id, organization_id, name, slug)
             SELECT gen_random_uuid(), '{org}', initcap(t), 'cat-' || t
             FROM words, unnest(words.tags) t;
             CREATE TEMP TABLE picks AS
             SELECT g,
                    1 + floor(random() * 30)::int AS a, 1 + floor(random() * 15)::int AS m,
                    1 + floor(random() * 40)::int AS n, 1 + floor(random() * 40)::int AS p1,
                    1 + floor(random() * 40)::int AS p2, 1 + floor(random() * 30)::int AS t1,
                    1 + floor(random() * 30)::int AS t2, round((5 + random() * 995)::numeric, 2) AS price
             FROM generate_series(1, {PRODUCTS}) g;
             INSERT INTO catalog.products (organization_id, category_id, sku, name, description, price, tags)
             SELECT '{org}',
                    (SELECT c.id FROM catalog.categories c WHERE c.organization_id = '{org}'
                       AND c.slug = 'cat-' || w.tags[k.t1]),
                    'SKU-' || lpad(k.g::text, 6, '0'),
                    initcap(w.adjectives[k.a] || ' ' || w.materials[k.m] || ' ' || w.nouns[k.n]),
                    'A ' || w.adjectives[k.a] || ' ' || w.nouns[k.n] || ' in ' || w.materials[k.m] || ', '
                        || w.phrases[k.p1] || '. ' || initcap(w.phrases[k.p2]) || '.',
                    k.price, ARRAY[w.tags[k.t1], w.tags[k.t2]]
             FROM picks k, words w;
             INSERT INTO inventory.stock_levels (organization_id, product_id, on_hand)
             SELECT '{org}', id, 1000000000 FROM catalog.products
             WHERE organization_id = '{org}' ORDER BY sku LIMIT {STOCKED};
             INSERT INTO inventory.movements (organization_id, product_id, kind, quantity, on_hand_after)
             SELECT organization_id, product_id, 'receipt', on_hand, on_hand FROM inventory.stock_levels;
             INSERT INTO identity.users (email, username)
             SELECT 'buyer' || g || '@bench.test', 'buyer' || g
             FROM generate_series(1, {users}) g;",
            users = CLIENTS * USERS_PER_CLIENT,
        ))
        .await
        .unwrap();
    loader.batch_execute("VACUUM ANALYZE").await.unwrap();
    let stocked: Vec<Uuid> = loader
        .query(
            "SELECT product_id FROM inventory.stock_levels ORDER BY product_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let users: Arc<Vec<Uuid>> = Arc::new(
        loader
            .query(
                "SELECT id FROM identity.users WHERE email LIKE '%@bench.test' ORDER BY email",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect(),
    );
    println!(
        "loaded {PRODUCTS} products, {} with stock, {} buyers in {:.1}s",
        stocked.len(),
        users.len(),
        started.elapsed().as_secs_f64()
    );
    let hot = Arc::new(vec![stocked[0]]);
    let spread = Arc::new(stocked.clone());

    // Slices of each, taking turns, so that a change in the machine's load falls on
    // both sides of a comparison alike; each figure is the mean of its slices.
    let (mut update_hot, mut reserve_hot, mut update_spread, mut reserve_spread) =
        (0.0, 0.0, 0.0, 0.0);
    for _ in 0..ROUNDS {
        for (products, work, sum) in [
            (&hot, Work::Update, &mut update_hot),
            (&hot, Work::Reserve, &mut reserve_hot),
            (&spread, Work::Update, &mut update_spread),
            (&spread, Work::Reserve, &mut reserve_spread),
        ] {
            reset(&db).await;
            *sum += run(&db, org, &users, products, work).await / ROUNDS as f64;
        }
    }

    // Search as the application role.
    let words = [
        "headphones",
        "wireless",
        "oak desk",
        "leather boots",
        "portable speaker",
        "lamp",
        "ergonomic chair",
        "waterproof jacket",
        "kettle",
        "titanium watch",
        "bamboo",
        "camera tripod",
        "rechargeable",
        "vintage copper teapot",
        "noise cancelling",
        "outdoor tent",
        "gift",
        "minimalist wallet",
        "smart",
        "linen pillow",
    ];
    let categories: Vec<Uuid> = loader
        .query("SELECT id FROM catalog.categories ORDER BY slug", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut client = db.pool(DbRole::App).get().await.unwrap();
    let tx = begin(&mut client, owner.tenant()).await.unwrap();
    let search = tx
        .prepare(
            "SELECT count(*) FROM catalog.search_products($1, $2, $3, $4, NULL, $5, NULL, NULL, 20)",
        )
        .await
        .unwrap();
    let mut rng = Rng(42);
    let mut samples = Vec::with_capacity(SEARCHES);
    let mut hits = 0i64;
    for i in 0..SEARCHES {
        let query = words[rng.below(words.len())];
        let category = (i % 7 == 0).then(|| categories[rng.below(categories.len())]);
        let (min, max) = if i % 3 == 0 {
            let low = Decimal::from(rng.below(500) as i64);
            (Some(low), Some(low + Decimal::from(250)))
        } else {
            (None, None)
        };
        let in_stock = i % 5 == 0;
        let t = Instant::now();
        let row = tx
            .query_one(&search, &[&query, &category, &min, &max, &in_stock])
            .await
            .unwrap();
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
        hits += row.get::<_, i64>(0);
    }
    tx.rollback().await.unwrap();
    samples.sort_by(f64::total_cmp);
    let p50 = samples[SEARCHES / 2];
    let p95 = samples[SEARCHES * 95 / 100];

    // The plans inside the functions, as the application role.
    let (plan_client, mut connection) =
        tokio_postgres::connect(db.url(DbRole::Owner), tokio_postgres::NoTls)
            .await
            .unwrap();
    let (notices_tx, mut notices) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notice(notice) = message {
                let _ = notices_tx.send(notice.message().to_owned());
            }
        }
    });
    plan_client
        .batch_execute(&format!(
            "LOAD 'auto_explain';
             SET auto_explain.log_min_duration = 0;
             SET auto_explain.log_analyze = on;
             SET auto_explain.log_timing = off;
             SET auto_explain.log_nested_statements = on;
             SET client_min_messages = log;
             SET ROLE groundwork_test_app;
             BEGIN;
             SELECT set_config('app.current_org_id', '{org}', true),
                    set_config('app.current_user_id', '{user}', true);",
            user = users[users.len() - 1],
        ))
        .await
        .unwrap();
    for (what, sql) in [
        (
            "reserve_inventory (one product)",
            format!("SELECT inventory.reserve_inventory('{}', 1)", stocked[1]),
        ),
        (
            "search_products('wireless headphones')",
            "SELECT count(*) FROM catalog.search_products('wireless headphones')".to_owned(),
        ),
        (
            "search_products('oak desk', price 100 to 400, in stock)",
            "SELECT count(*) FROM catalog.search_products('oak desk', NULL, 100, 400, NULL, true)"
                .to_owned(),
        ),
    ] {
        while notices.try_recv().is_ok() {}
        plan_client.batch_execute(&sql).await.unwrap();
        plan_client.batch_execute("SELECT 1").await.unwrap();
        let mut plans = Vec::new();
        while let Ok(notice) = notices.try_recv() {
            if notice.contains("Query Text") && !notice.contains("SELECT 1") {
                plans.push(notice);
            }
        }
        println!("\nplans of {what}:\n{}", plans.join("\n"));
    }
    plan_client.batch_execute("ROLLBACK").await.unwrap();

    println!(
        "\n{CLIENTS} clients, {ROUNDS} rounds of {SECONDS}s per phase, one tenant transaction per operation; {SEARCHES} searches over {PRODUCTS} products ({hits} hits)"
    );
    println!(
        "inventory baselines: update_hot_per_s={update_hot:.0} update_spread_per_s={update_spread:.0} hot_ratio={:.2} spread_ratio={:.2}",
        reserve_hot / update_hot,
        reserve_spread / update_spread
    );
    println!(
        "inventory: reserve_hot_per_s={reserve_hot:.0} reserve_spread_per_s={reserve_spread:.0} \
         update_baseline_per_s={update_spread:.0} search_p50_ms={p50:.2} search_p95_ms={p95:.2}"
    );

    // Checkout against plain inserts of the same rows, taking turns.
    let (mut checkout_per_s, mut baseline_per_s) = (0.0, 0.0);
    let mut checkout_times = Vec::new();
    for round in 0..ROUNDS {
        for plain in [true, false] {
            let carts = carts(&db, org, &stocked, round).await;
            let (per_s, times) = run_orders(&db, org, &carts, plain).await;
            if plain {
                baseline_per_s += per_s / ROUNDS as f64;
            } else {
                checkout_per_s += per_s / ROUNDS as f64;
                checkout_times.extend(times);
            }
        }
    }
    checkout_times.sort_by(f64::total_cmp);
    let checkout_p95 = checkout_times[checkout_times.len() * 95 / 100];
    println!(
        "checkout: checkout_per_s={checkout_per_s:.0} checkout_p95_ms={checkout_p95:.2} \
         baseline_insert_per_s={baseline_per_s:.0} ratio={:.2}",
        checkout_per_s / baseline_per_s
    );
}
