//! API-key authentication throughput through the pool, next to a bare `SELECT 1`
//! round trip through the same pool in the same run.
//!
//! Each of `WORKERS` tasks takes a pooled connection of the application role per
//! request, as a request handler would, and either authenticates one of 100 issued keys (hash, look up,
//! record the use: one UPDATE ... RETURNING in a SECURITY DEFINER function) or runs
//! `SELECT 1`. Run with `cargo bench --bench identity`; the last line is
//! `api_key_auth: keys_per_s=<x> select1_per_s=<y> ratio=<x/y>`.
//!
//! Then personal data: with 10,000 users holding an encrypted phone, a login lookup
//! by phone (through the keyed blind index, `user_login_lookup_by_phone`) against the
//! same lookup by e-mail (`user_login_lookup`, a plaintext unique index), both as the
//! auth role with the master key set, interleaved on one connection; and an append of
//! an event carrying a personal value (sealed when written) against an append of the
//! same event with the value in the clear, each its own transaction with the tenant
//! and the master key set. The line is `pii: lookup_by_phone_us=<x> plain_lookup_us=<y>
//! ratio=<x/y> append_personal_us=<a> append_plain_us=<b> append_ratio=<a/b>`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use groundwork::eventstore::{self, NewEvent};
use groundwork::identity::{
    MasterKey, NewApiKey, Personal, authenticate_api_key, issue_api_key, set_master_key,
};
use groundwork::queries::identity::users::{user_login_lookup, user_login_lookup_by_phone};
use groundwork::tenant::{Tenant, begin};
use groundwork_testing::{DbRole, TestDb, TestTenant};
use serde_json::json;

// The median the benchmarks share.
#[path = "support/stats.rs"]
mod stats;
use stats::median;

const USERS: i64 = 10_000;
const PAIRS: usize = 5_000;
const APPENDS: usize = 1_000;

const WORKERS: usize = 8;
const RUN: Duration = Duration::from_secs(4);

#[derive(Clone, Copy)]
enum Work {
    AuthenticateKey,
    SelectOne,
}

async fn measure(db: &TestDb, keys: Arc<Vec<String>>, work: Work) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + RUN;
    let mut tasks = Vec::new();
    for worker in 0..WORKERS {
        let pool = db.pool(DbRole::App).clone();
        let keys = keys.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = worker;
            while Instant::now() < deadline {
                let client = pool.get().await.expect("pooled connection");
                match work {
                    Work::AuthenticateKey => {
                        let key = &keys[i % keys.len()];
                        let principal = authenticate_api_key(&client, key).await.expect("auth");
                        assert!(principal.is_some());
                    }
                    Work::SelectOne => {
                        client.query_one("SELECT 1", &[]).await.expect("select 1");
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
                i += WORKERS;
            }
        }));
    }
    let started = Instant::now();
    for task in tasks {
        task.await.expect("worker");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let db = TestDb::builder().pool_size(WORKERS).build().await;
    let [tenant] = db.tenants().await;
    let mut client = db.pool(DbRole::App).get().await.unwrap();
    let tx = begin(&mut client, tenant.tenant()).await.unwrap();
    let mut keys = Vec::new();
    for i in 0..100 {
        let issued = issue_api_key(&tx, &NewApiKey::new(format!("key {i}")).scopes(["read"]))
            .await
            .unwrap();
        keys.push(issued.plaintext);
    }
    tx.commit().await.unwrap();
    drop(client);
    let keys = Arc::new(keys);
    // Warm-up: fill the pool and the plan caches.
    measure(&db, keys.clone(), Work::SelectOne).await;
    let mut auth = Vec::new();
    let mut select = Vec::new();
    for _ in 0..2 {
        select.push(measure(&db, keys.clone(), Work::SelectOne).await);
        auth.push(measure(&db, keys.clone(), Work::AuthenticateKey).await);
    }
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let (keys_per_s, select_per_s) = (best(&auth), best(&select));
    println!(
        "{WORKERS} workers, 2 cores, {}s per run, best of 2 runs",
        RUN.as_secs()
    );
    println!("api key authentication: {keys_per_s:>9.0} /s   runs {auth:.0?}");
    println!("SELECT 1 round trip:    {select_per_s:>9.0} /s   runs {select:.0?}");
    println!(
        "api_key_auth: keys_per_s={keys_per_s:.0} select1_per_s={select_per_s:.0} ratio={:.2}",
        keys_per_s / select_per_s
    );
    personal_data(&db, &tenant).await;
}

