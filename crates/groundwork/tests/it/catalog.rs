//! The product catalog (docs/REQUIREMENTS.md, "catalog") through the application role
//! with a tenant and a user: every rule broken with its exact error and nothing
//! written, category cycles under concurrent moves, the primary image, ranked search
//! with its filters and pages, and product details.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use groundwork::catalog::{
    CatalogError, ProductSearch, get_product_details, move_category, search,
};
use groundwork::inventory::reserve;
use groundwork::queries::catalog::product_images;
use groundwork::tenant::Tenant;
use groundwork_testing::fixtures::{CategoryFixture, ProductFixture};
use groundwork_testing::{DbRole, TestDb};
use rust_decimal::Decimal;
use uuid::Uuid;

const TABLES: [&str; 4] = [
    "catalog.categories",
    "catalog.products",
    "catalog.product_reviews",
    "catalog.product_images",
];

/// The error of running `sql` as `tenant` (it must fail), with nothing written.
async fn refused(db: &TestDb, tenant: Tenant, sql: &str) -> CatalogError {
    let mut before = Vec::new();
    for t in TABLES {
        before.push(db.count(t).await);
    }
    let err = db
        .with_tenant(DbRole::App, tenant, async |tx| {
            Ok(tx.batch_execute(sql).await?)
        })
        .await
        .expect_err(sql);
    for (t, n) in TABLES.iter().zip(before) {
        assert_eq!(db.count(t).await, n, "{sql}: {t} changed");
    }
    err.into()
}

fn code(err: &CatalogError) -> String {
    err.code().map(|c| c.code().to_owned()).unwrap_or_default()
}

