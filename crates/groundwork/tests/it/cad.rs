//! CAD models and versions as the application role acting for a tenant and user: quotas
//! from the licence under racing uploads, gap-free version numbers, duplicate content,
//! soft deletion, processing jobs enqueued with the version and their results written
//! back by a worker, and isolation between tenants.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use groundwork::Error;
use groundwork::cad::{self, CadError, NewModel, NewVersion, ProcessingArgs};
use groundwork::jobs::{Job, JobContext, JobError, Worker, WorkerConfig};
use groundwork::licensing::{self, NewLicense};
use groundwork::queries::cad::model_versions::{model_version_get, model_version_list};
use groundwork::queries::cad::models::{
    Model, model_delete, model_get, model_list, model_quota, model_restore,
};
use groundwork::tenant::Tenant;
use groundwork::types::cad::{FileFormat, ModelType, Processing};
use groundwork_testing::fixtures::{MemberFixture, UserFixture};
use groundwork_testing::{DbRole, TestDb, TestTenant};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A member of `tenant` holding a seat of a fresh licence of `plan`.
async fn licensed(db: &TestDb, tenant: &TestTenant, plan: &str) -> Tenant {
    let user = db.insert(UserFixture::default()).await.id;
    db.insert(MemberFixture::new(tenant.organization_id, user))
        .await;
    db.with_tenant(DbRole::App, tenant.tenant(), async |tx| {
        let license = licensing::issue(
            tx,
            &NewLicense::new(
                tenant.user_id,
                plan,
                1,
                (Utc::now() + chrono::Duration::days(30)).fixed_offset(),
            ),
        )
        .await?;
        licensing::assign_seat(tx, license.id, user).await?;
        Ok(())
    })
    .await
    .unwrap();
    Tenant::new(tenant.organization_id, user)
}

async fn create(db: &TestDb, as_user: Tenant, name: &str) -> Result<Model, CadError> {
    let model = NewModel::new(ModelType::Part, name).params(serde_json::json!({"units": "mm"}));
    db.with_tenant(DbRole::App, as_user, async |tx| {
        Ok(cad::create_model(tx, &model).await?)
    })
    .await
    .map_err(CadError::from)
}

/// Version `n` of a model, for `user`'s tenant (keys under its prefix).
fn version(user: Tenant, model_id: Uuid, n: u8) -> NewVersion {
    let org = user.organization_id.unwrap();
    NewVersion {
        model_id,
        storage_key: format!("{org}/models/{model_id}/{n}-{}", Uuid::new_v4()),
        sha256: [n; 32],
        size_bytes: 1024 + i64::from(n),
        file_format: FileFormat::Step,
        processing: Vec::new(),
    }
}

async fn upload(db: &TestDb, as_user: Tenant, new: NewVersion) -> Result<cad::Uploaded, CadError> {
    db.with_tenant(DbRole::App, as_user, async |tx| {
        Ok(cad::upload_version(tx, &new).await?)
    })
    .await
    .map_err(CadError::from)
}

