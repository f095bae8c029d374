//! The event store under concurrency on a real server: DCB decisions, stream
//! versions, gap-free tailing reads and malformed input.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use groundwork::Error;
use groundwork::eventstore::{
    self, AppendCondition, EventStoreError, NewEvent, Query, StreamAppend, append,
    append_to_stream, read, read_stream,
};
use groundwork::tenant::{Tenant, begin};
use groundwork_testing::{DbRole, TestDb};
use serde_json::json;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use crate::common;

/// A database with one tenant; tests append and read through the application role.
async fn setup(pool_size: usize) -> (Arc<TestDb>, Uuid) {
    let (db, tenant) = common::db_with_tenant(pool_size).await;
    (db, tenant.organization_id)
}

async fn event_count(db: &TestDb) -> i64 {
    db.count("eventstore.events").await
}

/// Reads the course's subscriptions, decides, and appends with the condition that
/// nothing new happened to the course since; retries on a failed condition. Returns
/// whether the student got a seat.
async fn subscribe(db: &TestDb, org: Uuid, course: &str, student: usize, capacity: usize) -> bool {
    let query = Query::item(["StudentSubscribed"], [format!("course:{course}")]);
    loop {
        let mut client = db.pool(DbRole::App).get().await.unwrap();
        let tx = begin(&mut client, Tenant::organization(org)).await.unwrap();
        let seen = read(&tx, &query, 0, None).await.unwrap();
        if seen.len() >= capacity {
            return false;
        }
        let event = NewEvent::new("StudentSubscribed", json!({"student": student}))
            .tagged([format!("course:{course}"), format!("student:{student}")]);
        let condition = AppendCondition {
            fail_if_events_match: query.clone(),
            after: seen.last().map(|e| e.position),
        };
        match append(&tx, &[event], Some(&condition)).await {
            Ok(_) => {
                tx.commit().await.unwrap();
                return true;
            }
            Err(EventStoreError::ConditionFailed(_)) => continue,
            Err(other) => panic!("student {student}: {other}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_subscriptions_fill_a_course_of_ten_exactly() {
    let (db, org) = setup(16).await;
    let mut tasks = Vec::new();
    for student in 0..50 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            subscribe(&db, org, "42", student, 10).await
        }));
    }
    let mut seated = 0;
    for task in tasks {
        seated += usize::from(task.await.unwrap());
    }
    assert_eq!(seated, 10);
    let mut client = db.pool(DbRole::App).get().await.unwrap();
    let tx = begin(&mut client, Tenant::organization(org)).await.unwrap();
    let subscriptions = read(
        &tx,
        &Query::item(["StudentSubscribed"], ["course:42"]),
        0,
        None,
    )
    .await
    .unwrap();
    assert_eq!(subscriptions.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_registrations_of_one_username_leave_one() {
    let (db, org) = setup(16).await;
    let mut tasks = Vec::new();
    for attempt in 0..20 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = db.pool(DbRole::App).get().await.unwrap();
            let tx = begin(&mut client, Tenant::organization(org)).await.unwrap();
            let condition = AppendCondition {
                fail_if_events_match: Query::item(["UsernameClaimed"], ["username:ada"]),
                after: None,
            };
            let event = NewEvent::new("UsernameClaimed", json!({"attempt": attempt}))
                .tagged(["username:ada"]);
            match append(&tx, &[event], Some(&condition)).await {
                Ok(_) => {
                    tx.commit().await.unwrap();
                    true
                }
                Err(EventStoreError::ConditionFailed(v)) => {
                    assert_eq!(v.code.code(), "WE001");
                    false
                }
                Err(other) => panic!("{other}"),
            }
        }));
    }
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap());
    }
    assert_eq!(winners, 1);
    assert_eq!(event_count(&db).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disjoint_appends_proceed_while_a_conflicting_one_waits() {
    let (db, org) = setup(4).await;
    let condition = |course: &str| AppendCondition {
        fail_if_events_match: Query::item(["StudentSubscribed"], [format!("course:{course}")]),
        after: None,
    };
    let event = |course: &str| {
        NewEvent::new("StudentSubscribed", json!({})).tagged([format!("course:{course}")])
    };
    // A decides about course 1 and keeps its transaction open.
    let mut a_client = db.pool(DbRole::App).get().await.unwrap();
    let a = begin(&mut a_client, Tenant::organization(org))
        .await
        .unwrap();
    append(&a, &[event("1")], Some(&condition("1")))
        .await
        .unwrap();

    // B, about course 2, does not wait for A.
    let b = tokio::time::timeout(Duration::from_secs(5), async {
        let mut client = db.pool(DbRole::App).get().await.unwrap();
        let tx = begin(&mut client, Tenant::organization(org)).await.unwrap();
        append(&tx, &[event("2")], Some(&condition("2")))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    })
    .await;
    assert!(b.is_ok(), "a disjoint append was blocked");

    // C, about course 1, waits for A and then sees A's event.
    let db_c = db.clone();
    let c = tokio::spawn(async move {
        let mut client = db_c.pool(DbRole::App).get().await.unwrap();
        let tx = begin(&mut client, Tenant::organization(org)).await.unwrap();
        append(&tx, &[event("1")], Some(&condition("1"))).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !c.is_finished(),
        "the conflicting append waits for the deciding transaction"
    );
    a.commit().await.unwrap();
    let err = c.await.unwrap().unwrap_err();
    assert!(
        matches!(err, EventStoreError::ConditionFailed(_)),
        "{err:?}"
    );
    assert_eq!(event_count(&db).await, 2);
}

#[tokio::test]
async fn a_stale_stream_version_is_a_typed_conflict_and_writes_nothing() {
    let (db, org) = setup(2).await;
    let mut client = db.pool(DbRole::App).get().await.unwrap();
    let cart = Uuid::new_v4();
    let tx = begin(&mut client, Tenant::organization(org)).await.unwrap();
    let events = [
        NewEvent::new("CartCreated", json!({})),
        NewEvent::new("ItemAdded", json!({"sku": "a"})),
    ];
    append_to_stream(
        &tx,
        &StreamAppend {
            aggregate_type: "cart",
            aggregate_id: cart,
            expected_version: 0,
            events: &events,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let tx = begin(&mut client, Tenant::organization(org)).await.unwrap();
    let err = append_to_stream(
        &tx,
        &StreamAppend {
            aggregate_type: "cart",
            aggregate_id: cart,
            expected_version: 1,
            events: &[NewEvent::new("ItemAdded", json!({}))],
        },
    )
    .await
    .unwrap_err();
    let EventStoreError::VersionConflict {
        expected, actual, ..
    } = err
    else {
        panic!("expected a version conflict, got {err}");
    };
    assert_eq!((expected, actual), (1, 2));
    drop(tx);
    let tx = begin(&mut client, Tenant::organization(org)).await.unwrap();
    let stream = read_stream(&tx, cart, 0).await.unwrap();
    assert_eq!(
        stream
            .iter()
            .map(|e| (e.aggregate_version, e.r#type.as_str()))
            .collect::<Vec<_>>(),
        [(Some(1), "CartCreated"), (Some(2), "ItemAdded")]
    );
    append_to_stream(
        &tx,
        &StreamAppend {
            aggregate_type: "cart",
            aggregate_id: cart,
            expected_version: 2,
            events: &[NewEvent::new("ItemAdded", json!({"sku": "b"}))],
        },
    )
    .await
    .unwrap();
    assert_eq!(read_stream(&tx, cart, 2).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tailing_reader_sees_every_committed_event_once_in_order() {
    let (db, org) = setup(12).await;
    const WRITERS: usize = 8;
    const TRANSACTIONS: usize = 15;
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let db = db.clone();
        writers.push(tokio::spawn(async move {
            let mut committed = Vec::new();
            for n in 0..TRANSACTIONS {
                let mut client = db.pool(DbRole::App).get().await.unwrap();
                let tx = begin(&mut client, Tenant::organization(org)).await.unwrap();
                let events: Vec<NewEvent> = (0..1 + (n % 3))
                    .map(|i| NewEvent::new("Tick", json!({"writer": writer, "n": n, "i": i})))
                    .collect();
                append(&tx, &events, None).await.unwrap();
                // Positions of one append need not be contiguous: ask for them.
                let mine: Vec<i64> = tx
                    .query(
                        "SELECT position FROM eventstore.events \
                         WHERE data ->> 'writer' = $1 AND data ->> 'n' = $2",
                        &[&writer.to_string(), &n.to_string()],
                    )
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                assert_eq!(mine.len(), events.len());
                // Hold the transaction open for a while so that commits interleave
                // out of position order.
                let delay = (writer * 7 + n * 13) % 25;
                tokio::time::sleep(Duration::from_millis(delay as u64)).await;
                if (writer + n) % 5 == 4 {
                    tx.rollback().await.unwrap();
                } else {
                    tx.commit().await.unwrap();
                    committed.extend(mine);
                }
            }
            committed
        }));
    }
    let reader = {
        let db = db.clone();
        tokio::spawn(async move {
            let mut client = db.pool(DbRole::App).get().await.unwrap();
            let mut seen: Vec<i64> = Vec::new();
            let mut quiet_rounds = 0;
            loop {
                let after = seen.last().copied().unwrap_or(0);
                let tx = begin(&mut client, Tenant::organization(org)).await.unwrap();
                let batch = read(&tx, &Query::all(), after, Some(50)).await.unwrap();
                tx.commit().await.unwrap();
                if batch.is_empty() {
                    quiet_rounds += 1;
                    if quiet_rounds > 100 {
                        return seen;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                } else {
                    quiet_rounds = 0;
                    seen.extend(batch.iter().map(|e| e.position));
                }
            }
        })
    };
    let mut committed = BTreeSet::new();
    for writer in writers {
        committed.extend(writer.await.unwrap());
    }
    let seen = reader.await.unwrap();
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing, no repeats"
    );
    assert_eq!(
        seen.iter().copied().collect::<BTreeSet<_>>(),
        committed,
        "every committed event, nothing else"
    );
    assert!(committed.len() > 100);
}

#[tokio::test]
async fn malformed_input_gets_a_clear_error_and_writes_nothing() {
    let (db, org) = setup(2).await;
    let mut client = db.pool(DbRole::App).get().await.unwrap();
    let cases = [
        (
            json!({"type": "A"}),
            "events must be a JSON array of {\"type\", \"tags\", \"data\", \"metadata\"}",
        ),
        (json!([]), "events must not be empty"),
        (json!([{"data": {}}]), "event 1 has no \"type\" string"),
        (
            json!([{"type": "A"}, {"type": 7}]),
            "event 2 has no \"type\" string",
        ),
        (
            json!([{"type": "A", "tags": "x"}]),
            "event 1 has \"tags\" that are not an array of strings",
        ),
        (
            json!([{"type": "A", "tags": [1]}]),
            "event 1 has \"tags\" that are not an array of strings",
        ),
        (
            json!([{"type": "A", "tags": [["x"]]}]),
            "event 1 has \"tags\" that are not an array of strings",
        ),
        (
            json!([{"type": "A", "metadata": []}]),
            "event 1 has \"metadata\" that is not an object",
        ),
        (json!([[{"type": "A"}]]), "event 1 is not a JSON object"),
    ];
    let mut appends: Vec<(serde_json::Value, Option<serde_json::Value>, &str)> = cases
        .into_iter()
        .map(|(events, message)| (events, None, message))
        .collect();
    for (query, message) in [
        (
            json!({"types": ["A"]}),
            "a query must be {\"items\": [{\"types\": [...], \"tags\": [...]}, ...]}",
        ),
        (
            json!({"items": [{"tags": "x"}]}),
            "query item 1 has \"types\" or \"tags\" that are not arrays of strings",
        ),
    ] {
        let tx = begin(&mut client, Tenant::organization(org)).await.unwrap();
        let err = Error::from(
            groundwork::queries::eventstore::events::event_read()
                .bind(&tx, &query, &0, &None::<i32>)
                .all()
                .await
                .unwrap_err(),
        );
        assert_eq!(err.violation().unwrap().message, message);
    }
    let event = json!([{"type": "A", "tags": ["x"]}]);
    for (condition, message) in [
        (
            json!([]),
            "a condition must be {\"fail_if_events_match\": <query>, \"after\": <position or null>}",
        ),
        (
            json!({"after": 1}),
            "a condition must be {\"fail_if_events_match\": <query>, \"after\": <position or null>}",
        ),
        (
            json!({"fail_if_events_match": {"items": []}, "after": "1"}),
            "condition \"after\" must be a position or null",
        ),
        (
            json!({"fail_if_events_match": {"items": {}}}),
            "a query must be {\"items\": [{\"types\": [...], \"tags\": [...]}, ...]}",
        ),
        (
            json!({"fail_if_events_match": {"items": [{}, 7]}}),
            "query item 2 is not a JSON object",
        ),
        (
            json!({"fail_if_events_match": {"items": [{"types": [["A"]]}]}}),
            "query item 1 has \"types\" or \"tags\" that are not arrays of strings",
        ),
    ] {
        appends.push((event.clone(), Some(condition), message));
    }
    for (events, condition, message) in appends {
        let tx = begin(&mut client, Tenant::organization(org)).await.unwrap();
        let err = Error::from(
            groundwork::queries::eventstore::events::event_append()
                .bind(&tx, &events, &condition)
                .one()
                .await
                .unwrap_err(),
        );
        let case = format!("{events} {condition:?}");
        assert_eq!(
            err.code(),
            Some(&SqlState::INVALID_PARAMETER_VALUE),
            "{case}"
        );
        assert_eq!(err.violation().unwrap().message, message, "{case}");
    }
    assert_eq!(event_count(&db).await, 0);
    // Without a tenant there is nothing to append to.
    let mut plain = db.pool(DbRole::App).get().await.unwrap();
    let plain = groundwork::pool::transaction(&mut plain).await.unwrap();
    let err = eventstore::append(&plain, &[NewEvent::new("A", json!({}))], None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE));
}

/// An append checks its JSON cheaply first and precisely only when that fails: for
/// inputs at the edges of every rule, it refuses exactly what the precise check
/// (`eventstore.check_events`) refuses, with the same message, and takes the rest.
#[tokio::test]
async fn the_quick_checks_of_an_append_agree_with_the_precise_ones() {
    let (db, org) = setup(2).await;
    let owner = db.pool(DbRole::Owner).get().await.unwrap();
    let mut client = db.pool(DbRole::App).get().await.unwrap();
    let cases = [
        json!(null),
        json!("x"),
        json!({"type": "A"}),
        json!([]),
        json!([5]),
        json!([[{"type": "A"}]]),
        json!([{"type": "A"}, [{"type": "A"}]]),
        json!([{"type": null}]),
        json!([{"type": ["A"]}]),
        json!([{"type": {"a": "A"}}]),
        json!([{"data": 1}]),
        json!([{"type": "A", "tags": null}]),
        json!([{"type": "A", "tags": "x"}]),
        json!([{"type": "A", "tags": {"x": "y"}}]),
        json!([{"type": "A", "tags": [null]}]),
        json!([{"type": "A", "tags": [1]}]),
        json!([{"type": "A", "tags": [["x"]]}]),
        json!([{"type": "A", "tags": [{"x": "y"}]}]),
        json!([{"type": "A", "tags": ["x", ""]}]),
        json!([{"type": "A", "tags": ["x".repeat(256)]}]),
        json!([{"type": "A", "tags": ["x".repeat(257)]}]),
        json!([{"type": "A", "tags": ["\"".repeat(200)]}]),
        json!([{"type": "A", "tags": ["€".repeat(85)]}]),
        json!([{"type": "A", "tags": ["€".repeat(86)]}]),
        json!([{"type": "A", "tags": ["x", "x", "y"]}]),
        json!([{"type": "A", "metadata": null}]),
        json!([{"type": "A", "metadata": []}]),
        json!([{"type": "A", "metadata": "m"}]),
        json!([{"type": "A", "metadata": {}}]),
        json!([{"type": "A", "tags": (0..64).map(|i| format!("t{i}")).collect::<Vec<_>>()}]),
        json!([{"type": "A", "tags": (0..65).map(|i| format!("t{i}")).collect::<Vec<_>>()}]),
    ];
    let mut accepted = 0;
    for events in cases {
        let precise = owner
            .execute("SELECT eventstore.check_events($1)", &[&events])
            .await
            .err()
            .map(|e| e.as_db_error().unwrap().message().to_owned());
        let tx = begin(&mut client, Tenant::organization(org)).await.unwrap();
        let appended = groundwork::queries::eventstore::events::event_append()
            .bind(&tx, &events, &None::<serde_json::Value>)
            .one()
            .await;
        let quick = appended
            .as_ref()
            .err()
            .map(|e| e.as_db_error().unwrap().message().to_owned());
        assert_eq!(quick, precise, "{events}");
        accepted += usize::from(appended.is_ok());
    }
    // 256 bytes, 85 three-byte characters, 200 quotes, a repeated tag, empty
    // metadata, 64 tags.
    assert_eq!(accepted, 6);
    // Each transaction was dropped, so nothing stays.
    assert_eq!(event_count(&db).await, 0);
}

/// Projects each event into `public.projection`, failing once (after writing part of
/// the batch) when `crash_at` is reached.
struct Projector {
    crash_at: std::sync::Mutex<Option<i64>>,
}

impl groundwork::subscription::Handler for Projector {
    fn handle<'a>(
        &'a self,
        tx: &'a deadpool_postgres::Transaction<'a>,
        events: &'a [groundwork::queries::eventstore::events::Event],
    ) -> futures::future::BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            for event in events {
                tx.execute(
                    "INSERT INTO public.projection (position) VALUES ($1)",
                    &[&event.position],
                )
                .await?;
                let crash = {
                    let mut crash_at = self.crash_at.lock().unwrap();
                    let crash = *crash_at == Some(event.position);
                    if crash {
                        *crash_at = None;
                    }
                    crash
                };
                if crash {
                    // A statement that fails, half-way through the batch.
                    return Err(tx.batch_execute("SELECT 1/0").await.unwrap_err().into());
                }
            }
            Ok(())
        })
    }
}

async fn append_ticks(db: &TestDb, org: Uuid, n: usize) -> Vec<i64> {
    let mut client = db.pool(DbRole::App).get().await.unwrap();
    let tx = begin(&mut client, Tenant::organization(org)).await.unwrap();
    let mut positions = Vec::new();
    for i in 0..n {
        positions.push(
            append(&tx, &[NewEvent::new("Tick", json!({"i": i}))], None)
                .await
                .unwrap(),
        );
    }
    tx.commit().await.unwrap();
    positions
}

/// A database with one tenant and an empty `public.projection` for handlers.
async fn setup_with_projection() -> (Arc<TestDb>, Uuid) {
    let (db, org) = setup(4).await;
    common::scratch_table(&db, "projection", "(position bigint PRIMARY KEY)").await;
    (db, org)
}

#[tokio::test]
async fn a_subscription_that_crashes_mid_batch_resumes_without_loss_or_double_effect() {
    use groundwork::subscription::Subscription;
    let (db, org) = setup_with_projection().await;
    let positions = append_ticks(&db, org, 25).await;
    let projector = Projector {
        crash_at: std::sync::Mutex::new(Some(positions[13])),
    };
    let subscription = Subscription::new(
        db.pool(DbRole::App).clone(),
        Tenant::organization(org),
        "projector",
        Query::all(),
    )
    .batch_size(10);
    assert_eq!(subscription.run_batch(&projector).await.unwrap(), 10);
    let err = subscription.run_batch(&projector).await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::DIVISION_BY_ZERO), "{err}");
    // The crashed batch left neither effects nor a new checkpoint.
    let client = db.pool(DbRole::Owner).get().await.unwrap();
    let projected: i64 = client
        .query_one("SELECT count(*) FROM public.projection", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(projected, 10);
    // Restarted, it resumes from the checkpoint.
    while subscription.run_batch(&projector).await.unwrap() > 0 {}
    let rows: Vec<i64> = client
        .query(
            "SELECT position FROM public.projection ORDER BY position",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rows, positions, "every event exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caught_up_subscription_is_woken_by_new_events() {
    use groundwork::subscription::Subscription;
    let (db, org) = setup_with_projection().await;
    append_ticks(&db, org, 3).await;
    let stop = Arc::new(tokio::sync::Notify::new());
    let runner = {
        let db = db.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let projector = Projector {
                crash_at: std::sync::Mutex::new(None),
            };
            // Polling alone would take a minute: only the notification can be this quick.
            Subscription::new(
                db.pool(DbRole::App).clone(),
                Tenant::organization(org),
                "live",
                Query::all(),
            )
            .poll_interval(Duration::from_secs(60))
            .run(&projector, Some(db.url(DbRole::App)), stop)
            .await
        })
    };
    let count = || db.count("public.projection");
    let wait_for = |n: i64| async move {
        for _ in 0..200 {
            if count().await == n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    };
    assert!(wait_for(3).await, "caught up");
    append_ticks(&db, org, 2).await;
    assert!(wait_for(5).await, "woken by the notification within 2 s");
    stop.notify_one();
    runner.await.unwrap().unwrap();
}

/// Every shape of query item decides a condition and a read by the same rule: any of
/// the types, all of the tags, after the position.
#[tokio::test]
async fn conditions_and_reads_match_any_of_the_types_and_all_of_the_tags() {
    let (db, org) = setup(2).await;
    let mut client = db.pool(DbRole::App).get().await.unwrap();
    let tx = begin(&mut client, Tenant::organization(org)).await.unwrap();
    let first = append(
        &tx,
        &[
            NewEvent::new("Enrolled", json!({})).tagged(["course:1", "student:1"]),
            NewEvent::new("Dropped", json!({})).tagged(["course:2"]),
        ],
        None,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let cases: [(Query, Option<i64>, bool); 13] = [
        (Query::item(["Enrolled"], ["course:1"]), None, true),
        (
            Query::item(["Enrolled"], ["student:1", "course:1"]),
            None,
            true,
        ),
        (
            Query::item(["Enrolled"], ["course:1", "student:2"]),
            None,
            false,
        ),
        (
            Query::item(["Dropped", "Enrolled"], ["student:1"]),
            None,
            true,
        ),
        (Query::item(["Dropped"], ["student:1"]), None, false),
        (Query::item(Vec::<String>::new(), ["course:2"]), None, true),
        (Query::item(Vec::<String>::new(), ["course:3"]), None, false),
        (Query::item(["Dropped"], Vec::<String>::new()), None, true),
        (Query::item(["Renamed"], Vec::<String>::new()), None, false),
        (Query::all(), None, true),
        (Query::all(), Some(first), false),
        (
            Query::item(["Renamed"], ["x"]).or(eventstore::QueryItem {
                types: vec!["Dropped".into()],
                tags: vec![],
            }),
            Some(first - 1),
            true,
        ),
        // Two items matching the same event: read once.
        (
            Query::item(["Enrolled"], ["course:1"]).or(eventstore::QueryItem {
                types: vec![],
                tags: vec!["student:1".into()],
            }),
            None,
            true,
        ),
    ];
    let tx = begin(&mut client, Tenant::organization(org)).await.unwrap();
    let log = read(&tx, &Query::all(), 0, None).await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(
        read(&tx, &Query::all(), 0, Some(1)).await.unwrap()[0].position,
        log[0].position
    );
    tx.commit().await.unwrap();
    for (query, after, matches) in cases {
        let tx = begin(&mut client, Tenant::organization(org)).await.unwrap();
        // A read returns exactly the matching events after the position, in order.
        let expected: Vec<i64> = log
            .iter()
            .filter(|e| e.position > after.unwrap_or(0))
            .filter(|e| {
                query.items.iter().any(|item| {
                    (item.types.is_empty() || item.types.contains(&e.r#type))
                        && item.tags.iter().all(|tag| e.tags.contains(tag))
                })
            })
            .map(|e| e.position)
            .collect();
        let found: Vec<i64> = read(&tx, &query, after.unwrap_or(0), None)
            .await
            .unwrap()
            .iter()
            .map(|e| e.position)
            .collect();
        assert_eq!(found, expected, "read {query:?} after {after:?}");
        assert_eq!(!found.is_empty(), matches, "read {query:?} after {after:?}");
        let condition = AppendCondition {
            fail_if_events_match: query.clone(),
            after,
        };
        let outcome = append(&tx, &[NewEvent::new("Probe", json!({}))], Some(&condition)).await;
        assert_eq!(
            matches!(outcome, Err(EventStoreError::ConditionFailed(_))),
            matches,
            "{query:?} after {after:?}: {outcome:?}"
        );
        tx.rollback().await.unwrap();
    }
    // Another tenant's events never match, and neither it nor a transaction without a
    // tenant reads any of them, whatever the query's shape.
    let shapes = [
        Query::all(),
        Query::item(["Enrolled"], Vec::<String>::new()),
        Query::item(Vec::<String>::new(), ["course:1"]),
        Query::item(["Enrolled"], ["course:1", "student:1"]),
    ];
    let [other] = db.tenants().await;
    let other = other.organization_id;
    for tenant in [Tenant::organization(other), Tenant::default()] {
        let tx = begin(&mut client, tenant).await.unwrap();
        for query in &shapes {
            let seen = read(&tx, query, 0, None).await.unwrap();
            assert!(seen.is_empty(), "{tenant:?} read {query:?}: {seen:?}");
        }
        tx.rollback().await.unwrap();
    }
    let tx = begin(&mut client, Tenant::organization(other))
        .await
        .unwrap();
    let condition = AppendCondition {
        fail_if_events_match: Query::all(),
        after: None,
    };
    append(&tx, &[NewEvent::new("Probe", json!({}))], Some(&condition))
        .await
        .unwrap();
}

/// The log is written only through the append functions, which the read-only role
/// cannot call.
#[tokio::test]
async fn only_the_append_functions_write_the_log() {
    let (db, org) = setup(2).await;
    let mut client = db.pool(DbRole::App).get().await.unwrap();
    let tx = begin(&mut client, Tenant::organization(org)).await.unwrap();
    append(&tx, &[NewEvent::new("A", json!({})).tagged(["t"])], None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    for statement in [
        "INSERT INTO eventstore.events (type, data) VALUES ('A', '{}')",
        "INSERT INTO eventstore.event_tags (organization_id, tag, position, type) \
         VALUES (identity.current_org_id(), 't', 1, 'A')",
        "SELECT eventstore.insert_events(identity.current_org_id(), \
         (SELECT k FROM eventstore.tenant_keys k), true, '[{\"type\": \"A\"}]')",
        "SELECT eventstore.lock_append(1, '[{\"type\": \"A\"}]', NULL)",
        "SELECT eventstore.tenant_key(identity.current_org_id())",
        "SELECT pg_advisory_xact_lock(1)",
        "SELECT nextval('eventstore.events_position_seq')",
    ] {
        let tx = begin(&mut client, Tenant::organization(org)).await.unwrap();
        let err = tx.batch_execute(statement).await.unwrap_err();
        assert_eq!(
            err.code(),
            Some(&SqlState::INSUFFICIENT_PRIVILEGE),
            "{statement}: {err}"
        );
    }
    let mut readonly = db.pool(DbRole::Readonly).get().await.unwrap();
    let tx = begin(&mut readonly, Tenant::organization(org))
        .await
        .unwrap();
    let err = append(&tx, &[NewEvent::new("A", json!({}))], None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, EventStoreError::Database(Error::PermissionDenied(_))),
        "{err:?}"
    );
    drop(tx);
    assert_eq!(event_count(&db).await, 1);
    assert_eq!(db.count("eventstore.event_tags").await, 1);
}

/// The log's row rules hold for every writer: through append() for the event type,
/// and for its owner writing rows directly, for metadata, stream versions and
/// complete stream columns.
#[tokio::test]
async fn the_log_rejects_rows_that_break_its_rules() {
    let (db, org) = setup(2).await;
    let mut client = db.pool(DbRole::App).get().await.unwrap();
    let type_rule = "value for domain event_type violates check constraint \"event_type_format\"";
    let long_type = "A".repeat(201);
    for event_type in ["1st", "has space", "", "Ä", long_type.as_str()] {
        let tx = begin(&mut client, Tenant::organization(org)).await.unwrap();
        let err = append(&tx, &[NewEvent::new(event_type, json!({}))], None)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::CHECK_VIOLATION), "{event_type}");
        assert_eq!(err.violation().unwrap().message, type_rule, "{event_type}");
    }
    let longest = "A".repeat(200);
    for event_type in ["A", "Course.Subscribed:v2", "a_b-c", longest.as_str()] {
        let tx = begin(&mut client, Tenant::organization(org)).await.unwrap();
        append(&tx, &[NewEvent::new(event_type, json!({}))], None)
            .await
            .unwrap();
    }
    for (columns, values, message) in [
        (
            "metadata",
            "'[]'",
            "value for domain eventstore.json_object violates check constraint \"json_object\"",
        ),
        (
            "aggregate_type, aggregate_id, aggregate_version",
            "'course', gen_random_uuid(), 0",
            "value for domain eventstore.stream_version violates check constraint \"stream_version_positive\"",
        ),
        (
            "aggregate_type, aggregate_id",
            "'course', gen_random_uuid()",
            "new row for relation \"events\" violates check constraint \"events_stream_complete\"",
        ),
    ] {
        // Only the owner can write rows directly (the application role cannot).
        let mut owner = db.pool(DbRole::Owner).get().await.unwrap();
        let tx = begin(&mut owner, Tenant::organization(org)).await.unwrap();
        let err = Error::from(
            tx.execute(
                &format!(
                    "INSERT INTO eventstore.events (type, data, {columns}) VALUES ('A', '{{}}', {values})"
                ),
                &[],
            )
            .await
            .unwrap_err(),
        );
        assert_eq!(err.code(), Some(&SqlState::CHECK_VIOLATION), "{columns}");
        assert_eq!(err.violation().unwrap().message, message, "{columns}");
    }
    assert_eq!(event_count(&db).await, 0);
}

/// The course rule of the decision tests: a seat while fewer than `capacity`
/// students subscribed.
fn seat(
    course: &str,
    student: &str,
    capacity: usize,
) -> impl FnMut(&[groundwork::queries::eventstore::events::Event]) -> eventstore::Decision<bool> {
    let (course, student) = (course.to_owned(), student.to_owned());
    move |events| {
        if events.len() >= capacity {
            return eventstore::Decision::Done(false);
        }
        eventstore::Decision::Append {
            events: vec![
                NewEvent::new("StudentSubscribed", json!({ "student": student }))
                    .tagged([format!("course:{course}"), format!("student:{student}")]),
            ],
            value: true,
        }
    }
}

/// Sets a transaction-local marker in a statement of its own, then reads it and the
/// tenant setting in another: both are gone unless a transaction was left open on
/// the connection. Simple-query messages, one each, so that a transaction pooler
/// cannot split a statement's prepare from its execution.
async fn left_over(client: &deadpool_postgres::Client) -> (Option<String>, Option<String>) {
    client
        .batch_execute("SELECT set_config('test.marker', 'left over', true)")
        .await
        .unwrap();
    let messages = client
        .simple_query(
            "SELECT nullif(current_setting('test.marker', true), ''), \
                    nullif(current_setting('app.current_org_id', true), '')",
        )
        .await
        .unwrap();
    let row = messages
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        })
        .unwrap();
    (row.get(0).map(str::to_owned), row.get(1).map(str::to_owned))
}