#[tokio::test]
async fn every_catalog_rule_refuses_with_its_error_and_writes_nothing() {
    let db = TestDb::builder().pool_size(4).build().await;
    let [a, b] = db.tenants().await;
    let me = a.tenant();
    let root = db.insert(CategoryFixture::new(me)).await;
    let child = db.insert(CategoryFixture::new(me).under(root.id)).await;
    let product = db.insert(ProductFixture::new(me)).await;
    let theirs = db.insert(ProductFixture::new(b.tenant())).await.id;
    let (p, sku) = (product.id, product.sku.clone());
    db.with_tenant(DbRole::App, me, async |tx| {
        Ok(tx
            .batch_execute(&format!(
                "INSERT INTO catalog.product_reviews (product_id, rating) VALUES ('{p}', 4);
                 INSERT INTO catalog.product_images (product_id, url) VALUES ('{p}', 'https://cdn.test/1.jpg')"
            ))
            .await?)
    })
    .await
    .unwrap();
    let insert = |columns: &str, values: &str| {
        format!(
            "INSERT INTO catalog.products (sku, name, price, {columns}) VALUES ('N-1', 'New', 1, {values})"
        )
    };
    let cases: Vec<(String, &str, &str)> = vec![
        (
            "INSERT INTO catalog.products (sku, name, price) VALUES ('N-1', 'New', -0.01)".into(),
            "23514",
            "products_price_nonnegative",
        ),
        (
            format!("INSERT INTO catalog.products (sku, name, price) VALUES ('{sku}', 'Twin', 1)"),
            "23505",
            "products_sku_key",
        ),
        (
            "INSERT INTO catalog.products (sku, name, price) VALUES ('bad sku', 'New', 1)".into(),
            "23514",
            "products_sku_format",
        ),
        (
            insert("currency", "'usd'"),
            "23514",
            "products_currency_format",
        ),
        (
            insert(
                "tags",
                "(SELECT array_agg('t' || g) FROM generate_series(1, 51) g)",
            ),
            "23514",
            "products_tags_valid",
        ),
        (insert("tags", "ARRAY['']"), "23514", "products_tags_valid"),
        (
            insert("metadata", "'[]'"),
            "23514",
            "products_metadata_object",
        ),
        (
            insert("description", "repeat('x', 20001)"),
            "23514",
            "products_description_length",
        ),
        (
            "INSERT INTO catalog.products (sku, name, price) VALUES ('N-1', '  ', 1)".into(),
            "23514",
            "products_name_length",
        ),
        (
            format!(
                "INSERT INTO catalog.products (sku, name, price, category_id) VALUES ('N-1', 'New', 1, '{}')",
                Uuid::new_v4()
            ),
            "23503",
            "products_category_id_fkey",
        ),
        (
            format!("INSERT INTO catalog.product_reviews (product_id, rating) VALUES ('{p}', 6)"),
            "23514",
            "product_reviews_rating_range",
        ),
        (
            format!("INSERT INTO catalog.product_reviews (product_id, rating) VALUES ('{p}', 5)"),
            "23505",
            "product_reviews_product_id_user_id_key",
        ),
        (
            format!(
                "INSERT INTO catalog.product_reviews (product_id, rating) VALUES ('{theirs}', 5)"
            ),
            "23503",
            "product_reviews_product_id_fkey",
        ),
        (
            "INSERT INTO catalog.categories (name, slug) VALUES ('X', 'Not A Slug')".into(),
            "23514",
            "categories_slug_format",
        ),
        (
            format!(
                "INSERT INTO catalog.categories (name, slug) VALUES ('X', '{}')",
                root.slug
            ),
            "23505",
            "categories_slug_key",
        ),
        (
            format!(
                "UPDATE catalog.categories SET parent_id = id WHERE id = '{}'",
                root.id
            ),
            "23514",
            "categories_not_own_parent",
        ),
        (
            format!("DELETE FROM catalog.categories WHERE id = '{}'", root.id),
            "23503",
            "categories_parent_id_fkey",
        ),
        (
            format!(
                "INSERT INTO catalog.product_images (product_id, url) VALUES ('{p}', 'javascript:alert(1)')"
            ),
            "23514",
            "product_images_url_format",
        ),
        (
            format!(
                "INSERT INTO catalog.product_images (product_id, url, position) VALUES ('{p}', '/a.jpg', -1)"
            ),
            "23514",
            "product_images_position_nonnegative",
        ),
    ];
    for (sql, expected, constraint) in &cases {
        let err = refused(&db, me, sql).await;
        assert_eq!(
            (code(&err).as_str(), err.constraint()),
            (*expected, Some(*constraint)),
            "{sql}: {err:?}"
        );
    }
    // Cycles of any length, the primary image, what only the database sets, and the
    // tenant column.
    let cases: Vec<(String, &str)> = vec![
        (format!("UPDATE catalog.categories SET parent_id = '{}' WHERE id = '{}'", child.id, root.id), "WC001"),
        (format!("UPDATE catalog.product_images SET is_primary = false WHERE product_id = '{p}'"), "WC002"),
        (format!("UPDATE catalog.product_reviews SET verified_purchase = true WHERE product_id = '{p}'"), "42501"),
        (format!("INSERT INTO catalog.product_reviews (product_id, rating, user_id) VALUES ('{p}', 3, '{}')", b.user_id), "42501"),
        (format!("INSERT INTO catalog.products (organization_id, sku, name, price) VALUES ('{}', 'N-2', 'New', 1)", b.organization_id), "42501"),
        ("INSERT INTO catalog.category_tree_guards (organization_id) VALUES (identity.current_org_id())".into(), "42501"),
    ];
    for (sql, expected) in &cases {
        let err = refused(&db, me, sql).await;
        assert_eq!(code(&err), *expected, "{sql}: {err:?}");
    }
    let err = refused(
        &db,
        me,
        &format!(
            "UPDATE catalog.categories SET parent_id = '{}' WHERE id = '{}'",
            child.id, root.id
        ),
    )
    .await;
    assert!(matches!(err, CatalogError::Cycle(_)), "{err:?}");
    // Search refuses what it cannot serve.
    for (sql, expected) in [
        (
            "SELECT * FROM catalog.search_products(repeat('x', 1001))",
            "54000",
        ),
        (
            "SELECT * FROM catalog.search_products('x', page_size => 0)",
            "22023",
        ),
        (
            "SELECT * FROM catalog.search_products('x', page_size => 101)",
            "22023",
        ),
        (
            "SELECT * FROM catalog.search_products('x', min_price => 5, max_price => 1)",
            "22023",
        ),
        (
            "SELECT * FROM catalog.search_products('x', min_price => -1)",
            "22023",
        ),
        (
            "SELECT * FROM catalog.search_products('x', after_rank => 0.5)",
            "22023",
        ),
        (
            "SELECT * FROM catalog.search_products('x', with_tags => (SELECT array_agg(g::text) FROM generate_series(1, 51) g))",
            "54000",
        ),
    ] {
        assert_eq!(code(&refused(&db, me, sql).await), expected, "{sql}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_category_moves_never_close_a_cycle() {
    let db = Arc::new(TestDb::builder().pool_size(4).build().await);
    let [a] = db.tenants().await;
    let me = a.tenant();
    let x = db.insert(CategoryFixture::new(me)).await.id;
    let y = db.insert(CategoryFixture::new(me)).await.id;
    // x under y, and y under x, each alone fine; together a cycle.
    let mut first = db.pool(DbRole::App).get().await.unwrap();
    let tx = groundwork::tenant::begin(&mut first, me).await.unwrap();
    move_category(&tx, x, Some(y)).await.unwrap().unwrap();
    let second = {
        let db = db.clone();
        tokio::spawn(async move {
            db.with_tenant(DbRole::App, me, async |tx| {
                Ok(move_category(tx, y, Some(x)).await?)
            })
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "the second move waits for the first");
    tx.commit().await.unwrap();
    let err = CatalogError::from(second.await.unwrap().unwrap_err());
    assert!(matches!(err, CatalogError::Cycle(_)), "{err:?}");
    assert_eq!(
        db.count("catalog.categories WHERE parent_id IS NOT NULL")
            .await,
        1
    );
}

#[tokio::test]
async fn a_product_with_images_has_exactly_one_primary() {
    let db = TestDb::builder().pool_size(4).build().await;
    let [a] = db.tenants().await;
    let me = a.tenant();
    let p = db.insert(ProductFixture::new(me)).await.id;
    let primaries = async || {
        db.with_tenant(DbRole::App, me, async |tx| {
            Ok(product_images::product_image_list()
                .bind(tx, &p)
                .all()
                .await?)
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.is_primary)
        .map(|i| i.url)
        .collect::<Vec<_>>()
    };
    let add = async |url: &str, position: i32, primary: bool| {
        db.with_tenant(DbRole::App, me, async |tx| {
            Ok(product_images::product_image_add()
                .bind(tx, &p, &url, &None::<&str>, &position, &primary)
                .one()
                .await?)
        })
        .await
        .unwrap()
    };
    let first = add("/1.jpg", 2, false).await;
    assert_eq!(
        primaries().await,
        ["/1.jpg"],
        "the first image becomes primary"
    );
    add("/2.jpg", 1, false).await;
    assert_eq!(primaries().await, ["/1.jpg"]);
    let third = add("/3.jpg", 3, true).await;
    assert_eq!(
        primaries().await,
        ["/3.jpg"],
        "a new primary demotes the old"
    );
    db.with_tenant(DbRole::App, me, async |tx| {
        Ok(product_images::product_image_set_primary()
            .bind(tx, &first.id)
            .one()
            .await?)
    })
    .await
    .unwrap();
    assert_eq!(primaries().await, ["/1.jpg"]);
    db.with_tenant(DbRole::App, me, async |tx| {
        Ok(product_images::product_image_delete()
            .bind(tx, &first.id)
            .await?)
    })
    .await
    .unwrap();
    assert_eq!(
        primaries().await,
        ["/2.jpg"],
        "the next by position is promoted"
    );
    // A primary image whose insert is skipped (its id is taken) demotes nothing.
    let skipped = db
        .with_tenant(DbRole::App, me, async |tx| {
            Ok(tx
                .execute(
                    "INSERT INTO catalog.product_images (id, product_id, url, position, is_primary)
                     VALUES ($1, $2, '/4.jpg', 4, true) ON CONFLICT DO NOTHING",
                    &[&third.id, &p],
                )
                .await?)
        })
        .await
        .unwrap();
    assert_eq!(skipped, 0);
    assert_eq!(primaries().await, ["/2.jpg"]);
}

#[tokio::test]
async fn search_ranks_filters_and_pages_and_details_tell_everything() {
    let db = TestDb::builder().pool_size(4).build().await;
    let [a, b] = db.tenants().await;
    let me = a.tenant();
    let audio = db.insert(CategoryFixture::new(me).name("Audio")).await;
    let headphones = db
        .insert(CategoryFixture::new(me).name("Headphones").under(audio.id))
        .await;
    let garden = db.insert(CategoryFixture::new(me).name("Garden")).await;
    let price = |units: i64| Decimal::new(units * 100, 2);
    let named = db
        .insert(
            ProductFixture::new(me)
                .name("Wireless headphones")
                .description("Over-ear, noise cancelling")
                .price(price(120))
                .category(headphones.id)
                .tag("wireless")
                .stock(3),
        )
        .await;
    let described = db
        .insert(
            ProductFixture::new(me)
                .name("Audio cable")
                .description("Connects headphones to an amplifier")
                .price(price(15))
                .category(audio.id)
                .tag("cable"),
        )
        .await;
    let hose = db
        .insert(
            ProductFixture::new(me)
                .name("Garden hose")
                .price(price(30))
                .category(garden.id)
                .stock(1),
        )
        .await;
    db.insert(
        ProductFixture::new(b.tenant())
            .name("Studio headphones")
            .stock(9),
    )
    .await;
    let run = async |s: ProductSearch| {
        db.with_tenant(DbRole::App, me, async |tx| Ok(search(tx, &s).await?))
            .await
            .unwrap()
    };
    let ids =
        |page: &groundwork::catalog::SearchPage| page.hits.iter().map(|h| h.id).collect::<Vec<_>>();
    // A name match ranks above a description match; the other tenant's never shows.
    let page = run(ProductSearch::new("headphones")).await;
    assert_eq!(ids(&page), [named.id, described.id]);
    assert!(page.hits[0].rank > page.hits[1].rank);
    assert_eq!(page.hits[0].available, 3);
    // A category includes its sub-categories.
    let mut s = ProductSearch::new("");
    s.category_id = Some(audio.id);
    let in_audio: BTreeSet<Uuid> = ids(&run(s.clone()).await).into_iter().collect();
    assert_eq!(in_audio, BTreeSet::from([named.id, described.id]));
    s.category_id = Some(headphones.id);
    assert_eq!(ids(&run(s).await), [named.id]);
    // Price range, tags, in stock.
    let mut s = ProductSearch::new("");
    s.min_price = Some(price(20));
    s.max_price = Some(price(100));
    assert_eq!(ids(&run(s).await), [hose.id]);
    let mut s = ProductSearch::new("");
    s.tags = vec!["cable".into()];
    assert_eq!(ids(&run(s).await), [described.id]);
    let mut s = ProductSearch::new("headphones");
    s.in_stock = true;
    assert_eq!(ids(&run(s).await), [named.id]);
    // Pages of one: every product once, in rank order.
    let mut s = ProductSearch::new("");
    s.page_size = 1;
    let mut seen = Vec::new();
    loop {
        let page = run(s.clone()).await;
        seen.extend(ids(&page));
        match page.next {
            Some(next) => s.after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 3);
    assert_eq!(seen.len(), 3);
    // Details: path from the root, images, approved ratings only, stock.
    let p = named.id;
    db.with_tenant(DbRole::App, me, async |tx| {
        reserve(tx, p, 1).await?;
        Ok(tx
            .batch_execute(&format!(
                "INSERT INTO catalog.product_images (product_id, url) VALUES ('{p}', '/a.jpg');
                 INSERT INTO catalog.product_reviews (product_id, rating) VALUES ('{p}', 4);
                 UPDATE catalog.product_reviews SET status = 'approved'"
            ))
            .await?)
    })
    .await
    .unwrap();
    let details = db
        .with_tenant(DbRole::App, me, async |tx| {
            Ok(get_product_details(tx, p).await?)
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        details
            .category_path
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["Audio", "Headphones"]
    );
    assert_eq!(details.images.len(), 1);
    assert!(details.images[0].is_primary);
    assert_eq!(
        (details.rating.count, details.rating.distribution["4"]),
        (1, 1)
    );
    assert_eq!(details.rating.average, Some(Decimal::new(400, 2)));
    assert_eq!(
        (
            details.stock.on_hand,
            details.stock.reserved,
            details.stock.available
        ),
        (3, 1, 2)
    );
    assert_eq!(details.price, price(120));
    // Another tenant's product is not found.
    assert!(
        db.with_tenant(DbRole::App, b.tenant(), async |tx| Ok(get_product_details(
            tx, p
        )
        .await?))
            .await
            .unwrap()
            .is_none()
    );
}