/// Uploads versions `1..=n` of `model_id` (content `[k; 32]`) from `n` transactions
/// that start together; each one's outcome, in order.
async fn race_uploads(
    db: &Arc<TestDb>,
    user: Tenant,
    model_id: Uuid,
    n: u8,
) -> Vec<Result<cad::Uploaded, CadError>> {
    let barrier = Arc::new(tokio::sync::Barrier::new(usize::from(n)));
    let tasks: Vec<_> = (1..=n)
        .map(|k| {
            let (db, barrier) = (db.clone(), barrier.clone());
            tokio::spawn(async move {
                let new = version(user, model_id, k);
                let mut client = db.pool(DbRole::App).get().await.unwrap();
                groundwork::tenant::with_tenant(&mut client, user, async |tx| {
                    barrier.wait().await;
                    Ok(cad::upload_version(tx, &new).await?)
                })
                .await
                .map_err(CadError::from)
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    outcomes
}

fn code(error: &CadError) -> (String, String) {
    let v = error.violation().expect("a server error");
    (
        v.code.code().to_owned(),
        v.constraint.clone().unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_racing_creations_against_a_quota_of_three_make_three() {
    let db = Arc::new(TestDb::builder().pool_size(11).build().await);
    let [a] = db.tenants().await;
    // Without a seat, nothing at all.
    assert!(matches!(
        create(&db, a.tenant(), "no licence").await,
        Err(CadError::NotEntitled { ref feature, .. }) if feature == "models"
    ));
    let user = licensed(&db, &a, "trial").await;
    let barrier = Arc::new(tokio::sync::Barrier::new(10));
    let tasks: Vec<_> = (0..10)
        .map(|n| {
            let (db, barrier) = (db.clone(), barrier.clone());
            tokio::spawn(async move {
                let model = NewModel::new(ModelType::Part, format!("bracket {n}"));
                let mut client = db.pool(DbRole::App).get().await.unwrap();
                groundwork::tenant::with_tenant(&mut client, user, async |tx| {
                    barrier.wait().await;
                    Ok(cad::create_model(tx, &model).await?)
                })
                .await
                .map_err(CadError::from)
            })
        })
        .collect();
    let mut made = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => made += 1,
            Err(CadError::QuotaExceeded { limit: 3, .. }) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(made, 3);
    assert_eq!(db.count("cad.models").await, 3);
    let (models, max) = db
        .with_tenant(DbRole::App, user, async |tx| {
            let q = model_quota().bind(tx).one().await?;
            Ok((q.models, q.max_models))
        })
        .await
        .unwrap();
    assert_eq!((models, max), (3, Some(3)));
    // Soft deletion gives a place back; restoring takes it again.
    let listed = db
        .with_tenant(DbRole::App, user, async |tx| {
            Ok(model_list()
                .bind(
                    tx,
                    &None::<chrono::DateTime<chrono::FixedOffset>>,
                    &None::<Uuid>,
                    &10,
                )
                .all()
                .await?)
        })
        .await
        .unwrap();
    let gone = listed[0].id;
    db.with_tenant(DbRole::App, user, async |tx| {
        Ok(model_delete().bind(tx, &gone).await?)
    })
    .await
    .unwrap();
    create(&db, user, "replacement").await.unwrap();
    let restored = db
        .with_tenant(DbRole::App, user, async |tx| {
            Ok(model_restore().bind(tx, &gone).await?)
        })
        .await
        .map_err(CadError::from);
    assert!(matches!(
        restored,
        Err(CadError::QuotaExceeded { limit: 3, .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_uploads_number_versions_without_gaps() {
    let db = Arc::new(TestDb::builder().pool_size(11).build().await);
    let [a] = db.tenants().await;
    let user = licensed(&db, &a, "standard").await;
    let model = create(&db, user, "gearbox").await.unwrap();
    let mut numbers: Vec<i32> = race_uploads(&db, user, model.id, 10)
        .await
        .into_iter()
        .map(|outcome| outcome.unwrap().version.version)
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=10).collect::<Vec<i32>>());
    // A refused upload takes no number.
    let duplicate = upload(&db, user, version(user, model.id, 4)).await;
    match duplicate {
        Err(CadError::DuplicateContent { version, .. }) => {
            let listed = db
                .with_tenant(DbRole::App, user, async |tx| {
                    Ok(model_version_list().bind(tx, &model.id).all().await?)
                })
                .await
                .unwrap();
            let same = listed.iter().find(|v| v.sha256 == vec![4u8; 32]).unwrap();
            assert_eq!(same.version, version);
        }
        other => panic!("{other:?}"),
    }
    let next = upload(&db, user, version(user, model.id, 11))
        .await
        .unwrap();
    assert_eq!(next.version.version, 11);
    let current = db
        .with_tenant(DbRole::App, user, async |tx| {
            Ok(model_get().bind(tx, &model.id, &false).one().await?)
        })
        .await
        .unwrap();
    assert_eq!(
        (current.current_version, current.file_format),
        (11, Some(FileFormat::Step))
    );
}

#[tokio::test]
async fn version_rules_are_refused_with_their_errors_and_write_nothing() {
    let db = TestDb::new().await;
    let [a] = db.tenants().await;
    let user = licensed(&db, &a, "trial").await;
    let model = create(&db, user, "clamp").await.unwrap();
    let bad = [
        (
            NewVersion {
                size_bytes: 0,
                ..version(user, model.id, 1)
            },
            ("23514", "model_versions_size_bytes_range"),
        ),
        (
            NewVersion {
                storage_key: String::new(),
                ..version(user, model.id, 1)
            },
            ("23514", "model_versions_storage_key_length"),
        ),
        (
            NewVersion {
                storage_key: "k".repeat(1025),
                ..version(user, model.id, 1)
            },
            ("23514", "model_versions_storage_key_length"),
        ),
    ];
    for (new, (sqlstate, constraint)) in bad {
        let err = upload(&db, user, new).await.unwrap_err();
        assert_eq!(code(&err), (sqlstate.to_owned(), constraint.to_owned()));
    }
    // A SHA-256 is 32 bytes.
    let app = db.pool(DbRole::App).get().await.unwrap();
    let mut app = app;
    let short = groundwork::tenant::with_tenant(&mut app, user, async |tx| {
        Ok(tx
            .execute(
                "INSERT INTO cad.model_versions (model_id, storage_key, sha256, size_bytes, file_format)
                 VALUES ($1, 'k', '\\x00'::bytea, 1, 'stl')",
                &[&model.id],
            )
            .await?)
    })
    .await
    .map_err(CadError::from)
    .unwrap_err();
    assert_eq!(
        code(&short),
        (
            "23514".to_owned(),
            "model_versions_sha256_length".to_owned()
        )
    );
    assert_eq!(db.count("cad.model_versions").await, 0);
    // The trial plan's 5 versions per model.
    for n in 1..=5 {
        upload(&db, user, version(user, model.id, n)).await.unwrap();
    }
    assert!(matches!(
        upload(&db, user, version(user, model.id, 6)).await,
        Err(CadError::QuotaExceeded { limit: 5, .. })
    ));
    // The same storage key twice in a tenant.
    let other = create(&db, user, "other").await.unwrap();
    let first = upload(&db, user, version(user, other.id, 1)).await.unwrap();
    let reused = upload(
        &db,
        user,
        NewVersion {
            storage_key: first.version.storage_key.clone(),
            ..version(user, other.id, 2)
        },
    )
    .await
    .unwrap_err();
    assert_eq!(
        code(&reused),
        (
            "23505".to_owned(),
            "model_versions_storage_key_key".to_owned()
        )
    );
    // A soft-deleted or unknown model takes no versions and is out of every read.
    db.with_tenant(DbRole::App, user, async |tx| {
        Ok(model_delete().bind(tx, &other.id).await?)
    })
    .await
    .unwrap();
    for model_id in [other.id, Uuid::new_v4()] {
        assert!(matches!(
            upload(&db, user, version(user, model_id, 9)).await,
            Err(CadError::NotFound(_))
        ));
    }
    let (hidden, shown, version_hidden) = db
        .with_tenant(DbRole::App, user, async |tx| {
            Ok((
                model_get().bind(tx, &other.id, &false).opt().await?,
                model_get().bind(tx, &other.id, &true).opt().await?,
                model_version_get().bind(tx, &other.id, &1).opt().await?,
            ))
        })
        .await
        .unwrap();
    assert!(hidden.is_none() && version_hidden.is_none());
    assert!(shown.unwrap().deleted_at.is_some());
    assert_eq!(db.count("cad.model_versions").await, 6);
    // The version counter and the owner are the database's.
    let mut app = db.pool(DbRole::App).get().await.unwrap();
    for forged in [
        "UPDATE cad.models SET current_version = 1",
        "UPDATE cad.model_versions SET sha256 = sha256",
        "DELETE FROM cad.models",
    ] {
        let result = groundwork::tenant::with_tenant(&mut app, user, async |tx| {
            Ok(tx.execute(forged, &[]).await?)
        })
        .await;
        let err: Error = result.unwrap_err();
        assert_eq!(err.code().unwrap().code(), "42501", "{forged}");
    }
}

/// The thumbnail job of the tests' worker: records a fake result.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct Thumbnail(ProcessingArgs);

impl Job for Thumbnail {
    const KIND: &'static str = "cad.thumbnail";

    async fn run(self, ctx: JobContext) -> Result<(), JobError> {
        let args = self.0;
        ctx.with_tenant(async |tx| {
            cad::record_result(
                tx,
                args.model_id,
                args.version,
                Processing::Thumbnail,
                &serde_json::json!({"width": 256, "max_runtime_seconds": args.max_runtime_seconds}),
            )
            .await?;
            Ok(())
        })
        .await?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processing_is_enqueued_with_the_version_only_when_entitled() {
    let db = TestDb::builder().pool_size(8).build().await;
    let [a, b] = db.tenants().await;
    let user = licensed(&db, &a, "trial").await;
    let model = create(&db, user, "flange").await.unwrap();
    // CAM needs a plan with it: the whole upload is refused, version and jobs.
    let refused = upload(
        &db,
        user,
        NewVersion {
            processing: vec![Processing::Thumbnail, Processing::CamToolpath],
            ..version(user, model.id, 1)
        },
    )
    .await;
    assert!(matches!(
        refused,
        Err(CadError::NotEntitled { ref feature, .. }) if feature == "cam"
    ));
    assert_eq!(db.count("cad.model_versions").await, 0);
    assert_eq!(db.count("messaging.jobs").await, 0);
    let uploaded = upload(
        &db,
        user,
        NewVersion {
            processing: vec![Processing::Thumbnail],
            ..version(user, model.id, 1)
        },
    )
    .await
    .unwrap();
    assert_eq!(uploaded.jobs.len(), 1);
    assert_eq!(
        db.count(
            "messaging.jobs WHERE kind = 'cad.thumbnail' AND queue = 'cad'
               AND args->>'max_runtime_seconds' = '300' AND idempotency_key LIKE 'cad:%:1:thumbnail'"
        )
        .await,
        1
    );
    // Asking again is the same job.
    let again = db
        .with_tenant(DbRole::App, user, async |tx| {
            Ok(
                groundwork::queries::cad::model_versions::model_version_request_processing()
                    .bind(tx, &model.id, &1, &Processing::Thumbnail)
                    .one()
                    .await?,
            )
        })
        .await
        .unwrap();
    assert_eq!(again, uploaded.jobs[0]);
    // A worker runs it and writes the result back into the version's metrics.
    let worker = Worker::new(
        db.pool(DbRole::Worker).clone(),
        db.pool(DbRole::App).clone(),
        WorkerConfig::default()
            .poll_interval(Duration::from_millis(100))
            .listen_url(db.url(DbRole::Worker)),
    )
    .register::<Thumbnail>()
    .queue("cad", 2)
    .start();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while db.count("messaging.jobs WHERE status = 'completed'").await < 1 {
        assert!(std::time::Instant::now() < deadline, "the job did not run");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.shutdown().await;
    let processed = db
        .with_tenant(DbRole::App, user, async |tx| {
            Ok(model_version_get().bind(tx, &model.id, &1).one().await?)
        })
        .await
        .unwrap();
    assert_eq!(processed.metrics["thumbnail"]["width"], 256);
    // Another tenant sees none of it, and cannot ask for its processing.
    let (seen, versions) = db
        .with_tenant(DbRole::App, b.tenant(), async |tx| {
            Ok((
                model_get().bind(tx, &model.id, &true).opt().await?,
                model_version_list().bind(tx, &model.id).all().await?,
            ))
        })
        .await
        .unwrap();
    assert!(seen.is_none() && versions.is_empty());
    let foreign = db
        .with_tenant(DbRole::App, b.tenant(), async |tx| {
            Ok(
                groundwork::queries::cad::model_versions::model_version_request_processing()
                    .bind(tx, &model.id, &1, &Processing::Thumbnail)
                    .one()
                    .await?,
            )
        })
        .await
        .map_err(CadError::from);
    assert!(matches!(foreign, Err(CadError::NotFound(_))));
    let b_user = licensed(&db, &b, "enterprise").await;
    assert!(matches!(
        upload(&db, b_user, version(b_user, model.id, 2)).await,
        Err(CadError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_racing_uploads_against_a_quota_of_three_versions_make_three() {
    let db = Arc::new(TestDb::builder().pool_size(11).build().await);
    let [a] = db.tenants().await;
    // A plan of the owner's catalogue with three versions per model.
    db.pool(DbRole::Owner)
        .get()
        .await
        .unwrap()
        .batch_execute(
            "INSERT INTO licensing.plans (code, name, features, max_models, max_versions_per_model,
                                          max_job_runtime)
             VALUES ('tiny', 'Tiny', '{}', 1, 3, '1 minute')",
        )
        .await
        .unwrap();
    let user = licensed(&db, &a, "tiny").await;
    let model = create(&db, user, "washer").await.unwrap();
    assert!(matches!(
        create(&db, user, "second").await,
        Err(CadError::QuotaExceeded { limit: 1, .. })
    ));
    let mut numbers = Vec::new();
    for outcome in race_uploads(&db, user, model.id, 10).await {
        match outcome {
            Ok(uploaded) => numbers.push(uploaded.version.version),
            Err(CadError::QuotaExceeded { limit: 3, .. }) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    numbers.sort_unstable();
    assert_eq!(numbers, vec![1, 2, 3]);
    assert_eq!(db.count("cad.model_versions").await, 3);
}

#[tokio::test]
async fn model_checks_are_refused_and_write_nothing() {
    let db = TestDb::new().await;
    let [a] = db.tenants().await;
    let user = licensed(&db, &a, "standard").await;
    let cases = [
        (NewModel::new(ModelType::Part, " "), "models_name_length"),
        (
            NewModel::new(ModelType::Part, "x".repeat(256)),
            "models_name_length",
        ),
        (
            NewModel::new(ModelType::Part, "bad params").params(serde_json::json!([1, 2])),
            "models_params_object",
        ),
    ];
    for (model, constraint) in cases {
        let err = db
            .with_tenant(DbRole::App, user, async |tx| {
                Ok(cad::create_model(tx, &model).await?)
            })
            .await
            .map_err(CadError::from)
            .unwrap_err();
        assert_eq!(code(&err), ("23514".to_owned(), constraint.to_owned()));
    }
    assert_eq!(db.count("cad.models").await, 0);
    // The quota counts only what was made.
    let (models, _) = db
        .with_tenant(DbRole::App, user, async |tx| {
            let q = model_quota().bind(tx).one().await?;
            Ok((q.models, q.max_models))
        })
        .await
        .unwrap();
    assert_eq!(models, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_expiry_job_runs_on_the_queue_for_its_tenant() {
    let db = TestDb::builder().pool_size(8).build().await;
    let [a] = db.tenants().await;
    let owner = db.client(DbRole::Owner).await;
    let expired: Uuid = owner
        .query_one(
            "INSERT INTO licensing.licenses (organization_id, user_id, plan, seats, starts_at, ends_at)
             VALUES ($1, $2, 'standard', 1, now() - interval '2 days', now() - interval '1 day')
             RETURNING id",
            &[&a.organization_id, &a.user_id],
        )
        .await
        .unwrap()
        .get(0);
    db.with_tenant(DbRole::App, a.tenant(), async |tx| {
        groundwork::jobs::enqueue(tx, &licensing::ProcessExpirations {}).await
    })
    .await
    .unwrap();
    let worker = Worker::new(
        db.pool(DbRole::Worker).clone(),
        db.pool(DbRole::App).clone(),
        WorkerConfig::default().poll_interval(Duration::from_millis(100)),
    )
    .register::<licensing::ProcessExpirations>()
    .queue("default", 1)
    .start();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while db.count("messaging.jobs WHERE status = 'completed'").await < 1 {
        assert!(std::time::Instant::now() < deadline, "the job did not run");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.shutdown().await;
    let status: String = owner
        .query_one(
            "SELECT status::text FROM licensing.licenses WHERE id = $1",
            &[&expired],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "expired");
    assert_eq!(
        db.count("messaging.jobs WHERE metrics->>'changed' = '1'")
            .await,
        1
    );
}

/// Runs `sql` as the application role acting for `user`.
async fn app_execute(db: &TestDb, user: Tenant, sql: &str) -> Result<u64, Error> {
    db.with_tenant(DbRole::App, user, async |tx| {
        Ok(tx.execute(sql, &[]).await?)
    })
    .await
}

#[tokio::test]
async fn rows_an_insert_skips_move_no_counter() {
    let db = TestDb::new().await;
    let [a] = db.tenants().await;
    let user = licensed(&db, &a, "trial").await;
    let model = create(&db, user, "skipped").await.unwrap();
    let first = upload(&db, user, version(user, model.id, 1)).await.unwrap();
    let org = a.organization_id;
    // The same storage key, the same model id, the same seat: each row is skipped.
    for sql in [
        format!(
            "INSERT INTO cad.model_versions (model_id, storage_key, sha256, size_bytes, file_format)
             VALUES ('{}', '{}', '\\x{}'::bytea, 5, 'obj') ON CONFLICT DO NOTHING",
            model.id,
            first.version.storage_key,
            "07".repeat(32)
        ),
        format!(
            "INSERT INTO cad.models (id, type, name) VALUES ('{}', 'part', 'again')
             ON CONFLICT DO NOTHING",
            model.id
        ),
        format!(
            "INSERT INTO licensing.license_assignments (license_id, user_id)
             SELECT license_id, user_id FROM licensing.license_assignments
             WHERE organization_id = '{org}' ON CONFLICT DO NOTHING"
        ),
    ] {
        assert_eq!(app_execute(&db, user, &sql).await.unwrap(), 0, "{sql}");
    }
    let owner = db.client(DbRole::Owner).await;
    let row = owner
        .query_one(
            "SELECT (SELECT current_version FROM cad.models WHERE id = $1),
                    (SELECT file_format::text FROM cad.models WHERE id = $1),
                    (SELECT models FROM cad.model_counts WHERE organization_id = $2),
                    (SELECT sum(seats_assigned)::integer FROM licensing.licenses
                     WHERE organization_id = $2)",
            &[&model.id, &org],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
    assert_eq!(row.get::<_, String>(1), "step");
    assert_eq!(row.get::<_, i32>(2), 1);
    assert_eq!(row.get::<_, i32>(3), 1);
    // And the next version is 2: no gap.
    let next = upload(&db, user, version(user, model.id, 2)).await.unwrap();
    assert_eq!(next.version.version, 2);
}

#[tokio::test]
async fn sizes_are_measured_uncompressed_and_keys_stay_under_the_tenants_prefix() {
    let db = TestDb::new().await;
    let [a, b] = db.tenants().await;
    let user = licensed(&db, &a, "standard").await;
    let model = create(&db, user, "big").await.unwrap();
    // A stored value is compressed; its size is still its real size.
    let err = db
        .with_tenant(DbRole::App, user, async |tx| {
            tx.batch_execute(
                "CREATE TEMP TABLE big ON COMMIT DROP AS
                 SELECT jsonb_build_object('blob', repeat('a', 2000000)) AS j",
            )
            .await?;
            Ok(tx
                .execute(
                    "UPDATE cad.models SET params = (SELECT j FROM big) WHERE id = $1",
                    &[&model.id],
                )
                .await?)
        })
        .await
        .map_err(CadError::from)
        .unwrap_err();
    assert_eq!(
        code(&err),
        ("23514".to_owned(), "models_params_object".to_owned())
    );
    // Another tenant's object keys cannot be named.
    let foreign = upload(
        &db,
        user,
        NewVersion {
            storage_key: format!("{}/models/theirs.step", b.organization_id),
            ..version(user, model.id, 1)
        },
    )
    .await
    .unwrap_err();
    assert_eq!(
        code(&foreign),
        (
            "23514".to_owned(),
            "model_versions_storage_key_tenant".to_owned()
        )
    );
    assert_eq!(db.count("cad.model_versions").await, 0);
}

#[tokio::test]
async fn the_versions_limit_is_the_model_owners_plan() {
    let db = TestDb::new().await;
    let [a] = db.tenants().await;
    let trial = licensed(&db, &a, "trial").await;
    let enterprise = licensed(&db, &a, "enterprise").await;
    let model = create(&db, trial, "shared").await.unwrap();
    for n in 1..=5 {
        upload(&db, enterprise, version(enterprise, model.id, n))
            .await
            .unwrap();
    }
    assert!(matches!(
        upload(&db, enterprise, version(enterprise, model.id, 6)).await,
        Err(CadError::QuotaExceeded { limit: 5, .. })
    ));
    // Someone without a seat uploads nothing, even to a licensed owner's model.
    assert!(matches!(
        upload(&db, a.tenant(), version(a.tenant(), model.id, 7)).await,
        Err(CadError::NotEntitled { .. })
    ));
}
