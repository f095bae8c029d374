//! Outbox relay and idempotency keys under concurrency on a real server.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use groundwork::idempotency::{IdempotencyError, IdempotentRequest, Outcome, execute_once};
use groundwork::outbox::{NewMessage, Relay, RelayConfig, TestPublisher, enqueue, redrive};
use groundwork::queries::messaging::outbox_messages::outbox_message_get;
use groundwork::tenant::{Tenant, begin};
use groundwork::types::messaging::OutboxStatus;
use groundwork_testing::{DbRole, TestDb};
use serde_json::json;
use uuid::Uuid;

use crate::common;

/// A database with one tenant: messages are enqueued through the application role
/// and relayed through the relay role, as services do.
async fn setup(pool_size: usize) -> (Arc<TestDb>, Uuid) {
    let (db, tenant) = common::db_with_tenant(pool_size).await;
    (db, tenant.organization_id)
}

async fn pending(db: &TestDb) -> i64 {
    db.count("messaging.outbox_messages WHERE status = 'pending'")
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_relays_deliver_ten_thousand_messages_once_in_partition_order() {
    let (db, org) = setup(8).await;
    {
        let mut client = db.pool(DbRole::App).get().await.unwrap();
        let tx = begin(&mut client, Tenant::organization(org)).await.unwrap();
        // Bulk set-up in one statement; enqueue() is exercised by the other tests.
        tx.execute(
            "INSERT INTO messaging.outbox_messages (topic, partition_key, payload, priority)
             SELECT 'orders', 'p' || (g % 50), jsonb_build_object('partition', g % 50, 'seq', g),
                    (g * 7 % 11)::smallint
             FROM generate_series(1, 10000) g",
            &[],
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let publisher = Arc::new(TestPublisher::new());
    let mut relays = Vec::new();
    for _ in 0..4 {
        let relay = Relay::new(db.pool(DbRole::Relay).clone(), RelayConfig::default());
        let publisher = publisher.clone();
        let db = db.clone();
        relays.push(tokio::spawn(async move {
            let mut idle = 0;
            while idle < 3 {
                let round = relay.run_once(publisher.as_ref()).await.unwrap();
                if round.claimed == 0 {
                    if pending(&db).await == 0 {
                        idle += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                } else {
                    idle = 0;
                }
            }
        }));
    }
    for relay in relays {
        relay.await.unwrap();
    }
    let delivered = publisher.delivered();
    assert_eq!(delivered.len(), 10_000);
    let unique: HashSet<Uuid> = delivered.iter().map(|m| m.message_id).collect();
    assert_eq!(unique.len(), 10_000, "each message exactly once");
    let mut last_seq: HashMap<i64, i64> = HashMap::new();
    for message in &delivered {
        let partition = message.payload["partition"].as_i64().unwrap();
        let seq = message.payload["seq"].as_i64().unwrap();
        let previous = last_seq.insert(partition, seq).unwrap_or(0);
        assert!(
            seq > previous,
            "partition {partition}: {seq} after {previous}"
        );
    }
    assert_eq!(pending(&db).await, 0);
}

#[tokio::test]
async fn higher_priority_goes_first() {
    let (db, org) = setup(2).await;
    let mut client = db.pool(DbRole::App).get().await.unwrap();
    let tx = begin(&mut client, Tenant::organization(org)).await.unwrap();
    for (n, priority) in [(1, 0), (2, 10), (3, 5)] {
        enqueue(
            &tx,
            &NewMessage::new("t", json!({"n": n})).priority(priority),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let tx = begin(&mut client, Tenant::organization(org)).await.unwrap();
    let err = enqueue(&tx, &NewMessage::new("t", json!({})).priority(11))
        .await
        .unwrap_err();
    assert_eq!(err.constraint(), Some("outbox_messages_priority_range"));
    drop(tx);
    let publisher = TestPublisher::new();
    let config = RelayConfig {
        batch_size: 1,
        ..RelayConfig::default()
    };
    let relay = Relay::new(db.pool(DbRole::Relay).clone(), config);
    for _ in 0..3 {
        relay.run_once(&publisher).await.unwrap();
    }
    let order: Vec<i64> = publisher
        .delivered()
        .iter()
        .map(|m| m.payload["n"].as_i64().unwrap())
        .collect();
    assert_eq!(order, [2, 3, 1]);
}

#[tokio::test]
async fn failures_back_off_then_go_to_dead_letter_and_can_be_redriven() {
    let (db, org) = setup(2).await;
    let id = {
        let mut client = db.pool(DbRole::App).get().await.unwrap();
        let tx = begin(&mut client, Tenant::organization(org)).await.unwrap();
        let message = enqueue(&tx, &NewMessage::new("flaky", json!({})).max_attempts(3))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        message.id
    };
    let publisher = TestPublisher::new();
    publisher.fail_topic("flaky");
    let config = RelayConfig {
        batch_size: 10,
        lease: Duration::from_secs(30),
        base_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(5),
    };
    let relay = Relay::new(db.pool(DbRole::Relay).clone(), config);
    let mut client = db.pool(DbRole::Relay).get().await.unwrap();
    // The tenant sees its message's delivery state.
    let get = || {
        db.with_tenant(DbRole::App, Tenant::organization(org), async |tx| {
            Ok(outbox_message_get().bind(tx, &id).one().await?)
        })
    };
    let mut delays = Vec::new();
    let mut dead = false;
    while !dead {
        let round = relay.run_once(&publisher).await.unwrap();
        if round.claimed == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let message = get().await.unwrap();
        assert_eq!(
            message.last_error.as_deref(),
            Some("topic flaky is failing")
        );
        if message.status == OutboxStatus::Dead {
            assert_eq!(round.dead, 1);
            assert_eq!(message.attempts, 3);
            assert!(message.dead_at.is_some());
            dead = true;
        } else {
            assert_eq!(round.retried, 1);
            let delay = message.available_at - chrono::Utc::now().fixed_offset();
            delays.push(delay.num_milliseconds());
        }
    }
    assert_eq!(
        delays.len(),
        2,
        "two retries before the third, final failure"
    );
    assert!(
        delays[0] <= 200 && delays[1] > delays[0],
        "growing delays: {delays:?}"
    );
    assert!(publisher.delivered().is_empty());

    publisher.heal();
    let tx = groundwork::pool::transaction(&mut client).await.unwrap();
    assert_eq!(redrive(&tx, &[]).await.unwrap(), 1);
    groundwork::pool::commit(tx).await.unwrap();
    relay.run_once(&publisher).await.unwrap();
    let message = get().await.unwrap();
    assert_eq!(message.status, OutboxStatus::Delivered);
    assert_eq!(publisher.delivered().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_calls_with_one_key_run_the_operation_once() {
    let (db, org) = setup(22).await;
    common::scratch_table(
        &db,
        "charges",
        "(n serial PRIMARY KEY, at timestamptz DEFAULT now())",
    )
    .await;
    let mut calls = Vec::new();
    for _ in 0..20 {
        let db = db.clone();
        calls.push(tokio::spawn(async move {
            let mut client = db.pool(DbRole::App).get().await.unwrap();
            execute_once(
                &mut client,
                &IdempotentRequest {
                    tenant: Tenant::organization(org),
                    key: "charge-42",
                    request_hash: b"request-a",
                    ttl: Duration::from_secs(3600),
                },
                async |tx| {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let row = tx
                        .query_one("INSERT INTO public.charges DEFAULT VALUES RETURNING n", &[])
                        .await?;
                    Ok(json!({"charge": row.get::<_, i32>(0)}))
                },
            )
            .await
            .unwrap()
        }));
    }
    let mut executed = 0;
    let mut responses = HashSet::new();
    for call in calls {
        let outcome = call.await.unwrap();
        if matches!(outcome, Outcome::Executed(_)) {
            executed += 1;
        }
        responses.insert(outcome.response().to_string());
    }
    assert_eq!(executed, 1);
    assert_eq!(responses.len(), 1, "every caller got the same response");
    assert_eq!(db.count("public.charges").await, 1);

    // The same key for another request is refused.
    let mut client = db.pool(DbRole::App).get().await.unwrap();
    let err = execute_once(
        &mut client,
        &IdempotentRequest {
            tenant: Tenant::organization(org),
            key: "charge-42",
            request_hash: b"request-b",
            ttl: Duration::from_secs(3600),
        },
        async |_| Ok(json!({})),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, IdempotencyError::RequestMismatch { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_failed_operation_stores_nothing_and_expired_keys_are_removed() {
    let (db, org) = setup(2).await;
    let mut client = db.pool(DbRole::App).get().await.unwrap();
    let err = execute_once(
        &mut client,
        &IdempotentRequest {
            tenant: Tenant::organization(org),
            key: "k",
            request_hash: b"r",
            ttl: Duration::from_secs(60),
        },
        async |tx| {
            tx.batch_execute("SELECT 1/0").await?;
            Ok(json!({}))
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, IdempotencyError::Database(_)));
    // The key was not kept: a retry runs the operation.
    let outcome = execute_once(
        &mut client,
        &IdempotentRequest {
            tenant: Tenant::organization(org),
            key: "k",
            request_hash: b"r",
            ttl: Duration::from_millis(50),
        },
        async |_| Ok(json!({"ok": true})),
    )
    .await
    .unwrap();
    assert_eq!(outcome, Outcome::Executed(json!({"ok": true})));
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Maintenance across tenants runs as the owner.
    let owner = db.pool(DbRole::Owner).get().await.unwrap();
    let removed =
        groundwork::queries::messaging::idempotency_keys::idempotency_key_delete_expired()
            .bind(&owner)
            .await
            .unwrap();
    assert_eq!(removed, 1);
}
