//! Part 3 from Rust: the course-subscription decision on groundwork's event store (its
//! Rust API, as the application role with the tenant set per transaction) and on
//! disintegrate (disintegrate-postgres, its own schema in its own database).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use disintegrate::serde::json::Json;
use disintegrate::{Decision, Event, NoSnapshot, StateMutate, StateQuery};
use groundwork::eventstore::{
    Decision as GroundworkDecision, NewEvent, Query, RetryPolicy, append, decide,
};
use groundwork::tenant::{Tenant, begin};
use groundwork_testing::{DbRole, TestDb};

use crate::queries::median;
use serde::{Deserialize, Serialize};

/// Decisions per measurement window, shared among its writers.
const DECISIONS: usize = 3_200;
const ROUNDS: usize = 7;
/// Measurement windows: one per round and writer count, each on its own courses.
const WINDOWS: usize = ROUNDS * 2;

/// disintegrate-postgres 4.0's `fn_event_store_begin_epoch.sql`, with `0xFFFFFFFF`
/// written as 4294967295 so that PostgreSQL 15 accepts it.
const BEGIN_EPOCH_PG15: &str = "CREATE OR REPLACE FUNCTION event_store_begin_epoch()
RETURNS void AS $$
DECLARE
    id BIGINT;
    db_id INT;
BEGIN
    SELECT last_value INTO id FROM seq_event_event_id;
    SELECT oid INTO db_id FROM pg_database WHERE datname = current_database();

    PERFORM pg_try_advisory_xact_lock_shared(db_id, 0);
    PERFORM pg_try_advisory_xact_lock_shared(1, (id & 4294967295)::bit(32)::integer);
    PERFORM pg_try_advisory_xact_lock_shared(2, (id >> 32)::bit(32)::integer);
END;
$$ LANGUAGE plpgsql";
const COURSES: usize = 64;
const CAPACITY: u32 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Event, Serialize, Deserialize)]
#[stream(CourseEvent, [CourseCreated, StudentSubscribed])]
pub enum DomainEvent {
    CourseCreated {
        #[id]
        course_id: String,
        capacity: u32,
    },
    StudentSubscribed {
        #[id]
        course_id: String,
        #[id]
        student_id: String,
    },
}

#[derive(Default, StateQuery, Clone, Serialize, Deserialize)]
#[state_query(CourseEvent)]
pub struct Course {
    #[id]
    course_id: String,
    capacity: u32,
    subscribed: u32,
}

impl StateMutate for Course {
    fn mutate(&mut self, event: Self::Event) {
        match event {
            CourseEvent::CourseCreated { capacity, .. } => self.capacity = capacity,
            CourseEvent::StudentSubscribed { .. } => self.subscribed += 1,
        }
    }
}

#[derive(Debug)]
pub struct CourseFull;

struct Subscribe {
    course_id: String,
    student_id: String,
}

impl Decision for Subscribe {
    type Event = DomainEvent;
    type StateQuery = Course;
    type Error = CourseFull;

    fn state_query(&self) -> Course {
        Course {
            course_id: self.course_id.clone(),
            ..Default::default()
        }
    }

    fn process(&self, course: &Course) -> Result<Vec<DomainEvent>, CourseFull> {
        if course.subscribed >= course.capacity {
            return Err(CourseFull);
        }
        Ok(vec![DomainEvent::StudentSubscribed {
            course_id: self.course_id.clone(),
            student_id: self.student_id.clone(),
        }])
    }
}

struct Define {
    course_id: String,
}

impl Decision for Define {
    type Event = DomainEvent;
    type StateQuery = Course;
    type Error = CourseFull;

    fn state_query(&self) -> Course {
        Course {
            course_id: self.course_id.clone(),
            ..Default::default()
        }
    }

    fn process(&self, _: &Course) -> Result<Vec<DomainEvent>, CourseFull> {
        Ok(vec![DomainEvent::CourseCreated {
            course_id: self.course_id.clone(),
            capacity: CAPACITY,
        }])
    }
}

