//! The `ops` schema on a real server: every health check as a login role in
//! `groundwork_monitor` sees it, each made to fire by the condition it watches (a long
//! query, an idle transaction, a lock wait between two real connections, an unused
//! and a duplicate index, sequential scans of a large table, a job backlog, a lagging
//! subscription, orders and authorizations past their time), the monitor's reach (functions, never tenant tables), and retention
//! in batches as a worker runs it.

use std::time::Duration;

use groundwork::Error;
use groundwork_testing::{DbRole, TestDb, TestTenant};
use rust_decimal::Decimal;
use tokio_postgres::error::SqlState;

/// One row of `ops.check_database_health()`.
#[derive(Debug)]
struct Check {
    name: String,
    status: String,
    value: Option<Decimal>,
    hint: Option<String>,
}

/// Every check, as the monitor role sees them.
async fn health(db: &TestDb) -> Vec<Check> {
    let client = db.pool(DbRole::Monitor).get().await.unwrap();
    client
        .query(
            "SELECT name, status, value, hint FROM ops.check_database_health()",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| Check {
            name: row.get(0),
            status: row.get(1),
            value: row.get(2),
            hint: row.get(3),
        })
        .collect()
}

/// The check named `name`.
async fn check(db: &TestDb, name: &str) -> Check {
    health(db)
        .await
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name}"))
}

/// Sets a check's thresholds (as the owner: the monitor only reads them).
async fn thresholds(db: &TestDb, name: &str, warning: Decimal, critical: Option<Decimal>) {
    let updated = db
        .pool(DbRole::Owner)
        .get()
        .await
        .unwrap()
        .execute(
            "UPDATE ops.health_thresholds SET warning = $2, critical = $3 WHERE name = $1",
            &[&name, &warning, &critical],
        )
        .await
        .unwrap();
    assert_eq!(updated, 1, "{name}");
}

/// Runs `sql` as the owner.
async fn owner(db: &TestDb, sql: &str) {
    db.pool(DbRole::Owner)
        .get()
        .await
        .unwrap()
        .batch_execute(sql)
        .await
        .unwrap();
}

/// Makes `client`'s pending statistics visible to other sessions now.
async fn flush_statistics(client: &tokio_postgres::Client) {
    client
        .batch_execute("SELECT pg_stat_force_next_flush()")
        .await
        .unwrap();
    client.batch_execute("SELECT 1").await.unwrap();
}

