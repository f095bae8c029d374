//! Event store and outbox throughput on one server, with baselines in the same run:
//!
//! - appends per second: 1 and 8 writers, unconditional and conditional, single
//!   events and batches of 100, next to three single-row INSERT-and-commit loops
//!   (1 and 8 writers): into a minimal table of the same shape, into a log with only
//!   the indexes an event store needs, and straight into `eventstore.events`;
//! - read-by-tag latency for 100 matching events with 1 million other events stored,
//!   next to the same read when only those 100 exist;
//! - outbox relay throughput: 4 relays delivering 20,000 messages in 100 partitions
//!   to the test publisher;
//! - subscription catch-up: a durable subscription working through 20,000 events in
//!   batches of 500.
//!
//! Appends, reads, enqueues and subscriptions run as the application role with the
//! tenant set, the relay as the relay role, as services connect; the INSERT baselines
//! and bulk loads run as the owner (the application role cannot write the log). Every
//! append commits on its own (autocommit with the tenant context set on the session),
//! as the plain insert does. Run with `cargo bench --bench eventstore`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use groundwork::eventstore::{AppendCondition, NewEvent, Query, append, read};
use groundwork::outbox::{Relay, RelayConfig, TestPublisher};
use groundwork::subscription::{Handler, Subscription};
use groundwork::tenant::Tenant;
use groundwork_testing::{DbRole, TestDb};
use serde_json::json;
use uuid::Uuid;

// The median the benchmarks share.
#[path = "support/stats.rs"]
mod stats;
use stats::median;

// The library's integration tests' set-up (organization, database).
#[path = "../crates/groundwork/tests/it/common.rs"]
#[allow(dead_code)]
mod common;

/// Each configuration runs ROUNDS times for RUN, the configurations interleaved (in
/// reverse order every other round), and the median round counts: on a shared 2-core
/// machine a single long run is at the mercy of whatever else (autovacuum, a
/// checkpoint) happens during it. A ratio is the median of each round's ratio, the two
/// windows of a round being seconds apart.
const RUN: Duration = Duration::from_secs(1);
const ROUNDS: usize = 7;

#[derive(Clone, Copy, Debug)]
enum Work {
    /// One row into a minimal table: bigserial key, type, tags (GIN), data.
    PlainInsert,
    /// The same event row into a bare log: every column of `eventstore.events` and
    /// only the indexes reads need (by type, by tag, by stream), without the tenant
    /// foreign key, the checks and the event-id and tenant-position indexes.
    BareLogInsert,
    /// The same event row straight into `eventstore.events`: the log's own indexes,
    /// checks and foreign key, without append()'s validation, locks and condition.
    RawInsert,
    Append {
        conditional: bool,
        batch: usize,
    },
}

/// A connection as `role` acting for `org` until it is returned.
async fn session(db: &TestDb, role: DbRole, org: Uuid) -> deadpool_postgres::Object {
    let client = db.pool(role).get().await.unwrap();
    client
        .query_one(
            "SELECT set_config('app.current_org_id', $1, false)",
            &[&org.to_string()],
        )
        .await
        .unwrap();
    client
}

