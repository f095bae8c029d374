//! `groundwork db health` and `db maintain` end to end, on a test server named by
//! `--database-url`: the exit status follows the worst check in every format, a login
//! role in `groundwork_monitor` may run the checks, and maintenance vacuums, analyzes
//! and applies retention.

use std::process::{Command, Output};

use groundwork_testing::{DbRole, TestDb};

fn groundwork(url: &str, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_groundwork"))
        .current_dir(dir.path())
        .args(args)
        .args(["--database-url", url])
        .env_remove("GROUNDWORK_ENV")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn text(out: &Output) -> String {
    format!("{}{}", stdout(out), String::from_utf8_lossy(&out.stderr))
}

async fn owner(db: &TestDb, sql: &str) {
    db.pool(DbRole::Owner)
        .get()
        .await
        .unwrap()
        .batch_execute(sql)
        .await
        .unwrap();
}

#[tokio::test]
async fn db_health_exits_with_the_worst_status_in_every_format() {
    let db = TestDb::new().await;
    let [tenant] = db.tenants().await;

    for role in [DbRole::Owner, DbRole::Monitor] {
        let out = groundwork(db.url(role), &["db", "health"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let table = stdout(&out);
        assert!(table.starts_with("CHECK "), "{table}");
        assert_eq!(table.lines().count(), 19, "{table}");
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("job_queue_depth") && l.contains(" ok ")),
            "{table}"
        );
    }

    let out = groundwork(
        db.url(DbRole::Monitor),
        &["db", "health", "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["checks"].as_array().unwrap().len(), 18);
    assert_eq!(json["checks"][0]["name"], "connections_used");

    // One due job against a warning threshold of 1, then a critical one of 1.
    db.with_tenant(DbRole::App, tenant.tenant(), async |tx| {
        tx.execute("SELECT messaging.enqueue_job('mail.send', '{}')", &[])
            .await?;
        Ok(())
    })
    .await
    .unwrap();
    owner(
        &db,
        "UPDATE ops.health_thresholds SET warning = 1, critical = 2 WHERE name = 'job_queue_depth'",
    )
    .await;
    let out = groundwork(
        db.url(DbRole::Monitor),
        &["db", "health", "--format", "prometheus"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let metrics = stdout(&out);
    for line in [
        "# TYPE groundwork_health_check_status gauge",
        "groundwork_health_check_status{check=\"job_queue_depth\"} 1",
        "groundwork_health_check_value{check=\"job_queue_depth\"} 1",
        "groundwork_health_check_threshold{check=\"job_queue_depth\"} 1",
        "groundwork_health_check_status{check=\"outbox_depth\"} 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}: {metrics}");
    }

    owner(
        &db,
        "UPDATE ops.health_thresholds SET critical = 1 WHERE name = 'job_queue_depth'",
    )
    .await;
    let out = groundwork(
        db.url(DbRole::Monitor),
        &["db", "health", "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["status"], "critical");
}

#[tokio::test]
async fn db_maintain_vacuums_analyzes_and_applies_retention() {
    let db = TestDb::new().await;
    let [tenant] = db.tenants().await;
    owner(
        &db,
        &format!(
            "CREATE TABLE public.maintained (id integer PRIMARY KEY) WITH (autovacuum_enabled = false);
             INSERT INTO public.maintained SELECT generate_series(1, 2000);
             DELETE FROM public.maintained WHERE id > 500;
             SELECT pg_stat_force_next_flush();
             INSERT INTO messaging.idempotency_keys
                 (organization_id, key, request_hash, created_at, expires_at)
             SELECT '{}', 'old-' || g, '\\x01'::bytea, now() - interval '3 days',
                    now() - interval '2 days'
             FROM generate_series(1, 3) g;",
            tenant.organization_id
        ),
    )
    .await;
    owner(&db, "SELECT 1").await;

    let out = groundwork(db.url(DbRole::Owner), &["db", "maintain"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = stdout(&out);
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("VACUUM (ANALYZE) public.maintained: 500 live, 1500 dead")),
        "{report}"
    );
    assert!(
        report
            .lines()
            .any(|l| l == "retention expired_idempotency_keys: 3 deleted"),
        "{report}"
    );
    assert!(
        report.lines().last().unwrap().starts_with("maintained "),
        "{report}"
    );
    let keys: i64 = db
        .pool(DbRole::Owner)
        .get()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM messaging.idempotency_keys", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(keys, 0);

    // The monitor runs the checks but not the upkeep.
    let out = groundwork(db.url(DbRole::Monitor), &["db", "maintain"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}