/// Polls the check until its status is `status` (statistics and waits take a moment).
async fn check_becomes(db: &TestDb, name: &str, status: &str) -> Check {
    for _ in 0..100 {
        let c = check(db, name).await;
        if c.status == status {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{name} never became {status}: {:?}", check(db, name).await);
}

const CHECKS: [&str; 20] = [
    "connections_used",
    "long_running_query",
    "idle_in_transaction",
    "lock_wait",
    "cache_hit_ratio",
    "unused_indexes",
    "duplicate_indexes",
    "seq_scans_on_large_tables",
    "dead_tuples",
    "transaction_id_age",
    "replication_lag",
    "job_queue_depth",
    "job_oldest_available_age",
    "outbox_depth",
    "outbox_lag",
    "subscription_lag",
    "expired_reservations",
    "expired_idempotency_keys",
    "expired_orders",
    "expired_payments",
];

#[tokio::test]
async fn a_healthy_database_reports_every_check_ok() {
    let db = TestDb::new().await;
    let checks = health(&db).await;
    let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, CHECKS);
    let not_ok: Vec<&Check> = checks.iter().filter(|c| c.status != "ok").collect();
    assert!(not_ok.is_empty(), "{not_ok:#?}");
    // Every check has a threshold row, and the queue and outbox are measured.
    let client = db.pool(DbRole::Monitor).get().await.unwrap();
    let rows: i64 = client
        .query_one(
            "SELECT count(*) FROM ops.health_thresholds WHERE name = ANY ($1)",
            &[&CHECKS.to_vec()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 20);
    for name in ["job_queue_depth", "outbox_depth", "duplicate_indexes"] {
        let c = checks.iter().find(|c| c.name == name).unwrap();
        assert_eq!(c.value, Some(Decimal::ZERO), "{c:?}");
    }
}

#[tokio::test]
async fn a_long_query_and_an_idle_transaction_are_reported_with_their_process() {
    let db = TestDb::new().await;
    thresholds(
        &db,
        "long_running_query",
        Decimal::ONE,
        Some(Decimal::from(3600)),
    )
    .await;
    thresholds(&db, "idle_in_transaction", Decimal::ONE, None).await;

    let idle = db.client(DbRole::App).await;
    idle.batch_execute("BEGIN; SELECT 1").await.unwrap();
    let idle_pid: i32 = idle
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let busy = db.client(DbRole::App).await;
    let busy_pid: i32 = busy
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let sleeping = tokio::spawn(async move { busy.batch_execute("SELECT pg_sleep(4)").await });

    let long = check_becomes(&db, "long_running_query", "warning").await;
    assert!(long.value.unwrap() >= Decimal::ONE, "{long:?}");
    assert!(
        long.hint
            .as_deref()
            .unwrap()
            .contains(&format!("process {busy_pid} ")),
        "{long:?}"
    );
    let waiting = check_becomes(&db, "idle_in_transaction", "warning").await;
    assert!(
        waiting
            .hint
            .as_deref()
            .unwrap()
            .contains(&format!("process {idle_pid} ")),
        "{waiting:?}"
    );

    idle.batch_execute("COMMIT").await.unwrap();
    sleeping.await.unwrap().unwrap();
    assert_eq!(check(&db, "idle_in_transaction").await.status, "ok");
    assert_eq!(check(&db, "long_running_query").await.status, "ok");
}

#[tokio::test]
async fn a_lock_wait_between_two_connections_names_the_blocker() {
    let db = TestDb::new().await;
    owner(
        &db,
        "CREATE TABLE public.ops_counters (id integer PRIMARY KEY, n integer NOT NULL);
         INSERT INTO public.ops_counters VALUES (1, 0);
         GRANT SELECT, UPDATE ON public.ops_counters TO groundwork_app;",
    )
    .await;
    thresholds(&db, "lock_wait", Decimal::ZERO, Some(Decimal::from(3600))).await;
    assert_eq!(check(&db, "lock_wait").await.status, "ok");

    let holder = db.client(DbRole::App).await;
    holder
        .batch_execute("BEGIN; UPDATE public.ops_counters SET n = n + 1 WHERE id = 1")
        .await
        .unwrap();
    let holder_pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let waiter = db.client(DbRole::App).await;
    let waiter_pid: i32 = waiter
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let blocked = tokio::spawn(async move {
        waiter
            .batch_execute("UPDATE public.ops_counters SET n = n + 1 WHERE id = 1")
            .await
    });

    let wait = check_becomes(&db, "lock_wait", "warning").await;
    let hint = wait.hint.unwrap();
    assert!(
        hint.starts_with(&format!("process {waiter_pid} has waited "))
            && hint.ends_with(&format!(" s for a lock held by process(es) {holder_pid}")),
        "{hint}"
    );

    holder.batch_execute("COMMIT").await.unwrap();
    blocked.await.unwrap().unwrap();
    assert_eq!(check(&db, "lock_wait").await.status, "ok");
}

#[tokio::test]
async fn unused_and_duplicate_indexes_and_scans_of_large_tables_are_reported() {
    let db = TestDb::new().await;
    owner(
        &db,
        "CREATE TABLE public.ops_readings (id integer NOT NULL, sensor integer NOT NULL);
         INSERT INTO public.ops_readings SELECT g, g % 100 FROM generate_series(1, 100000) g;
         CREATE INDEX ops_readings_sensor_idx ON public.ops_readings (sensor);
         CREATE INDEX ops_readings_sensor_again_idx ON public.ops_readings (sensor);
         ANALYZE public.ops_readings;
         GRANT SELECT ON public.ops_readings TO groundwork_app;",
    )
    .await;
    thresholds(&db, "unused_indexes", Decimal::from(1_000_000), None).await;

    let unused = check(&db, "unused_indexes").await;
    assert_eq!(unused.status, "warning", "{unused:?}");
    let hint = unused.hint.unwrap();
    assert!(hint.contains("ops_readings_sensor_idx ("), "{hint}");
    assert!(hint.contains("ops_readings_sensor_again_idx ("), "{hint}");

    let duplicate = check(&db, "duplicate_indexes").await;
    assert_eq!(duplicate.status, "warning", "{duplicate:?}");
    assert_eq!(duplicate.value, Some(Decimal::ONE));
    assert_eq!(
        duplicate.hint.as_deref(),
        Some("public.ops_readings_sensor_again_idx duplicates public.ops_readings_sensor_idx")
    );

    // Building the indexes scanned the table too; the application's scans add to it.
    let app = db.client(DbRole::App).await;
    for _ in 0..2 {
        app.query_one("SELECT sum(id) FROM public.ops_readings", &[])
            .await
            .unwrap();
    }
    flush_statistics(&app).await;
    let scans = check_becomes(&db, "seq_scans_on_large_tables", "warning").await;
    assert_eq!(scans.value, Some(Decimal::ONE));
    let hint = scans.hint.unwrap();
    assert!(
        hint.starts_with("public.ops_readings (") && hint.ends_with(" sequential, 0 index scans)"),
        "{hint}"
    );

    // The statistics functions say the same, per index and per table.
    let monitor = db.pool(DbRole::Monitor).get().await.unwrap();
    let indexes = monitor
        .query(
            "SELECT index_name, unused, duplicate_of FROM ops.get_index_usage_statistics()
             WHERE table_name = 'ops_readings' ORDER BY index_name",
            &[],
        )
        .await
        .unwrap();
    let indexes: Vec<(String, bool, Option<String>)> = indexes
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        indexes,
        [
            (
                "ops_readings_sensor_again_idx".to_owned(),
                true,
                Some("public.ops_readings_sensor_idx".to_owned())
            ),
            (
                "ops_readings_sensor_idx".to_owned(),
                true,
                Some("public.ops_readings_sensor_again_idx".to_owned())
            ),
        ]
    );
    let table = monitor
        .query_one(
            "SELECT live_rows, seq_scans >= 2, total_bytes > table_bytes
             FROM ops.get_table_statistics() WHERE table_name = 'ops_readings'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            table.get::<_, i64>(0),
            table.get::<_, bool>(1),
            table.get::<_, bool>(2)
        ),
        (100_000, true, true)
    );
}

