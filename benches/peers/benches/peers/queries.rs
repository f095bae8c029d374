//! Part 1: the same queries through four data layers.

use std::time::Instant;

use chrono::{DateTime, FixedOffset};
use groundwork::client::Params;
use groundwork::queries::identity::organization_members::organization_member_list_with_user;
use groundwork::queries::identity::organizations::{
    OrganizationCreateManyParams, OrganizationCreateParams, organization_create,
    organization_create_many, organization_get, organization_list,
};
use groundwork::types::identity::OrganizationStatus;
use groundwork_testing::{DbRole, TestDb};
use serde_json::Value;
use uuid::Uuid;

use crate::diesel_side::Diesel;

/// The SQL every contestant runs (groundwork's generated functions carry the same text).
pub const GET: &str = "SELECT id, name, slug, status, settings, metadata, created_by, updated_by, created_at, updated_at FROM identity.organizations WHERE id = $1";
pub const LIST: &str = "SELECT id, name, slug, status, settings, metadata, created_by, updated_by, created_at, updated_at FROM identity.organizations WHERE $1::timestamptz IS NULL OR (created_at, id) > ($1, $2::uuid) ORDER BY created_at, id LIMIT $3";
pub const JOIN: &str = "SELECT m.id, m.user_id, m.joined_at, m.created_at, u.email, u.username, u.first_name, u.last_name FROM identity.organization_members m JOIN identity.users u ON u.id = m.user_id WHERE m.organization_id = $1 AND ($2::uuid IS NULL OR m.id > $2) ORDER BY m.id LIMIT $3";
pub const INSERT: &str = "INSERT INTO identity.organizations (id, name, slug, settings, metadata, created_by, updated_by) VALUES (COALESCE($1, gen_random_uuid()), $2, $3, $4, $5, $6, $6) RETURNING id, name, slug, status, settings, metadata, created_by, updated_by, created_at, updated_at";
pub const INSERT_MANY: &str = "INSERT INTO identity.organizations (name, slug, settings, metadata) SELECT t.name, t.slug, '{}', '{}' FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(name, slug, n) ORDER BY t.n RETURNING id, name, slug, status, settings, metadata, created_by, updated_by, created_at, updated_at";

const ORGANIZATIONS: i64 = 10_000;
const MEMBERS: i64 = 200;
const ROUNDS: usize = 15;

/// An organization row, decoded by hand (the floor) and by sqlx.
#[derive(Debug, sqlx::FromRow)]
#[allow(dead_code)]
pub struct Org {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub status: OrgStatus,
    pub settings: Value,
    pub metadata: Value,
    pub created_by: Option<Uuid>,
    pub updated_by: Option<Uuid>,
    pub created_at: DateTime<FixedOffset>,
    pub updated_at: DateTime<FixedOffset>,
}

/// `identity.organization_status` for sqlx.
#[derive(Debug, Clone, Copy, sqlx::Type)]
#[sqlx(type_name = "identity.organization_status", rename_all = "lowercase")]
pub enum OrgStatus {
    Active,
    Suspended,
    Archived,
}

/// A member with its user, decoded by hand and by sqlx.
#[derive(Debug, sqlx::FromRow)]
#[allow(dead_code)]
pub struct Member {
    pub id: Uuid,
    pub user_id: Uuid,
    pub joined_at: Option<DateTime<FixedOffset>>,
    pub created_at: DateTime<FixedOffset>,
    pub email: String,
    pub username: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Get,
    List100,
    List10k,
    Join100,
    Insert1,
    Insert100,
}

const OPS: [(Op, &str, usize); 6] = [
    (Op::Get, "get 1 row by key", 400),
    (Op::List100, "list 100 rows", 100),
    (Op::List10k, "list 10,000 rows", 4),
    (Op::Join100, "join, 100 rows", 100),
    (Op::Insert1, "insert 1 row", 100),
    (Op::Insert100, "insert 100 rows, one statement", 10),
];

const NAMES: [&str; 4] = [
    "tokio-postgres (floor)",
    "groundwork",
    "sqlx",
    "diesel-async",
];