/// Microseconds `work` takes.
async fn timed<F: Future<Output = ()>>(work: F) -> f64 {
    let started = Instant::now();
    work.await;
    started.elapsed().as_secs_f64() * 1e6
}

async fn personal_data(db: &TestDb, tenant: &TestTenant) {
    let key = MasterKey::generate().unwrap();
    // Users with encrypted phones, made by the owner with the master key set.
    let mut owner = db.pool(DbRole::Owner).get().await.unwrap();
    let tx = owner.transaction().await.unwrap();
    set_master_key(&tx, &key).await.unwrap();
    tx.execute(
        "INSERT INTO identity.users (email, username)
         SELECT format('pii%s@example.com', i), format('pii%s', i) FROM generate_series(1, $1::bigint) i",
        &[&USERS],
    )
    .await
    .unwrap();
    tx.execute(
        "UPDATE identity.users
         SET phone_encrypted = identity.personal_encrypt(id, '+90555' || lpad(substr(username, 4), 7, '0')),
             phone_blind = identity.personal_blind_index('phone', '+90555' || lpad(substr(username, 4), 7, '0'))
         WHERE username LIKE 'pii%'",
        &[],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    owner.execute("ANALYZE identity.users", &[]).await.unwrap();

    let mut auth = db.pool(DbRole::Auth).get().await.unwrap();
    let tx = begin(&mut auth, Tenant::default()).await.unwrap();
    set_master_key(&tx, &key).await.unwrap();
    let (by_phone, by_email) = (user_login_lookup_by_phone(), user_login_lookup());
    let (mut phone_us, mut email_us) = (Vec::new(), Vec::new());
    for i in 0..PAIRS + 500 {
        let n = (i as i64 * 7919) % USERS + 1;
        let phone = format!("+90555{n:07}");
        let email = format!("pii{n}@example.com");
        let p = timed(async {
            assert!(by_phone.bind(&tx, &phone).opt().await.unwrap().is_some());
        })
        .await;
        let e = timed(async {
            assert!(by_email.bind(&tx, &email).opt().await.unwrap().is_some());
        })
        .await;
        if i >= 500 {
            phone_us.push(p);
            email_us.push(e);
        }
    }
    tx.commit().await.unwrap();
    let (phone_us, email_us) = (median(phone_us), median(email_us));

    let mut app = db.pool(DbRole::App).get().await.unwrap();
    let (mut personal_us, mut plain_us) = (Vec::new(), Vec::new());
    for i in 0..APPENDS + 100 {
        let subject = uuid::Uuid::new_v4();
        let personal = NewEvent::new(
            "ContactChanged",
            json!({"contact": subject, "phone": Personal::new(subject, "+905551234567")}),
        )
        .tagged([format!("contact:{subject}")]);
        let plain = NewEvent::new(
            "ContactChanged",
            json!({"contact": subject, "phone": {"value": "+905551234567", "subject": subject}}),
        )
        .tagged([format!("contact:{subject}")]);
        let mut times = [0.0; 2];
        for (slot, event) in [(0, personal), (1, plain)] {
            times[slot] = timed(async {
                let tx = begin(&mut app, tenant.tenant()).await.unwrap();
                set_master_key(&tx, &key).await.unwrap();
                eventstore::append(&tx, &[event], None).await.unwrap();
                tx.commit().await.unwrap();
            })
            .await;
        }
        if i >= 100 {
            personal_us.push(times[0]);
            plain_us.push(times[1]);
        }
    }
    let (personal_us, plain_us) = (median(personal_us), median(plain_us));
    println!(
        "{USERS} users with encrypted phones; medians of {PAIRS} interleaved lookups and {APPENDS} interleaved appends"
    );
    println!(
        "pii: lookup_by_phone_us={phone_us:.1} plain_lookup_us={email_us:.1} ratio={:.2} append_personal_us={personal_us:.1} append_plain_us={plain_us:.1} append_ratio={:.2}",
        phone_us / email_us,
        personal_us / plain_us
    );
}