#[tokio::test]
async fn a_decision_reads_decides_and_appends_in_two_statements() {
    let (db, org) = setup(2).await;
    let mut client = db.pool(DbRole::App).get().await.unwrap();
    let query = Query::item(["StudentSubscribed"], ["course:math"]);
    let tenant = Tenant::organization(org);
    let first = eventstore::decide(
        &mut client,
        tenant,
        &query,
        eventstore::RetryPolicy::NEVER,
        seat("math", "s1", 1),
    )
    .await
    .unwrap();
    assert!(first.value);
    assert_eq!(first.attempts, 1);
    assert!(first.position.is_some());
    // Full: the rule refuses and nothing is appended.
    let second = eventstore::decide(
        &mut client,
        tenant,
        &query,
        eventstore::RetryPolicy::NEVER,
        seat("math", "s2", 1),
    )
    .await
    .unwrap();
    assert_eq!((second.value, second.position), (false, None));
    assert_eq!(event_count(&db).await, 1);
    // The connection is back outside any transaction: a transaction-local setting
    // does not outlive its statement.
    assert_eq!(left_over(&client).await, (None, None));
    // Without a tenant the append is refused and nothing is written.
    let err = eventstore::decide(
        &mut client,
        Tenant::default(),
        &query,
        eventstore::RetryPolicy::NEVER,
        seat("math", "s3", 5),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE), "{err}");
    assert_eq!(event_count(&db).await, 1);
}