/// `n` jobs for `tenant`, due now.
async fn enqueue_jobs(db: &TestDb, tenant: TestTenant, n: i32) {
    db.with_tenant(DbRole::App, tenant.tenant(), async |tx| {
        tx.execute(
            "SELECT messaging.enqueue_jobs(ARRAY(SELECT 'report.build'::text FROM generate_series(1, $1)),
                                           ARRAY(SELECT '{}'::jsonb FROM generate_series(1, $1)))",
            &[&n],
        )
        .await?;
        tx.execute(
            "INSERT INTO messaging.outbox_messages (topic, payload)
             SELECT 'report.built', '{}' FROM generate_series(1, $1)",
            &[&n],
        )
        .await?;
        Ok::<_, Error>(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn job_and_outbox_backlogs_are_counts_and_ages_without_tenants() {
    let db = TestDb::new().await;
    let [a, b] = db.tenants().await;
    enqueue_jobs(&db, a, 3).await;
    enqueue_jobs(&db, b, 2).await;
    thresholds(
        &db,
        "job_queue_depth",
        Decimal::from(5),
        Some(Decimal::from(6)),
    )
    .await;
    thresholds(
        &db,
        "outbox_depth",
        Decimal::from(4),
        Some(Decimal::from(5)),
    )
    .await;
    thresholds(&db, "job_oldest_available_age", Decimal::ZERO, None).await;

    let checks = health(&db).await;
    let get = |name: &str| checks.iter().find(|c| c.name == name).unwrap();
    assert_eq!(
        (
            get("job_queue_depth").status.as_str(),
            get("job_queue_depth").value
        ),
        ("warning", Some(Decimal::from(5)))
    );
    assert_eq!(
        (
            get("outbox_depth").status.as_str(),
            get("outbox_depth").value
        ),
        ("critical", Some(Decimal::from(5)))
    );
    assert_eq!(get("job_oldest_available_age").status, "warning");
    assert!(get("outbox_lag").value.is_some());
    // Nothing names a tenant.
    for c in &checks {
        let hint = c.hint.clone().unwrap_or_default();
        for tenant in [a, b] {
            assert!(!hint.contains(&tenant.organization_id.to_string()), "{c:?}");
        }
    }
}

#[tokio::test]
async fn a_lagging_subscription_is_reported_until_it_catches_up() {
    let db = TestDb::new().await;
    let [tenant] = db.tenants().await;
    thresholds(
        &db,
        "subscription_lag",
        Decimal::ZERO,
        Some(Decimal::from(3600)),
    )
    .await;
    db.with_tenant(DbRole::App, tenant.tenant(), async |tx| {
        tx.batch_execute(
            "SELECT eventstore.append('[{\"type\": \"A\"}, {\"type\": \"A\"}, {\"type\": \"A\"}]');
             INSERT INTO eventstore.subscriptions (name, position) VALUES ('projector', 0);",
        )
        .await?;
        Ok(())
    })
    .await
    .unwrap();

    let lag = check(&db, "subscription_lag").await;
    assert_eq!(lag.status, "warning", "{lag:?}");
    assert!(lag.value.unwrap() >= Decimal::ZERO, "{lag:?}");
    assert_eq!(
        lag.hint.as_deref(),
        Some("1 subscription(s) behind the head of their event log")
    );

    db.with_tenant(DbRole::App, tenant.tenant(), async |tx| {
        tx.batch_execute(
            "UPDATE eventstore.subscriptions
             SET position = (SELECT max(position) FROM eventstore.events)",
        )
        .await?;
        Ok(())
    })
    .await
    .unwrap();
    let lag = check(&db, "subscription_lag").await;
    assert_eq!(
        (lag.status.as_str(), lag.value, lag.hint.as_deref()),
        (
            "ok",
            None,
            Some("0 subscription(s) behind the head of their event log")
        )
    );
}

#[tokio::test]
async fn the_monitor_calls_the_ops_functions_and_reads_no_tenant_table() {
    let db = TestDb::new().await;
    let monitor = db.pool(DbRole::Monitor).get().await.unwrap();
    for sql in [
        "SELECT count(*) FROM ops.check_database_health()",
        "SELECT count(*) FROM ops.get_table_statistics()",
        "SELECT count(*) FROM ops.get_index_usage_statistics()",
        "SELECT count(*) FROM ops.get_cache_hit_ratios()",
        "SELECT count(*) FROM ops.get_slow_queries(5)",
        // The one definer function: counts and ages across tenants.
        "SELECT count(*) FROM ops.backlog_checks()",
        "SELECT count(*) FROM ops.health_thresholds",
        "SELECT count(*) FROM ops.retention_policies",
    ] {
        monitor
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    // The test servers preload pg_stat_statements: the monitor sees this database's
    // statements, at most as many as asked for.
    let slow = monitor
        .query("SELECT query, calls FROM ops.get_slow_queries(3)", &[])
        .await
        .unwrap();
    assert!(!slow.is_empty() && slow.len() <= 3, "{slow:?}");

    // No privilege on any table, view or sequence outside ops (but pg_stat_statements'
    // views), and no bypass.
    let readable: Vec<String> = monitor
        .query(
            "SELECT c.oid::regclass::text FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
               AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'ops')
               AND n.nspname NOT LIKE 'pg\\_toast%'
               AND c.relname NOT LIKE 'pg\\_stat\\_statements%'
               AND (has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')
                    OR (c.relkind = 'S' AND has_sequence_privilege(c.oid, 'USAGE, SELECT')))",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(readable.is_empty(), "{readable:?}");
    let bypass: bool = monitor
        .query_one(
            "SELECT bool_or(rolbypassrls OR rolsuper) FROM pg_roles
             WHERE rolname IN ('groundwork_monitor', current_user)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!bypass);
    for sql in [
        "SELECT count(*) FROM messaging.jobs",
        "SELECT count(*) FROM identity.users",
        "SELECT count(*) FROM eventstore.events",
        "SELECT count(*) FROM ops.apply_retention()",
        "UPDATE ops.health_thresholds SET warning = 0",
    ] {
        let error = monitor.query(sql, &[]).await.expect_err(sql);
        assert_eq!(
            error.code(),
            Some(&SqlState::INSUFFICIENT_PRIVILEGE),
            "{sql}"
        );
    }
}

#[tokio::test]
async fn retention_deletes_a_batch_per_policy_and_keeps_what_is_young() {
    let db = TestDb::new().await;
    let [tenant] = db.tenants().await;
    let org = tenant.organization_id;
    let owner_client = db.pool(DbRole::Owner).get().await.unwrap();
    owner_client
        .execute(
            "INSERT INTO messaging.idempotency_keys (organization_id, key, request_hash, created_at, expires_at)
             SELECT $1::uuid, 'old-' || g, '\\x01'::bytea, now() - interval '3 days', now() - interval '2 days'
             FROM generate_series(1, 3) g
             UNION ALL
             SELECT $1, 'young', '\\x01', now(), now() + interval '1 hour'",
            &[&org],
        )
        .await
        .unwrap();
    owner_client
        .execute(
            "INSERT INTO messaging.outbox_messages (organization_id, topic, payload, status, delivered_at)
             VALUES ($1, 't', '{}', 'delivered', now() - interval '8 days'),
                    ($1, 't', '{}', 'delivered', now() - interval '1 day'),
                    ($1, 't', '{}', 'pending', NULL)",
            &[&org],
        )
        .await
        .unwrap();

    let worker = db.pool(DbRole::Worker).get().await.unwrap();
    let mut runs = Vec::new();
    for _ in 0..3 {
        let rows = worker
            .query(
                "SELECT policy, deleted, batch FROM ops.apply_retention(2) ORDER BY policy",
                &[],
            )
            .await
            .unwrap();
        runs.push(
            rows.iter()
                .map(|r| {
                    (
                        r.get::<_, String>(0),
                        r.get::<_, i64>(1),
                        r.get::<_, i32>(2),
                    )
                })
                .collect::<Vec<_>>(),
        );
    }
    let deleted = |run: usize, policy: &str| {
        runs[run]
            .iter()
            .find(|(p, _, _)| p == policy)
            .map(|(_, n, batch)| (*n, *batch))
            .unwrap()
    };
    assert_eq!(deleted(0, "expired_idempotency_keys"), (2, 2));
    assert_eq!(deleted(1, "expired_idempotency_keys"), (1, 2));
    assert_eq!(deleted(2, "expired_idempotency_keys"), (0, 2));
    assert_eq!(deleted(0, "delivered_outbox_messages"), (1, 2));
    assert_eq!(deleted(1, "delivered_outbox_messages"), (0, 2));
    assert_eq!(runs[0].len(), 5, "{runs:?}");
    assert_eq!(deleted(0, "order_status_history"), (0, 2));

    let left: Vec<String> = owner_client
        .query("SELECT key FROM messaging.idempotency_keys", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(left, ["young"]);
    let outbox: i64 = owner_client
        .query_one("SELECT count(*) FROM messaging.outbox_messages", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(outbox, 2);

    let error = worker
        .query("SELECT * FROM ops.apply_retention(0)", &[])
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::INVALID_PARAMETER_VALUE));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retention_job_runs_on_the_queue_across_tenants() {
    let db = TestDb::builder().pool_size(8).build().await;
    let [operator, other] = db.tenants().await;
    let owner_client = db.pool(DbRole::Owner).get().await.unwrap();
    owner_client
        .execute(
            "UPDATE ops.retention_policies SET batch_size = 2 WHERE name = 'expired_idempotency_keys'",
            &[],
        )
        .await
        .unwrap();
    for tenant in [operator, other] {
        owner_client
            .execute(
                "INSERT INTO messaging.idempotency_keys
                     (organization_id, key, request_hash, created_at, expires_at)
                 SELECT $1, 'old-' || g, '\\x01'::bytea, now() - interval '3 days',
                        now() - interval '2 days'
                 FROM generate_series(1, 3) g",
                &[&tenant.organization_id],
            )
            .await
            .unwrap();
    }

    // The job belongs to the operator's organization; its work spans every tenant.
    db.with_tenant(DbRole::App, operator.tenant(), async |tx| {
        groundwork::jobs::enqueue(tx, &groundwork::ops::ApplyRetention::default()).await
    })
    .await
    .unwrap();
    let worker = groundwork::jobs::Worker::new(
        db.pool(DbRole::Worker).clone(),
        db.pool(DbRole::App).clone(),
        groundwork::jobs::WorkerConfig::default().poll_interval(Duration::from_millis(100)),
    )
    .register::<groundwork::ops::ApplyRetention>()
    .queue("default", 1)
    .start();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while db.count("messaging.jobs WHERE status = 'completed'").await < 1 {
        assert!(std::time::Instant::now() < deadline, "the job did not run");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.shutdown().await;
    // Batches of 2 until none came back full: all 6 keys, of both tenants.
    assert_eq!(db.count("messaging.idempotency_keys").await, 0);
    assert_eq!(
        db.count("messaging.jobs WHERE metrics->>'expired_idempotency_keys' = '6'")
            .await,
        1
    );
}

#[tokio::test]
async fn orders_and_authorizations_past_their_time_are_reported_until_cleaned_up() {
    use groundwork::payments::{self, NewPaymentMethod};
    use groundwork::sales::{self, Checkout};
    use groundwork_testing::fixtures::ProductFixture;

    let db = TestDb::new().await;
    let [tenant] = db.tenants().await;
    let me = tenant.tenant();
    let product = db
        .insert(
            ProductFixture::new(me)
                .price(Decimal::new(2500, 2))
                .stock(5),
        )
        .await
        .id;
    let mut orders = Vec::new();
    for i in 0..2 {
        let order = db
            .with_tenant(DbRole::App, me, async |tx| {
                let cart = sales::open_cart(tx, "USD").await?;
                sales::add_to_cart(tx, cart.id, product, 1).await?;
                Ok(sales::checkout(tx, &Checkout::new(cart.id, format!("ops-{i}"))).await?)
            })
            .await
            .unwrap();
        orders.push(order);
    }
    let card = NewPaymentMethod::card("tok_ops_card", "visa", "4242", 12, 2099);
    let order = orders[1];
    db.with_tenant(DbRole::App, me, async |tx| {
        let method = payments::add_payment_method(tx, &card).await?;
        Ok(payments::authorize(tx, order, method.id).await?)
    })
    .await
    .unwrap();
    assert_eq!(check(&db, "expired_orders").await.status, "ok");
    assert_eq!(check(&db, "expired_payments").await.status, "ok");

    // Past their time by more than the threshold's 300 seconds, and not cleaned up.
    owner(
        &db,
        "UPDATE sales.orders SET expires_at = now() - interval '10 minutes';
         UPDATE payments.payments SET expires_at = now() - interval '10 minutes';",
    )
    .await;
    let orders_check = check(&db, "expired_orders").await;
    assert_eq!(
        (orders_check.status.as_str(), orders_check.value),
        ("warning", Some(Decimal::from(2)))
    );
    assert!(
        orders_check
            .hint
            .unwrap()
            .contains("cleanup_expired_orders")
    );
    let payments_check = check(&db, "expired_payments").await;
    assert_eq!(
        (payments_check.status.as_str(), payments_check.value),
        ("warning", Some(Decimal::from(1)))
    );

    let worker = db.pool(DbRole::Worker).get().await.unwrap();
    let expired: i32 = worker
        .query_one("SELECT payments.cleanup_expired_payments()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(expired, 1);
    assert_eq!(check(&db, "expired_payments").await.status, "ok");
    assert_eq!(check(&db, "expired_orders").await.value, Some(Decimal::ONE));
    worker
        .query_one("SELECT sales.cleanup_expired_orders()", &[])
        .await
        .unwrap();
    assert_eq!(check(&db, "expired_orders").await.status, "ok");
}