/// Decisions per second of `writers` tasks on disjoint courses from `first` to
/// `first + COURSES - 1`, each calling `decide` for its share of `DECISIONS`, and
/// refused ones (whose condition failed) per second. Every store takes the same
/// decisions on the same courses, so each reads histories of the same lengths
/// (in a window of fixed time the faster store would read longer ones).
async fn per_second<F, Fut>(writers: usize, first: usize, decide: F) -> (f64, f64)
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (done, refused, decide) = (done.clone(), refused.clone(), decide.clone());
            tokio::spawn(async move {
                for n in 0..(DECISIONS / writers) as u64 {
                    let course = first + w + writers * (n as usize % (COURSES / writers));
                    if decide(course, n).await {
                        done.fetch_add(1, Ordering::Relaxed);
                    } else {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    (
        done.load(Ordering::Relaxed) as f64 / seconds,
        refused.load(Ordering::Relaxed) as f64 / seconds,
    )
}

/// groundwork's decision, with `eventstore::decide`: read the course's events, decide,
/// append on the condition that nothing matching was appended after what was read, in
/// two round trips; a failed condition counts as refused (no retry, as disintegrate is
/// measured).
async fn groundwork_decide(
    pool: &deadpool_postgres::Pool,
    tenant: Tenant,
    course: usize,
    n: u64,
) -> bool {
    let mut client = pool.get().await.unwrap();
    let tag = format!("course:c{course}");
    let query = Query::item(["CourseCreated", "StudentSubscribed"], [tag.clone()]);
    let student = format!("student:s{course}-{n}");
    let decided = decide(&mut client, tenant, &query, RetryPolicy::NEVER, |events| {
        let mut capacity = 0u64;
        let mut subscribed = 0u64;
        for event in events {
            match event.r#type.as_str() {
                "CourseCreated" => capacity = event.data["capacity"].as_u64().unwrap_or(0),
                _ => subscribed += 1,
            }
        }
        if subscribed >= capacity {
            return GroundworkDecision::Done(false);
        }
        GroundworkDecision::Append {
            events: vec![
                NewEvent::new(
                    "StudentSubscribed",
                    serde_json::json!({ "student": student }),
                )
                .tagged([tag.clone(), student.clone()]),
            ],
            value: true,
        }
    })
    .await;
    matches!(decided, Ok(d) if d.value)
}

/// Decisions per second, 1 and 8 writers, for groundwork (Rust) and disintegrate, and
/// groundwork's ratio to disintegrate (the median of the rounds' ratios).
pub struct RustFigures {
    pub groundwork_1: f64,
    pub groundwork_8: f64,
    pub disintegrate_1: f64,
    pub disintegrate_8: f64,
    pub ratio_1: f64,
    pub ratio_8: f64,
}

pub async fn run(db: &TestDb) -> RustFigures {
    // groundwork, as the application role.
    let [tenant] = db.tenants().await;
    let tenant = tenant.tenant();
    let mut config = groundwork::pool::PoolConfig::new(db.url(DbRole::App));
    config.max_size = 8;
    let pool = config.build().unwrap();
    {
        let mut client = pool.get().await.unwrap();
        let tx = begin(&mut client, tenant).await.unwrap();
        for c in 0..WINDOWS * COURSES {
            let event = NewEvent::new("CourseCreated", serde_json::json!({ "capacity": CAPACITY }))
                .tagged([format!("course:c{c}")]);
            append(&tx, &[event], None).await.unwrap();
        }
        tx.commit().await.unwrap();
    }

    // disintegrate, in its own database.
    let owner = db.pool(DbRole::Owner).get().await.unwrap();
    for sql in [
        "DROP DATABASE IF EXISTS disintegrate_bench",
        "CREATE DATABASE disintegrate_bench",
    ] {
        owner.batch_execute(sql).await.unwrap();
    }
    let server = db.url(DbRole::Owner).rsplit_once('/').unwrap().0.to_owned();
    // disintegrate-postgres creates `event_store_begin_epoch()` with a hexadecimal
    // integer literal (`0xFFFFFFFF`), which PostgreSQL accepts only from version 16. On
    // an older server the function is created unchecked and then replaced by the same
    // body with the literal in decimal; nothing else of its schema is touched.
    let options: sqlx::postgres::PgConnectOptions =
        format!("{server}/disintegrate_bench").parse().unwrap();
    let pg = sqlx::postgres::PgPoolOptions::new()
        .max_connections(10)
        .connect_with(options.options([("check_function_bodies", "off")]))
        .await
        .unwrap();
    let maker = match disintegrate_postgres::PgEventStore::try_new(
        pg.clone(),
        Json::<DomainEvent>::default(),
    )
    .await
    {
        Ok(store) => {
            sqlx::query(BEGIN_EPOCH_PG15).execute(&pg).await.unwrap();
            let maker = Arc::new(disintegrate_postgres::decision_maker(store, NoSnapshot));
            for c in 0..WINDOWS * COURSES {
                maker
                    .make(Define {
                        course_id: format!("c{c}"),
                    })
                    .await
                    .unwrap();
            }
            Some(maker)
        }
        Err(e) => {
            println!(
                "\ndisintegrate not measured: initializing its event store failed on this server: {e}"
            );
            None
        }
    };

    // Rounds of each writer count on both stores, interleaved, the store that goes
    // first alternating from round to round; rates are medians of rounds, and a ratio
    // is the median of the rounds' ratios, each of two windows run back to back (a
    // slow spell of the machine then weighs on both sides of one ratio, not on one
    // store's median).
    let mut rounds: Vec<[(f64, f64); 4]> = Vec::new();
    // Every window on its own courses, so that no store reads longer histories because
    // it decided faster in an earlier window.
    for r in 0..ROUNDS {
        // Both stores with fresh statistics, as a database in service keeps them:
        // without, each side's plans may stay those made on nearly empty tables.
        owner.batch_execute("ANALYZE").await.unwrap();
        sqlx::query("ANALYZE").execute(&pg).await.unwrap();
        let mut round = [(0.0, 0.0); 4];
        for (i, writers) in [1, 8].into_iter().enumerate() {
            let first = (r * 2 + i) * COURSES;
            let stores = if r % 2 == 0 { [0, 1] } else { [1, 0] };
            for store in stores {
                round[2 * i + store] = if store == 0 {
                    let pool = pool.clone();
                    per_second(writers, first, move |course, n| {
                        let pool = pool.clone();
                        async move { groundwork_decide(&pool, tenant, course, n).await }
                    })
                    .await
                } else {
                    match &maker {
                        None => (f64::NAN, f64::NAN),
                        Some(maker) => {
                            let maker = maker.clone();
                            per_second(writers, first, move |course, n| {
                                let maker = maker.clone();
                                async move {
                                    maker
                                        .make(Subscribe {
                                            course_id: format!("c{course}"),
                                            student_id: format!("s{course}-{n}"),
                                        })
                                        .await
                                        .is_ok()
                                }
                            })
                            .await
                        }
                    }
                };
            }
        }
        rounds.push(round);
    }
    let median_of = |i: usize, refused: bool| {
        median(
            rounds
                .iter()
                .map(|r| if refused { r[i].1 } else { r[i].0 })
                .collect(),
        )
    };
    let ratio_of = |i: usize| median(rounds.iter().map(|r| r[i].0 / r[i + 1].0).collect());
    let figures = RustFigures {
        groundwork_1: median_of(0, false),
        disintegrate_1: median_of(1, false),
        groundwork_8: median_of(2, false),
        disintegrate_8: median_of(3, false),
        ratio_1: ratio_of(0),
        ratio_8: ratio_of(2),
    };
    let refused = [
        (1, median_of(0, true), median_of(1, true)),
        (8, median_of(2, true), median_of(3, true)),
    ];
    println!(
        "\nDCB course subscription, Rust client (decisions per second, median of {ROUNDS} interleaved rounds of {DECISIONS} decisions; ratio: groundwork over disintegrate, the median of the rounds' ratios)"
    );
    println!(
        "{:<28} {:>14} {:>14} {:>8}",
        "workload", "groundwork", "disintegrate", "ratio"
    );
    for (label, ours, theirs, ratio) in [
        (
            "decision, 1 writer",
            figures.groundwork_1,
            figures.disintegrate_1,
            figures.ratio_1,
        ),
        (
            "decision, 8 writers",
            figures.groundwork_8,
            figures.disintegrate_8,
            figures.ratio_8,
        ),
    ] {
        println!("{label:<28} {ours:>14.0} {theirs:>14.0} {ratio:>8.2}");
    }
    for (writers, ours, theirs) in refused {
        println!(
            "refused (condition failed), {writers} writer(s): groundwork {ours:.1}/s, disintegrate {theirs:.1}/s"
        );
    }
    figures
}