/// What every contestant works on.
#[derive(Clone)]
pub struct Fixture {
    pub org: Uuid,
    pub member_org: Uuid,
}

struct Floor {
    client: deadpool_postgres::Client,
    get: tokio_postgres::Statement,
    list: tokio_postgres::Statement,
    join: tokio_postgres::Statement,
    insert: tokio_postgres::Statement,
    insert_many: tokio_postgres::Statement,
}

/// An organization row as the floor decodes it.
#[allow(dead_code)]
struct HandOrg {
    id: Uuid,
    name: String,
    slug: String,
    status: OrganizationStatus,
    settings: Value,
    metadata: Value,
    created_by: Option<Uuid>,
    updated_by: Option<Uuid>,
    created_at: DateTime<FixedOffset>,
    updated_at: DateTime<FixedOffset>,
}

fn org_from_row(row: &tokio_postgres::Row) -> HandOrg {
    HandOrg {
        id: row.get(0),
        name: row.get(1),
        slug: row.get(2),
        status: row.get(3),
        settings: row.get(4),
        metadata: row.get(5),
        created_by: row.get(6),
        updated_by: row.get(7),
        created_at: row.get(8),
        updated_at: row.get(9),
    }
}

fn member_from_row(row: &tokio_postgres::Row) -> Member {
    Member {
        id: row.get(0),
        user_id: row.get(1),
        joined_at: row.get(2),
        created_at: row.get(3),
        email: row.get(4),
        username: row.get(5),
        first_name: row.get(6),
        last_name: row.get(7),
    }
}

/// Names for inserted rows, unique across the run.
pub fn slugs(tag: &str, seq: &mut u64, n: usize) -> (Vec<String>, Vec<String>) {
    (0..n)
        .map(|_| {
            *seq += 1;
            (format!("Bench {tag} {seq}"), format!("bench-{tag}-{seq}"))
        })
        .unzip()
}

impl Floor {
    async fn run(&self, op: Op, f: &Fixture, seq: &mut u64) -> usize {
        let c = &self.client;
        match op {
            Op::Get => org_from_row(&c.query_one(&self.get, &[&f.org]).await.unwrap())
                .name
                .len(),
            Op::List100 | Op::List10k => {
                let limit: i64 = if op == Op::List100 { 100 } else { 10_000 };
                let rows = c
                    .query(
                        &self.list,
                        &[&None::<DateTime<FixedOffset>>, &None::<Uuid>, &limit],
                    )
                    .await
                    .unwrap();
                rows.iter().map(org_from_row).count()
            }
            Op::Join100 => {
                let rows = c
                    .query(&self.join, &[&f.member_org, &None::<Uuid>, &100i64])
                    .await
                    .unwrap();
                rows.iter().map(member_from_row).count()
            }
            Op::Insert1 => {
                let (names, slugs) = slugs("floor", seq, 1);
                let row = c
                    .query_one(
                        &self.insert,
                        &[
                            &None::<Uuid>,
                            &names[0],
                            &slugs[0],
                            &serde_json::json!({}),
                            &serde_json::json!({}),
                            &None::<Uuid>,
                        ],
                    )
                    .await
                    .unwrap();
                org_from_row(&row).name.len()
            }
            Op::Insert100 => {
                let (names, slugs) = slugs("floor", seq, 100);
                let rows = c.query(&self.insert_many, &[&names, &slugs]).await.unwrap();
                rows.iter().map(org_from_row).count()
            }
        }
    }
}

struct Generated {
    client: deadpool_postgres::Client,
}