/// Operations per second (an operation is one commit) and events per second.
async fn measure(db: &Arc<TestDb>, org: Uuid, writers: usize, work: Work) -> (f64, f64) {
    let ops = Arc::new(AtomicU64::new(0));
    let events = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + RUN;
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let db = db.clone();
        let (ops, events) = (ops.clone(), events.clone());
        tasks.push(tokio::spawn(async move {
            let role = match work {
                Work::Append { .. } => DbRole::App,
                _ => DbRole::Owner,
            };
            let client = session(&db, role, org).await;
            let account = format!("account:{}", Uuid::new_v4());
            let mut last: Option<i64> = None;
            let mut n = 0u64;
            while Instant::now() < deadline {
                match work {
                    Work::PlainInsert => {
                        // Prepared once per connection and looked up per call, as
                        // append()'s statement is.
                        let insert = client
                            .prepare_cached(
                                "INSERT INTO public.plain_events (type, tags, data) VALUES ($1, $2, $3)",
                            )
                            .await
                            .unwrap();
                        client
                            .execute(
                                &insert,
                                &[&"Deposited", &vec![account.clone()], &json!({"n": n, "writer": writer})],
                            )
                            .await
                            .unwrap();
                        events.fetch_add(1, Ordering::Relaxed);
                    }
                    Work::BareLogInsert | Work::RawInsert => {
                        let sql = if matches!(work, Work::RawInsert) {
                            "INSERT INTO eventstore.events (organization_id, type, tags, data) \
                             VALUES ($1, $2::text, $3, $4)"
                        } else {
                            "INSERT INTO public.bare_log (organization_id, type, tags, data) \
                             VALUES ($1, $2::text, $3, $4)"
                        };
                        let insert = client.prepare_cached(sql).await.unwrap();
                        client
                            .execute(
                                &insert,
                                &[&org, &"Deposited", &vec![account.clone()], &json!({"n": n, "writer": writer})],
                            )
                            .await
                            .unwrap();
                        events.fetch_add(1, Ordering::Relaxed);
                    }
                    Work::Append { conditional, batch } => {
                        let batch_events: Vec<NewEvent> = (0..batch)
                            .map(|i| {
                                NewEvent::new("Deposited", json!({"n": n, "i": i, "writer": writer}))
                                    .tagged([account.clone()])
                            })
                            .collect();
                        let condition = AppendCondition {
                            fail_if_events_match: Query::item(["Deposited"], [account.clone()]),
                            after: last,
                        };
                        let position = append(&client, &batch_events, conditional.then_some(&condition))
                            .await
                            .unwrap();
                        last = Some(position);
                        events.fetch_add(batch as u64, Ordering::Relaxed);
                    }
                }
                ops.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
        }));
    }
    let started = Instant::now();
    for task in tasks {
        task.await.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    (
        ops.load(Ordering::Relaxed) as f64 / seconds,
        events.load(Ordering::Relaxed) as f64 / seconds,
    )
}

async fn read_latency_ms(db: &TestDb, org: Uuid, tag: &str) -> (f64, usize) {
    let client = session(db, DbRole::App, org).await;
    let query = Query::item(Vec::<String>::new(), [tag]);
    let mut samples = Vec::new();
    let mut found = 0;
    for _ in 0..300 {
        let started = Instant::now();
        found = read(&client, &query, 0, Some(100)).await.unwrap().len();
        samples.push(started.elapsed());
    }
    samples.sort();
    (samples[samples.len() / 2].as_secs_f64() * 1000.0, found)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (db, tenant) = common::db_with_tenant(12).await;
    let org = tenant.organization_id;
    let client = db.pool(DbRole::Owner).get().await.unwrap();
    client
        .batch_execute(
            "CREATE TABLE public.plain_events (
                 position bigserial PRIMARY KEY, type text NOT NULL, tags text[] NOT NULL,
                 data jsonb NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now());
             CREATE INDEX ON public.plain_events USING gin (tags);
             CREATE TABLE public.bare_log (
                 position bigserial PRIMARY KEY,
                 event_id uuid NOT NULL DEFAULT gen_random_uuid(),
                 organization_id uuid NOT NULL, type text NOT NULL,
                 tags text[] NOT NULL DEFAULT '{}', data jsonb NOT NULL,
                 metadata jsonb NOT NULL DEFAULT '{}', aggregate_type text, aggregate_id uuid,
                 aggregate_version integer, correlation_id uuid, causation_id uuid,
                 recorded_at timestamptz NOT NULL DEFAULT now());
             CREATE INDEX ON public.bare_log (organization_id, type, position);
             CREATE INDEX ON public.bare_log USING gin (tags);
             CREATE UNIQUE INDEX ON public.bare_log (aggregate_id, aggregate_version);",
        )
        .await
        .unwrap();

    // Read latency with only the 100 matching events stored.
    {
        let writer = session(&db, DbRole::App, org).await;
        let hundred: Vec<NewEvent> = (0..100)
            .map(|i| NewEvent::new("Deposited", json!({"i": i})).tagged(["entity:42"]))
            .collect();
        append(&writer, &hundred, None).await.unwrap();
        client
            .batch_execute("VACUUM ANALYZE eventstore.events")
            .await
            .unwrap();
    }
    let (read_small_ms, found_small) = read_latency_ms(&db, org, "entity:42").await;

    println!(
        "append throughput, 2 cores, median of {ROUNDS} interleaved {}s rounds (ops = commits/s, events/s)",
        RUN.as_secs()
    );
    let mut single_conditional = 0.0;
    let mut plain_single = 0.0;
    let mut bare_single = 0.0;
    let mut raw_single = 0.0;
    let (mut conditional_to_raw, mut conditional_to_plain, mut bare_to_plain) = (0.0, 0.0, 0.0);
    let mut configurations = vec![Work::PlainInsert, Work::BareLogInsert, Work::RawInsert];
    for conditional in [false, true] {
        for batch in [1, 100] {
            configurations.push(Work::Append { conditional, batch });
        }
    }
    for writers in [1, 8] {
        let mut rounds = vec![Vec::new(); configurations.len()];
        for round in 0..ROUNDS {
            let mut order: Vec<usize> = (0..configurations.len()).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for i in order {
                rounds[i].push(measure(&db, org, writers, configurations[i]).await);
            }
        }
        // The median of configuration i's ops over configuration j's, round by round.
        let ratio = |i: usize, j: usize| {
            median(
                rounds[i]
                    .iter()
                    .zip(&rounds[j])
                    .map(|(a, b)| a.0 / b.0)
                    .collect(),
            )
        };
        let medians: Vec<(f64, f64)> = rounds
            .iter()
            .map(|samples| {
                (
                    median(samples.iter().map(|s| s.0).collect()),
                    median(samples.iter().map(|s| s.1).collect()),
                )
            })
            .collect();
        let (plain, bare, raw) = (medians[0].0, medians[1].0, medians[2].0);
        println!("  {writers} writer(s) plain INSERT + commit          {plain:>9.0} ops/s");
        println!(
            "  {writers} writer(s) INSERT into a bare log + commit{bare:>9.0} ops/s                      ({:.2}x plain)",
            ratio(1, 0)
        );
        println!(
            "  {writers} writer(s) INSERT into the log + commit   {raw:>9.0} ops/s                      ({:.2}x plain)",
            ratio(2, 0)
        );
        for (i, (work, (ops, events))) in configurations.iter().zip(&medians).enumerate().skip(3) {
            let Work::Append { conditional, batch } = *work else {
                continue;
            };
            println!(
                "  {writers} writer(s) append {:<13} batch {batch:>3} {ops:>9.0} ops/s {events:>9.0} events/s  ({:.2}x plain, {:.2}x log INSERT)",
                if conditional {
                    "conditional"
                } else {
                    "unconditional"
                },
                ratio(i, 0),
                ratio(i, 2)
            );
            if writers == 1 && conditional && batch == 1 {
                single_conditional = *ops;
                conditional_to_raw = ratio(i, 2);
                conditional_to_plain = ratio(i, 0);
            }
        }
        if writers == 1 {
            plain_single = plain;
            bare_single = bare;
            raw_single = raw;
            bare_to_plain = ratio(1, 0);
        }
    }

    // Read latency with a million other events stored.
    {
        let loader = session(&db, DbRole::Owner, org).await;
        let started = Instant::now();
        // Loaded in one statement, with the tag rows append() would write.
        loader
            .batch_execute(&format!(
                "WITH filler AS (
                     INSERT INTO eventstore.events (organization_id, type, tags, data)
                     SELECT '{org}', 'Filler', ARRAY['entity:' || (g % 100000 + 1000)], jsonb_build_object('g', g)
                     FROM generate_series(1, 1000000) g
                     RETURNING organization_id, tags[1] AS tag, position, type)
                 INSERT INTO eventstore.event_tags (organization_id, tag, position, type)
                 SELECT organization_id, tag, position, type FROM filler"
            ))
            .await
            .unwrap();
        // What autovacuum would do: flush the GIN pending list, refresh statistics.
        loader
            .batch_execute("VACUUM ANALYZE eventstore.events")
            .await
            .unwrap();
        let stored: i64 = loader
            .query_one("SELECT count(*) FROM eventstore.events", &[])
            .await
            .unwrap()
            .get(0);
        println!(
            "loaded 1,000,000 filler events in {:.1}s ({stored} events stored)",
            started.elapsed().as_secs_f64()
        );
    }
    let (read_large_ms, found_large) = read_latency_ms(&db, org, "entity:42").await;
    assert_eq!((found_small, found_large), (100, 100));
    println!(
        "read 100 events by tag: {read_small_ms:.3} ms with them alone, {read_large_ms:.3} ms among 1M+ (median of 300)"
    );

    // Outbox relay throughput.
    {
        let loader = session(&db, DbRole::App, org).await;
        loader
            .batch_execute(
                "INSERT INTO messaging.outbox_messages (topic, partition_key, payload)
                 SELECT 'orders', 'p' || (g % 100), jsonb_build_object('seq', g)
                 FROM generate_series(1, 20000) g",
            )
            .await
            .unwrap();
    }
    let publisher = Arc::new(TestPublisher::new());
    let started = Instant::now();
    let mut relays = Vec::new();
    for _ in 0..4 {
        let relay = Relay::new(db.pool(DbRole::Relay).clone(), RelayConfig::default());
        let publisher = publisher.clone();
        relays.push(tokio::spawn(async move {
            let mut empty = 0;
            while empty < 3 {
                let round = relay.run_once(publisher.as_ref()).await.unwrap();
                empty = if round.claimed == 0 { empty + 1 } else { 0 };
            }
        }));
    }
    for relay in relays {
        relay.await.unwrap();
    }
    let relay_per_s = publisher.delivered().len() as f64 / started.elapsed().as_secs_f64();
    println!("outbox relay: 4 relays, 100 partitions: {relay_per_s:.0} messages/s");

    let subscription_per_s = subscription_catch_up(&db).await;
    println!(
        "subscription catch-up: 20,000 events in batches of 500: {subscription_per_s:.0} events/s"
    );

    println!(
        "eventstore: conditional_append_per_s={single_conditional:.0} log_insert_per_s={raw_single:.0} \
         ratio={:.2} plain_insert_per_s={plain_single:.0} ratio_to_plain={:.2} bare_log_insert_per_s={bare_single:.0} \
         bare_log_to_plain={:.2} read_1m_ms={read_large_ms:.3} read_small_ms={read_small_ms:.3} read_ratio={:.2} relay_per_s={relay_per_s:.0} \
         subscription_per_s={subscription_per_s:.0}",
        conditional_to_raw,
        conditional_to_plain,
        bare_to_plain,
        read_large_ms / read_small_ms
    );
}

