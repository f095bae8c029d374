//! TestDb: isolation between clones, clean-up on success, retention on failure.

use groundwork::tenant::Tenant;
use groundwork_testing::{DbRole, TestDb};

async fn organization_count(db: &TestDb) -> i64 {
    db.count("identity.organizations").await
}

async fn database_exists(name: &str) -> bool {
    let admin = groundwork_support::connect::connect(&TestDb::server_url().unwrap())
        .await
        .unwrap();
    admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn writes_in_one_test_database_are_invisible_in_another() {
    let (a, b) = tokio::join!(TestDb::new(), TestDb::new());
    assert_ne!(a.name(), b.name());
    let [_] = a.tenants().await;
    assert_eq!(organization_count(&a).await, 1);
    assert_eq!(organization_count(&b).await, 0, "b is a separate clone");
    // A third clone still comes from the pristine template.
    assert_eq!(organization_count(&TestDb::new().await).await, 0);
}

#[tokio::test]
async fn a_clone_has_every_migration_applied() {
    let db = TestDb::new().await;
    let client = db.client(DbRole::Owner).await;
    let migrator =
        groundwork_migrate::Migrator::from_dir(groundwork_testing::DEFAULT_MIGRATIONS).unwrap();
    migrator.verify(&client).await.unwrap();
    let status = migrator.status(&client).await.unwrap();
    assert_eq!(status.len(), migrator.migrations().len());
    assert!(status.iter().all(|s| matches!(
        s.state,
        groundwork_migrate::MigrationState::Applied { changed: false, .. }
    )));
}

#[tokio::test]
async fn a_passing_test_drops_its_database() {
    let db = TestDb::new().await;
    let name = db.name().to_owned();
    assert!(database_exists(&name).await);
    drop(db);
    assert!(!database_exists(&name).await);
}

#[tokio::test]
async fn a_failing_test_keeps_its_database() {
    let name = std::thread::spawn(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            runtime.block_on(async {
                let db = TestDb::new().await;
                tx.send(db.name().to_owned()).unwrap();
                panic!("simulated test failure");
            })
        }));
        assert!(panicked.is_err());
        rx.recv().unwrap()
    })
    .join()
    .unwrap();
    assert!(database_exists(&name).await, "kept for inspection");
    let admin = groundwork_support::connect::connect(&TestDb::server_url().unwrap())
        .await
        .unwrap();
    admin
        .batch_execute(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .await
        .unwrap();
}

/// Every table's fixture inserts a row through the application role, with its
/// defaults and no more than the tenant it belongs to.
#[tokio::test]
async fn every_fixture_inserts_its_row_as_the_application_role() {
    use groundwork::types::identity::{MemberRole, MemberStatus};
    use groundwork::types::messaging::{IdempotencyStatus, OutboxStatus};
    use groundwork::types::projects::{AttachmentEntity, TaskPriority};
    use groundwork_testing::fixtures::{
        ApiKeyFixture, AttachmentFixture, DocumentFixture, EventFixture, FormFixture,
        IdempotencyKeyFixture, InvitationFixture, MemberFixture, MessageFixture,
        OrganizationFixture, ProfileFixture, ProjectFixture, SessionFixture, SubmissionFixture,
        SubscriptionFixture, TaskFixture, UserFixture,
    };

    let db = TestDb::new().await;
    let user = db.insert(UserFixture::default()).await;
    let other = db.insert(UserFixture::default()).await;
    assert_ne!(
        (&user.email, &user.username),
        (&other.email, &other.username)
    );
    let org = db
        .insert(OrganizationFixture::default().created_by(user.id))
        .await;
    let member = db
        .insert(MemberFixture::new(org.id, user.id).role(MemberRole::Owner))
        .await;
    assert_eq!(member.status, MemberStatus::Active);
    let tenant = groundwork::tenant::Tenant::new(org.id, user.id);
    let invitation = db
        .insert(
            InvitationFixture::new(tenant)
                .role(MemberRole::Viewer)
                .invited_by(user.id),
        )
        .await;
    assert_eq!(invitation.member.status, MemberStatus::Invited);
    assert_eq!(invitation.member.role, MemberRole::Viewer);
    let profile = db.insert(ProfileFixture::new(user.id).bio("hello")).await;
    assert_eq!(profile.bio.as_deref(), Some("hello"));
    let session = db.insert(SessionFixture::new(user.id)).await;
    assert_eq!(session.session.user_id, user.id);
    let key = db
        .insert(ApiKeyFixture::new(Tenant::organization(org.id)))
        .await;
    assert!(key.plaintext.starts_with("gw_"));
    let position = db.insert(EventFixture::new(tenant)).await;
    assert!(position > 0);
    let checkpoint = db.insert(SubscriptionFixture::new(tenant)).await;
    assert_eq!(checkpoint, 0);
    let message = db.insert(MessageFixture::new(tenant)).await;
    assert_eq!(message.status, OutboxStatus::Pending);
    let idempotency = db.insert(IdempotencyKeyFixture::new(tenant)).await;
    assert_eq!(idempotency.status, IdempotencyStatus::Completed);
    let project = db.insert(ProjectFixture::new(tenant)).await;
    assert_eq!(project.owner_id, user.id);
    let task = db.insert(TaskFixture::new(tenant, project.id)).await;
    assert_eq!(task.priority, TaskPriority::Medium);
    let document = db.insert(DocumentFixture::new(tenant, project.id)).await;
    assert_eq!(document.version, 1);
    let attachment = db
        .insert(
            AttachmentFixture::new(tenant, project.id)
                .attached_to(AttachmentEntity::Document, document.id),
        )
        .await;
    assert_eq!(attachment.entity_id, document.id);
    let form = db.insert(FormFixture::new(tenant).published()).await;
    assert_eq!(form.status, "active");
    let submission = db.insert(SubmissionFixture::new(tenant, form.id)).await;
    assert_eq!(submission.status, "draft");
    // A fixture the database refuses comes back as its error.
    let err = db
        .try_insert(UserFixture::default().email("not an email"))
        .await
        .unwrap_err();
    assert_eq!(err.constraint(), Some("users_email_format"));
}