/// Each tenant's decision reads and appends its own events only: tenant B's course
/// of the same name is empty however full A's is, and B's seat is B's.
#[tokio::test]
async fn a_decision_reads_and_appends_for_its_own_tenant_only() {
    let db = TestDb::builder().pool_size(2).build().await;
    let [a, b] = db.tenants().await;
    let mut client = db.pool(DbRole::App).get().await.unwrap();
    let query = Query::item(["StudentSubscribed"], ["course:math"]);
    for (tenant, student) in [(a, "s1"), (b, "s2")] {
        let decided = eventstore::decide(
            &mut client,
            tenant.tenant(),
            &query,
            eventstore::RetryPolicy::NEVER,
            seat("math", student, 1),
        )
        .await
        .unwrap();
        assert!(decided.value, "{tenant:?}");
    }
    let owner = db.pool(DbRole::Owner).get().await.unwrap();
    let per_tenant: Vec<(Uuid, String)> = owner
        .query(
            "SELECT organization_id, data ->> 'student' FROM eventstore.events ORDER BY position",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(
        per_tenant,
        [
            (a.organization_id, "s1".to_owned()),
            (b.organization_id, "s2".to_owned())
        ]
    );
}

/// Two writers read the same course before either appends; the one whose condition
/// fails reads again and decides again (here: refuses, the course being full).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_decisions_retry_on_a_failed_condition_and_never_oversell() {
    for policy in [
        eventstore::RetryPolicy::default(),
        eventstore::RetryPolicy::NEVER,
    ] {
        let (db, org) = setup(2).await;
        let both_read = Arc::new(std::sync::Barrier::new(2));
        let writers: Vec<_> = ["s1", "s2"]
            .into_iter()
            .map(|student| {
                let (db, both_read) = (db.clone(), both_read.clone());
                tokio::spawn(async move {
                    let mut client = db.pool(DbRole::App).get().await.unwrap();
                    let mut rule = seat("math", student, 1);
                    let mut first = true;
                    eventstore::decide(
                        &mut client,
                        Tenant::organization(org),
                        &Query::item(["StudentSubscribed"], ["course:math"]),
                        policy,
                        move |events| {
                            if std::mem::take(&mut first) {
                                // The rule is synchronous: wait for the other reader
                                // off the runtime's worker, whose queue may hold the
                                // other connection's task.
                                tokio::task::block_in_place(|| both_read.wait());
                            }
                            rule(events)
                        },
                    )
                    .await
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for writer in writers {
            outcomes.push(writer.await.unwrap());
        }
        assert_eq!(event_count(&db).await, 1, "{policy:?}");
        let won = outcomes
            .iter()
            .filter(|o| matches!(o, Ok(d) if d.value))
            .count();
        assert_eq!(won, 1, "{policy:?}: {outcomes:?}");
        let lost = outcomes
            .iter()
            .find(|o| !matches!(o, Ok(d) if d.value))
            .unwrap();
        if policy == eventstore::RetryPolicy::NEVER {
            assert!(
                matches!(lost, Err(EventStoreError::ConditionFailed(_))),
                "{lost:?}"
            );
        } else {
            let decided = lost.as_ref().unwrap();
            assert_eq!((decided.value, decided.attempts), (false, 2), "{lost:?}");
        }
    }
}

/// A decision that panics half-way leaves no transaction open on its pooled
/// connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_dropped_half_way_leaves_no_open_transaction() {
    let (db, org) = setup(1).await;
    let pool = db.pool(DbRole::App).clone();
    let task = tokio::spawn(async move {
        let mut client = pool.get().await.unwrap();
        let _ = eventstore::decide(
            &mut client,
            Tenant::organization(org),
            &Query::item(["StudentSubscribed"], ["course:math"]),
            eventstore::RetryPolicy::NEVER,
            |_events| -> eventstore::Decision<()> { panic!("the rule failed") },
        )
        .await;
    });
    assert!(task.await.unwrap_err().is_panic());
    // The pool's only connection: no transaction, no tenant left on it.
    let client = db.pool(DbRole::App).get().await.unwrap();
    assert_eq!(left_over(&client).await, (None, None));
    assert_eq!(event_count(&db).await, 0);
}

/// Index entries and rows the current transaction's scans of the event store's tables
/// and indexes have read so far.
async fn rows_read(tx: &tokio_postgres::Transaction<'_>) -> i64 {
    tx.query_one(
        "SELECT coalesce(sum(pg_stat_get_xact_tuples_returned(c.oid)
                            + pg_stat_get_xact_tuples_fetched(c.oid)), 0)::bigint
         FROM pg_class c WHERE c.relnamespace = 'eventstore'::regnamespace",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test]
async fn reads_and_appends_stay_probes_however_small_the_log_was_when_planned() {
    let (db, org) = setup(3).await;
    let tenant = Tenant::organization(org);
    let stream = Uuid::new_v4();
    let queries = [
        Query::item(["Enrolled", "Dropped"], ["course:1"]),
        Query::item(["Enrolled"], ["course:1", "student:1"]),
        Query::item(["Dropped"], Vec::<String>::new()),
    ];
    // Reads, conditional appends and a stream append, each in a transaction rolled back
    // (or committed, to `commit`), on one connection; the rows they read.
    async fn use_the_store(
        client: &mut deadpool_postgres::Client,
        tenant: Tenant,
        queries: &[Query],
        stream: Uuid,
        version: i32,
    ) -> i64 {
        let tx = begin(client, tenant).await.unwrap();
        let before = rows_read(&tx).await;
        for query in queries {
            let seen = read(&tx, query, 0, None).await.unwrap();
            assert!(!seen.is_empty(), "{query:?} reads its event");
            let condition = AppendCondition {
                fail_if_events_match: query.clone(),
                after: seen.last().map(|e| e.position),
            };
            let noted = NewEvent::new("Noted", json!({})).tagged(["note:1"]);
            append(&tx, &[noted], Some(&condition)).await.unwrap();
        }
        append_to_stream(
            &tx,
            &StreamAppend {
                aggregate_type: "cart",
                aggregate_id: stream,
                expected_version: version,
                events: &[NewEvent::new("ItemAdded", json!({}))],
            },
        )
        .await
        .unwrap();
        let read_here = rows_read(&tx).await - before;
        tx.rollback().await.unwrap();
        read_here
    }
    // A connection makes its plans while the log holds three events.
    let mut planned = db.pool(DbRole::App).get().await.unwrap();
    let tx = begin(&mut planned, tenant).await.unwrap();
    append(
        &tx,
        &[
            NewEvent::new("Enrolled", json!({})).tagged(["course:1", "student:1"]),
            NewEvent::new("Dropped", json!({})).tagged(["course:1"]),
        ],
        None,
    )
    .await
    .unwrap();
    append_to_stream(
        &tx,
        &StreamAppend {
            aggregate_type: "cart",
            aggregate_id: stream,
            expected_version: 0,
            events: &[NewEvent::new("CartCreated", json!({}))],
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let small = use_the_store(&mut planned, tenant, &queries, stream, 1).await;
    // `count` events none of these queries match, committed.
    let add_noise = |count: usize| {
        let db = &db;
        async move {
            let mut other = db.pool(DbRole::App).get().await.unwrap();
            let tx = begin(&mut other, tenant).await.unwrap();
            let noise: Vec<NewEvent> = (0..count)
                .map(|i| NewEvent::new("Noise", json!({"i": i})).tagged([format!("noise:{i}")]))
                .collect();
            for chunk in noise.chunks(1000) {
                append(&tx, chunk, None).await.unwrap();
            }
            tx.commit().await.unwrap();
        }
    };
    // Another connection makes its plans at 303 events, before any statistics: there,
    // an index led by the tenant alone can look as cheap as an event's key.
    add_noise(300).await;
    let mut planned_later = db.pool(DbRole::App).get().await.unwrap();
    let small_later = use_the_store(&mut planned_later, tenant, &queries, stream, 1).await;
    // Then the log grows to 3,303 events.
    add_noise(3000).await;
    // The same work on the same connections reads about as many rows as before, not the log.
    let grown = use_the_store(&mut planned, tenant, &queries, stream, 1).await;
    assert!(
        grown <= small + 20,
        "the store read {grown} rows and index entries with 3,303 events in the log, {small} with 3"
    );
    let grown_later = use_the_store(&mut planned_later, tenant, &queries, stream, 1).await;
    assert!(
        grown_later <= small_later + 20,
        "the store read {grown_later} rows and index entries with 3,303 events in the log, {small_later} with 303"
    );
}
