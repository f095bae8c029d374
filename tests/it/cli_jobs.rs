//! `groundwork jobs ...` end to end, on a test server named by `--database-url`: an
//! operator's view of every tenant's queue, and retry and cancel acting for the job's
//! tenant.

use crate::output::{groundwork_on, text};
use groundwork_testing::{DbRole, TestDb};

async fn status(db: &TestDb, id: i64) -> String {
    db.pool(DbRole::Owner)
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT status::text FROM messaging.jobs WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn jobs_stats_list_retry_and_cancel_every_tenants_jobs() {
    let db = TestDb::new().await;
    let [a, b] = db.tenants().await;
    let enqueue = |tenant: groundwork::tenant::Tenant, sql: &'static str| {
        let db = &db;
        async move {
            db.with_tenant(DbRole::App, tenant, async |tx| {
                Ok(tx.query_one(sql, &[]).await?.get::<_, i64>(0))
            })
            .await
            .unwrap()
        }
    };
    let waiting = enqueue(
        a.tenant(),
        "SELECT messaging.enqueue_job('mail.send', '{}')",
    )
    .await;
    let doomed = enqueue(
        b.tenant(),
        "SELECT messaging.enqueue_job('report', '{}', 'reports', 0::smallint, now(), NULL, 1)",
    )
    .await;
    let worker = db.pool(DbRole::Worker).get().await.unwrap();
    worker
        .batch_execute(&format!(
            "SELECT * FROM messaging.fetch_jobs('reports', 'w', 1);
             SELECT messaging.fail_job({doomed}, 'w', 'disk full');"
        ))
        .await
        .unwrap();
    assert_eq!(status(&db, doomed).await, "discarded");
    let url = db.url(DbRole::Owner);

    let out = groundwork_on(url, &["jobs", "stats"]);
    assert!(out.status.success(), "{}", text(&out));
    let stats = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<Vec<&str>> = stats
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0][..3], ["QUEUE", "STATUS", "JOBS"]);
    assert!(
        lines
            .iter()
            .any(|l| l[..3] == ["default", "available", "1"]),
        "{stats}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l[..3] == ["reports", "discarded", "1"]),
        "{stats}"
    );

    // Both tenants' jobs; filtered by status, with the last error.
    let out = groundwork_on(url, &["jobs", "list"]);
    let list = text(&out);
    assert!(list.contains(&a.organization_id.to_string()), "{list}");
    assert!(list.contains(&b.organization_id.to_string()), "{list}");
    let out = groundwork_on(url, &["jobs", "list", "--status", "discarded"]);
    let list = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(
        list.contains("disk full") && list.contains("report"),
        "{list}"
    );

    // Retry the discarded job; a running or unknown one is refused with exit 1.
    let out = groundwork_on(url, &["jobs", "retry", &doomed.to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(status(&db, doomed).await, "available");
    let out = groundwork_on(url, &["jobs", "retry", "999999999"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("job 999999999: no such job"));

    // Cancel; cancelling again is refused.
    let out = groundwork_on(url, &["jobs", "cancel", &waiting.to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(status(&db, waiting).await, "cancelled");
    let out = groundwork_on(url, &["jobs", "cancel", &waiting.to_string()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("not cancelled"), "{}", text(&out));
    // A usage error is exit 2.
    let out = groundwork_on(url, &["jobs", "retry"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