impl Generated {
    async fn run(&self, op: Op, f: &Fixture, seq: &mut u64) -> usize {
        let c = &self.client;
        match op {
            Op::Get => organization_get()
                .bind(c, &f.org)
                .one()
                .await
                .unwrap()
                .name
                .len(),
            Op::List100 | Op::List10k => {
                let limit: i64 = if op == Op::List100 { 100 } else { 10_000 };
                organization_list()
                    .bind(c, &None::<DateTime<FixedOffset>>, &None::<Uuid>, &limit)
                    .all()
                    .await
                    .unwrap()
                    .len()
            }
            Op::Join100 => organization_member_list_with_user()
                .bind(c, &None::<Uuid>, &100)
                .all()
                .await
                .unwrap()
                .len(),
            Op::Insert1 => {
                let (names, slugs) = slugs("generated", seq, 1);
                organization_create()
                    .params(
                        c,
                        &OrganizationCreateParams {
                            id: None,
                            name: names[0].as_str(),
                            slug: slugs[0].as_str(),
                            settings: serde_json::json!({}),
                            metadata: serde_json::json!({}),
                            created_by: None,
                        },
                    )
                    .one()
                    .await
                    .unwrap()
                    .name
                    .len()
            }
            Op::Insert100 => {
                let (names, slugs) = slugs("generated", seq, 100);
                organization_create_many()
                    .params(
                        c,
                        &OrganizationCreateManyParams {
                            names: &names,
                            slugs: &slugs,
                        },
                    )
                    .all()
                    .await
                    .unwrap()
                    .len()
            }
        }
    }
}

/// One connection from a `PgPool`, checked out once (as for every contestant).
struct Sqlx {
    conn: sqlx::pool::PoolConnection<sqlx::Postgres>,
}

impl Sqlx {
    async fn run(&mut self, op: Op, f: &Fixture, seq: &mut u64) -> usize {
        let p = &mut *self.conn;
        match op {
            Op::Get => sqlx::query_as::<_, Org>(GET)
                .bind(f.org)
                .fetch_one(p)
                .await
                .unwrap()
                .name
                .len(),
            Op::List100 | Op::List10k => {
                let limit: i64 = if op == Op::List100 { 100 } else { 10_000 };
                sqlx::query_as::<_, Org>(LIST)
                    .bind(None::<DateTime<FixedOffset>>)
                    .bind(None::<Uuid>)
                    .bind(limit)
                    .fetch_all(p)
                    .await
                    .unwrap()
                    .len()
            }
            Op::Join100 => sqlx::query_as::<_, Member>(JOIN)
                .bind(f.member_org)
                .bind(None::<Uuid>)
                .bind(100i64)
                .fetch_all(p)
                .await
                .unwrap()
                .len(),
            Op::Insert1 => {
                let (names, slugs) = slugs("sqlx", seq, 1);
                sqlx::query_as::<_, Org>(INSERT)
                    .bind(None::<Uuid>)
                    .bind(&names[0])
                    .bind(&slugs[0])
                    .bind(serde_json::json!({}))
                    .bind(serde_json::json!({}))
                    .bind(None::<Uuid>)
                    .fetch_one(p)
                    .await
                    .unwrap()
                    .name
                    .len()
            }
            Op::Insert100 => {
                let (names, slugs) = slugs("sqlx", seq, 100);
                sqlx::query_as::<_, Org>(INSERT_MANY)
                    .bind(&names)
                    .bind(&slugs)
                    .fetch_all(p)
                    .await
                    .unwrap()
                    .len()
            }
        }
    }
}

