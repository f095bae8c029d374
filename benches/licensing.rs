//! The entitlement check every request of the CAD platform makes, next to the cheapest
//! read there is: `licensing.has_entitlement(user, feature)` against a primary-key
//! select of one licence row (`license_get`), both as the application role with tenant
//! and user set, both prepared, interleaved in one loop on one connection inside one
//! tenant transaction, over 10,000 licences (100 tenants of 100) and 100,000 seat
//! assignments (10 per licence) loaded by the owner with triggers off.
//!
//! Run with `cargo bench --bench licensing`; the last line is
//! `licensing: entitlement_us=<median> pk_lookup_us=<median> ratio=<entitlement/pk>`.

use std::time::Instant;

use groundwork::queries::licensing::licenses::{license_get, license_has_entitlement};
use groundwork::tenant::{Tenant, begin};
use groundwork_testing::{DbRole, TestDb};
use uuid::Uuid;

// The median the benchmarks share.
#[path = "support/stats.rs"]
mod stats;
use stats::median;

const TENANTS: i64 = 100;
const LICENSES_PER_TENANT: i64 = 100;
const SEATS_PER_LICENSE: i64 = 10;
const USERS: i64 = 10_000;
const RUNS: usize = 5_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let db = TestDb::builder().pool_size(2).build().await;
    let loader = db.pool(DbRole::Owner).get().await.unwrap();
    let started = Instant::now();
    loader
        .batch_execute(&format!(
            "SET session_replication_role = replica;
             SELECT setseed(0.7);
             INSERT INTO identity.users (id, email, username, locale, timezone)
             SELECT gen_random_uuid(), 'user' || g || '@example.com', 'user' || g, 'tr',
                    'Europe/Istanbul'
             FROM generate_series(1, {USERS}) g;
             CREATE TEMP TABLE numbered_users AS
                 SELECT row_number() OVER (ORDER BY id) - 1 AS n, id FROM identity.users;
             INSERT INTO identity.organizations (id, name, slug)
             SELECT gen_random_uuid(), 'Atölye ' || g, 'atolye-' || g
             FROM generate_series(1, {TENANTS}) g;
             CREATE TEMP TABLE numbered_orgs AS
                 SELECT row_number() OVER (ORDER BY id) - 1 AS n, id FROM identity.organizations;
             INSERT INTO licensing.licenses (organization_id, id, user_id, plan, status, seats,
                                             seats_assigned, starts_at, ends_at, auto_renew)
             SELECT o.id, gen_random_uuid(), u.id,
                    (ARRAY['trial', 'standard', 'professional', 'enterprise'])[1 + l % 4],
                    CASE WHEN l % 10 = 9 THEN 'expired' ELSE 'active' END::licensing.license_status,
                    {SEATS_PER_LICENSE}, {SEATS_PER_LICENSE}, now() - interval '30 days',
                    now() + interval '335 days', l % 2 = 0
             FROM numbered_orgs o
             CROSS JOIN generate_series(0, {LICENSES_PER_TENANT} - 1) l
             JOIN numbered_users u ON u.n = (o.n * {LICENSES_PER_TENANT} + l) % {USERS};
             CREATE TEMP TABLE numbered_licenses AS
                 SELECT row_number() OVER (ORDER BY organization_id, id) - 1 AS n, organization_id, id
                 FROM licensing.licenses;
             INSERT INTO licensing.license_assignments (organization_id, license_id, user_id)
             SELECT l.organization_id, l.id, u.id
             FROM numbered_licenses l
             CROSS JOIN generate_series(0, {SEATS_PER_LICENSE} - 1) s
             JOIN numbered_users u ON u.n = (l.n * {SEATS_PER_LICENSE} + s * 7) % {USERS};
             ANALYZE;"
        ))
        .await
        .unwrap();
    let counts = loader
        .query_one(
            "SELECT (SELECT count(*) FROM licensing.licenses),
                    (SELECT count(*) FROM licensing.license_assignments)",
            &[],
        )
        .await
        .unwrap();
    let (licenses, assignments): (i64, i64) = (counts.get(0), counts.get(1));
    println!(
        "loaded {licenses} licences and {assignments} assignments in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // A user with a seat of an active professional licence, and that licence.
    let row = loader
        .query_one(
            "SELECT a.organization_id, a.user_id, a.license_id
             FROM licensing.license_assignments a
             JOIN licensing.licenses l ON l.organization_id = a.organization_id AND l.id = a.license_id
             WHERE l.plan = 'professional' AND l.status = 'active'
             ORDER BY a.license_id LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    let (org, user, license): (Uuid, Uuid, Uuid) = (row.get(0), row.get(1), row.get(2));

    let mut client = db.pool(DbRole::App).get().await.unwrap();
    let tx = begin(&mut client, Tenant::new(org, user)).await.unwrap();
    let entitled = license_has_entitlement()
        .bind(&tx, &user, &"cam")
        .one()
        .await
        .unwrap();
    assert!(entitled, "the chosen user holds a CAM seat");
    let plan = tx
        .query(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
             SELECT EXISTS (SELECT FROM licensing.license_assignments a
                            JOIN licensing.licenses l ON l.organization_id = a.organization_id
                                                     AND l.id = a.license_id
                            JOIN licensing.plans p ON p.code = l.plan
                            WHERE a.organization_id = identity.current_org_id() AND a.user_id = $1
                              AND licensing.is_usable(l)
                              AND coalesce(l.features -> 'cam', p.features -> 'cam') = 'true')",
            &[&user],
        )
        .await
        .unwrap();
    println!("the entitlement query's plan:");
    for line in plan {
        println!("  {}", line.get::<_, String>(0));
    }
    let (mut entitlement, mut pk) = (Vec::with_capacity(RUNS), Vec::with_capacity(RUNS));
    let features = ["cam", "thumbnail", "api_access", "mesh_analysis"];
    for round in 0..RUNS + RUNS / 10 {
        let started = Instant::now();
        std::hint::black_box(
            license_has_entitlement()
                .bind(&tx, &user, &features[round % features.len()])
                .one()
                .await
                .unwrap(),
        );
        let took_entitlement = started.elapsed().as_secs_f64() * 1e6;
        let started = Instant::now();
        std::hint::black_box(license_get().bind(&tx, &license).one().await.unwrap());
        let took_pk = started.elapsed().as_secs_f64() * 1e6;
        // The first tenth warms the caches and the plans.
        if round >= RUNS / 10 {
            entitlement.push(took_entitlement);
            pk.push(took_pk);
        }
    }
    let (entitlement_us, pk_us) = (median(entitlement), median(pk));
    println!(
        "licensing: entitlement_us={entitlement_us:.1} pk_lookup_us={pk_us:.1} ratio={:.2}",
        entitlement_us / pk_us
    );
}
