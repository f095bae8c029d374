//! `groundwork db health`, `db maintain`, `db backup` and `db restore --verify` end to
//! end, on a test server named by
//! `--database-url`: the exit status follows the worst check in every format, a login
//! role in `groundwork_monitor` may run the checks, and maintenance vacuums, analyzes
//! and applies retention, and a backup restores (or is refused when corrupted).

use crate::output::{groundwork_on, stdout, text};
use groundwork_testing::{DbRole, TestDb};

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
        let out = groundwork_on(db.url(role), &["db", "health"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let table = stdout(&out);
        assert!(table.starts_with("CHECK "), "{table}");
        assert_eq!(table.lines().count(), 21, "{table}");
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("job_queue_depth") && l.contains(" ok ")),
            "{table}"
        );
    }

    let out = groundwork_on(
        db.url(DbRole::Monitor),
        &["db", "health", "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["checks"].as_array().unwrap().len(), 20);
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
    let out = groundwork_on(
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
    let out = groundwork_on(
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

    let out = groundwork_on(db.url(DbRole::Owner), &["db", "maintain"]);
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
    let out = groundwork_on(db.url(DbRole::Monitor), &["db", "maintain"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[tokio::test]
async fn a_backup_restores_with_equal_schema_and_row_counts_and_a_corrupted_one_is_refused() {
    let db = TestDb::new().await;
    let [tenant] = db.tenants().await;
    db.with_tenant(DbRole::App, tenant.tenant(), async |tx| {
        tx.batch_execute(
            "SELECT messaging.enqueue_job('mail.send', '{}');
             SELECT messaging.enqueue_job('mail.send', '{}');
             SELECT eventstore.append('[{\"type\": \"A\"}]');",
        )
        .await?;
        Ok(())
    })
    .await
    .unwrap();
    let url = db.url(DbRole::Owner);
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("backup");
    let backup_arg = backup.to_str().unwrap();
    let migrations = std::path::Path::new(groundwork_testing::DEFAULT_MIGRATIONS)
        .canonicalize()
        .unwrap();
    let verify = || {
        groundwork_on(
            url,
            &[
                "db",
                "restore",
                "--verify",
                backup_arg,
                "--source",
                migrations.to_str().unwrap(),
            ],
        )
    };

    let out = groundwork_on(url, &["db", "backup", "--out", backup_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).starts_with("backed up "), "{}", text(&out));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backup.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["row_counts"]["messaging.jobs"], 2);
    assert_eq!(manifest["row_counts"]["eventstore.events"], 1);
    assert_eq!(manifest["row_counts"]["identity.organizations"], 1);
    let newest = std::fs::read_dir(groundwork_testing::DEFAULT_MIGRATIONS)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.split('_').next()?.parse::<i64>().ok()
        })
        .max()
        .unwrap();
    assert_eq!(manifest["migration_version"], newest);

    let out = verify();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out)
            .contains("checksums match, restored into a scratch database with migrations verified"),
        "{}",
        text(&out)
    );
    // The second backup into the same directory is refused.
    let out = groundwork_on(url, &["db", "backup", "--out", backup_arg]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("already holds a backup"),
        "{}",
        text(&out)
    );

    // A manifest whose counts differ from the dump's names the table.
    let mut changed = manifest.clone();
    changed["row_counts"]["messaging.jobs"] = 3.into();
    std::fs::write(
        backup.join("manifest.json"),
        serde_json::to_string(&changed).unwrap(),
    )
    .unwrap();
    let out = verify();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("messaging.jobs: 2 rows restored, 3 backed up"),
        "{}",
        text(&out)
    );

    // One byte changed in the dump: refused before anything is restored.
    std::fs::write(
        backup.join("manifest.json"),
        serde_json::to_string(&manifest).unwrap(),
    )
    .unwrap();
    let dump = backup.join("database.dump");
    let mut bytes = std::fs::read(&dump).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&dump, bytes).unwrap();
    let out = verify();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let message = text(&out);
    assert!(
        message.contains("database.dump is corrupted: its SHA-256 is ")
            && message.contains("refusing to restore it"),
        "{message}"
    );
    // No scratch database is left behind.
    let left: i64 = db
        .pool(DbRole::Owner)
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname LIKE '%\\_verify\\_%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}