async fn seed(db: &TestDb) -> Fixture {
    let owner = db.pool(DbRole::Owner).get().await.unwrap();
    owner
        .batch_execute(&format!(
            "INSERT INTO identity.organizations (name, slug)
             SELECT 'Organization ' || g, 'organization-' || g FROM generate_series(1, {ORGANIZATIONS}) g;
             INSERT INTO identity.users (email, username, first_name, last_name)
             SELECT 'user' || g || '@example.com', 'user' || g, 'First' || g, 'Last' || g
             FROM generate_series(1, {MEMBERS}) g;
             INSERT INTO identity.organization_members (organization_id, user_id, role, status, joined_at)
             SELECT (SELECT id FROM identity.organizations WHERE slug = 'organization-1'), u.id, 'member', 'active', now()
             FROM identity.users u WHERE u.username LIKE 'user%';
             ANALYZE identity.organizations, identity.users, identity.organization_members;"
        ))
        .await
        .unwrap();
    let org: Uuid = owner
        .query_one(
            "SELECT id FROM identity.organizations WHERE slug = 'organization-5000'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let member_org: Uuid = owner
        .query_one(
            "SELECT id FROM identity.organizations WHERE slug = 'organization-1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    Fixture { org, member_org }
}

fn one_connection_pool(url: &str) -> deadpool_postgres::Pool {
    let mut config = groundwork::pool::PoolConfig::new(url);
    config.max_size = 1;
    config.build().unwrap()
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs part 1 and returns the `queries_vs_peers:` line.
pub async fn run(db: &TestDb) -> String {
    let fixture = seed(db).await;
    let url = db.url(DbRole::Owner).to_owned();

    let floor_client = one_connection_pool(&url).get().await.unwrap();
    let floor = Floor {
        get: floor_client.prepare(GET).await.unwrap(),
        list: floor_client.prepare(LIST).await.unwrap(),
        join: floor_client.prepare(JOIN).await.unwrap(),
        insert: floor_client.prepare(INSERT).await.unwrap(),
        insert_many: floor_client.prepare(INSERT_MANY).await.unwrap(),
        client: floor_client,
    };
    let generated = Generated {
        client: one_connection_pool(&url).get().await.unwrap(),
    };
    // groundwork's query files take the tenant from the context (the others pass it as
    // $1): the session acts for the organization whose members are joined.
    generated
        .client
        .batch_execute(&format!(
            "SELECT set_config('app.current_org_id', '{}', false)",
            fixture.member_org
        ))
        .await
        .unwrap();
    let sqlx_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let mut sqlx = Sqlx {
        conn: sqlx_pool.acquire().await.unwrap(),
    };
    let mut diesel = Diesel::connect(&url).await;

    // results[contestant][op] = per-round microseconds per operation
    let mut results = vec![vec![Vec::new(); OPS.len()]; NAMES.len()];
    let mut seq = 0u64;
    // One warm-up round prepares every statement everywhere; then the measured rounds.
    for round in 0..=ROUNDS {
        for (o, (op, _, iterations)) in OPS.iter().enumerate() {
            for turn in 0..NAMES.len() {
                let c = (turn + round) % NAMES.len();
                let started = Instant::now();
                for _ in 0..*iterations {
                    let n = match c {
                        0 => floor.run(*op, &fixture, &mut seq).await,
                        1 => generated.run(*op, &fixture, &mut seq).await,
                        2 => sqlx.run(*op, &fixture, &mut seq).await,
                        _ => diesel.run(*op, &fixture, &mut seq).await,
                    };
                    std::hint::black_box(n);
                }
                if round > 0 {
                    results[c][o].push(started.elapsed().as_secs_f64() * 1e6 / *iterations as f64);
                }
            }
        }
    }
    let medians: Vec<Vec<f64>> = results
        .into_iter()
        .map(|per_op| per_op.into_iter().map(median).collect())
        .collect();
    println!(
        "\nqueries (median of {ROUNDS} interleaved rounds, microseconds per operation; ratio to the floor)"
    );
    println!(
        "{:<32} {}",
        "operation",
        NAMES.map(|n| format!("{n:>26}")).join("")
    );
    for (o, (_, label, _)) in OPS.iter().enumerate() {
        let floor_us = medians[0][o];
        let cells: Vec<String> = (0..NAMES.len())
            .map(|c| {
                format!(
                    "{:>17.1} ({:>5.3}x)",
                    medians[c][o],
                    medians[c][o] / floor_us
                )
            })
            .collect();
        println!("{label:<32} {}", cells.join(""));
    }
    let ratio = |c: usize, op: Op| {
        let o = OPS.iter().position(|(x, _, _)| *x == op).unwrap();
        medians[c][o] / medians[0][o]
    };
    format!(
        "queries_vs_peers: ratio_1row={:.3} ratio_100rows={:.3} ratio_10k={:.3} sqlx_ratio_100rows={:.3} diesel_ratio_100rows={:.3}",
        ratio(1, Op::Get),
        ratio(1, Op::List100),
        ratio(1, Op::List10k),
        ratio(2, Op::List100),
        ratio(3, Op::List100),
    )
}