/// Counts what it is handed.
struct Counter(AtomicU64);

impl Handler for Counter {
    fn handle<'a>(
        &'a self,
        _tx: &'a deadpool_postgres::Transaction<'a>,
        events: &'a [groundwork::queries::eventstore::events::Event],
    ) -> futures::future::BoxFuture<'a, Result<(), groundwork::Error>> {
        self.0.fetch_add(events.len() as u64, Ordering::Relaxed);
        Box::pin(async { Ok(()) })
    }
}

/// Events per second a subscription of a second tenant works through, from a
/// standing start over 20,000 events appended in batches of 100.
async fn subscription_catch_up(db: &TestDb) -> f64 {
    let [tenant] = db.tenants().await;
    let org = tenant.organization_id;
    let writer = session(db, DbRole::App, org).await;
    for batch in 0..200 {
        let events: Vec<NewEvent> = (0..100)
            .map(|i| NewEvent::new("Ticked", json!({"batch": batch, "i": i})))
            .collect();
        append(&writer, &events, None).await.unwrap();
    }
    let subscription = Subscription::new(
        db.pool(DbRole::App).clone(),
        Tenant::organization(org),
        "bench",
        Query::all(),
    )
    .batch_size(500);
    let counter = Counter(AtomicU64::new(0));
    let started = Instant::now();
    while subscription.run_batch(&counter).await.unwrap() > 0 {}
    assert_eq!(counter.0.load(Ordering::Relaxed), 20_000);
    20_000.0 / started.elapsed().as_secs_f64()
}
