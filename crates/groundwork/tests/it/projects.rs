//! Project management (docs/REQUIREMENTS.md) as services use it: every test acts through the
//! application role with a tenant and a user set. Access by role, every rule broken
//! on purpose with its exact error and nothing written, cycles and document versions
//! under concurrency, and the queries.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use groundwork::Error;
use groundwork::projects::{ProjectError, add_dependency, complete_task, edit_document, progress};
use groundwork::queries::projects::{document_versions, documents, projects, tasks};
use groundwork::tenant::Tenant;
use groundwork::types::projects::{
    AttachmentEntity, DependencyType, DocumentStatus, ProjectRole, ProjectStatus, TaskPriority,
    TaskStatus,
};
use groundwork_testing::fixtures::{
    AttachmentFixture, DocumentFixture, MemberFixture, ProjectFixture, TaskFixture, UserFixture,
};
use groundwork_testing::{DbRole, TestDb, TestTenant};
use tokio_postgres::error::SqlState;
use uuid::Uuid;

/// An organization with a project owned by `owner`, whose members are `admin`,
/// `member` and `viewer`; `outsider` is in the organization but not the project; the
/// project has two tasks (`task` blocked by `blocker`), a spare task, a document and an
/// attachment. `stranger` is another tenant.
struct World {
    db: Arc<TestDb>,
    org: Uuid,
    owner: Uuid,
    admin: Uuid,
    member: Uuid,
    viewer: Uuid,
    outsider: Uuid,
    stranger: TestTenant,
    project: Uuid,
    task: Uuid,
    blocker: Uuid,
    spare: Uuid,
    document: Uuid,
}

impl World {
    fn acting(&self, user: Uuid) -> Tenant {
        Tenant::new(self.org, user)
    }
}

async fn world() -> World {
    let db = TestDb::builder().pool_size(24).build().await;
    let [a, stranger] = db.tenants().await;
    let mut joined = Vec::new();
    for _ in 0..4 {
        let user = db.insert(UserFixture::default()).await;
        db.insert(MemberFixture::new(a.organization_id, user.id))
            .await;
        joined.push(user.id);
    }
    let (admin, member, viewer, outsider) = (joined[0], joined[1], joined[2], joined[3]);
    let owner = a.tenant();
    let project = db
        .insert(
            ProjectFixture::new(owner)
                .name("Apollo")
                .member(admin, ProjectRole::Admin)
                .member(member, ProjectRole::Member)
                .member(viewer, ProjectRole::Viewer),
        )
        .await;
    let blocker = db
        .insert(TaskFixture::new(owner, project.id).title("Design"))
        .await;
    let task = db
        .insert(
            TaskFixture::new(owner, project.id)
                .title("Build")
                .blocked_by(blocker.id),
        )
        .await;
    let spare = db
        .insert(TaskFixture::new(owner, project.id).title("Spare"))
        .await;
    let document = db.insert(DocumentFixture::new(owner, project.id)).await;
    db.insert(
        AttachmentFixture::new(owner, project.id).attached_to(AttachmentEntity::Task, task.id),
    )
    .await;
    World {
        db: Arc::new(db),
        org: a.organization_id,
        owner: a.user_id,
        admin,
        member,
        viewer,
        outsider,
        stranger,
        project: project.id,
        task: task.id,
        blocker: blocker.id,
        spare: spare.id,
        document: document.id,
    }
}

/// What an attempt did: rows read or written, or the SQLSTATE that refused it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Rows(i64),
    Refused(&'static str),
}

use Outcome::{Refused, Rows};

const READ_ONLY: Outcome = Refused("WP002");
const NOT_A_MEMBER: Outcome = Refused("WP003");
const NO_PRIVILEGE: Outcome = Refused("42501");
const INVISIBLE: Outcome = Rows(0);

/// Runs `sql` as the application role for `tenant` and rolls back: a read returns its
/// `count(*)`, a write the rows it touched.
async fn attempt(db: &TestDb, tenant: Tenant, sql: &str) -> Outcome {
    let mut client = db.pool(DbRole::App).get().await.unwrap();
    let tx = groundwork::tenant::begin(&mut client, tenant)
        .await
        .unwrap();
    let result = if sql.starts_with("SELECT") {
        tx.query_one(sql, &[]).await.map(|row| row.get::<_, i64>(0))
    } else {
        tx.execute(sql, &[]).await.map(|n| n as i64)
    };
    tx.rollback().await.unwrap();
    match result {
        Ok(n) => Rows(n),
        Err(e) => {
            let code = e.code().map(|c| c.code().to_owned()).unwrap_or_default();
            for known in ["WP001", "WP002", "WP003", "WP004", "42501"] {
                if code == known {
                    return Refused(known);
                }
            }
            panic!("{sql}: unexpected {}", Error::from(e));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_matrix_over_every_table() {
    let w = world().await;
    let (p, task, spare, doc) = (w.project, w.task, w.spare, w.document);
    let (viewer, member, outsider) = (w.viewer, w.member, w.outsider);
    // Actors: owner, admin, member, viewer, outsider, another tenant.
    let actors = [
        ("owner", w.acting(w.owner)),
        ("admin", w.acting(w.admin)),
        ("member", w.acting(w.member)),
        ("viewer", w.acting(w.viewer)),
        ("outsider", w.acting(w.outsider)),
        ("other tenant", w.stranger.tenant()),
    ];
    type Row = (&'static str, &'static str, String, [Outcome; 6]);
    let cases: Vec<Row> = vec![
        ("projects", "read", format!("SELECT count(*) FROM projects.projects WHERE id = '{p}'"),
         [Rows(1), Rows(1), Rows(1), Rows(1), INVISIBLE, INVISIBLE]),
        ("projects", "insert", "INSERT INTO projects.projects (name, owner_id) VALUES ('Mine', identity.current_user_id())".into(),
         [Rows(1); 6]),
        ("projects", "update", format!("UPDATE projects.projects SET name = 'Renamed' WHERE id = '{p}'"),
         [Rows(1), Rows(1), READ_ONLY, READ_ONLY, INVISIBLE, INVISIBLE]),
        ("projects", "delete", format!("DELETE FROM projects.projects WHERE id = '{p}'"),
         [Rows(1), READ_ONLY, READ_ONLY, READ_ONLY, INVISIBLE, INVISIBLE]),
        ("project_members", "read", format!("SELECT count(*) FROM projects.project_members WHERE project_id = '{p}'"),
         [Rows(3), Rows(3), Rows(3), Rows(3), INVISIBLE, INVISIBLE]),
        ("project_members", "insert", format!("INSERT INTO projects.project_members (project_id, user_id, role) VALUES ('{p}', '{outsider}', 'viewer')"),
         [Rows(1), Rows(1), READ_ONLY, READ_ONLY, NOT_A_MEMBER, NOT_A_MEMBER]),
        ("project_members", "update", format!("UPDATE projects.project_members SET role = 'admin' WHERE project_id = '{p}' AND user_id = '{viewer}'"),
         [Rows(1), Rows(1), READ_ONLY, READ_ONLY, INVISIBLE, INVISIBLE]),
        // A member may leave; only owners and admins remove others.
        ("project_members", "delete", format!("DELETE FROM projects.project_members WHERE project_id = '{p}' AND user_id = '{member}'"),
         [Rows(1), Rows(1), Rows(1), READ_ONLY, INVISIBLE, INVISIBLE]),
        ("tasks", "read", format!("SELECT count(*) FROM projects.tasks WHERE project_id = '{p}'"),
         [Rows(3), Rows(3), Rows(3), Rows(3), INVISIBLE, INVISIBLE]),
        ("tasks", "insert", format!("INSERT INTO projects.tasks (project_id, title) VALUES ('{p}', 'New')"),
         [Rows(1), Rows(1), Rows(1), READ_ONLY, NOT_A_MEMBER, NOT_A_MEMBER]),
        ("tasks", "update", format!("UPDATE projects.tasks SET title = 'Renamed' WHERE id = '{task}'"),
         [Rows(1), Rows(1), Rows(1), READ_ONLY, INVISIBLE, INVISIBLE]),
        ("tasks", "delete", format!("DELETE FROM projects.tasks WHERE id = '{task}'"),
         [Rows(1), Rows(1), Rows(1), READ_ONLY, INVISIBLE, INVISIBLE]),
        ("task_dependencies", "read", format!("SELECT count(*) FROM projects.task_dependencies WHERE project_id = '{p}'"),
         [Rows(1), Rows(1), Rows(1), Rows(1), INVISIBLE, INVISIBLE]),
        ("task_dependencies", "insert", format!("INSERT INTO projects.task_dependencies (task_id, depends_on_task_id) VALUES ('{spare}', '{task}')"),
         [Rows(1), Rows(1), Rows(1), READ_ONLY, NOT_A_MEMBER, NOT_A_MEMBER]),
        ("task_dependencies", "update", format!("UPDATE projects.task_dependencies SET dependency_type = 'relates_to' WHERE task_id = '{task}'"),
         [Rows(1), Rows(1), Rows(1), READ_ONLY, INVISIBLE, INVISIBLE]),
        ("task_dependencies", "delete", format!("DELETE FROM projects.task_dependencies WHERE task_id = '{task}'"),
         [Rows(1), Rows(1), Rows(1), READ_ONLY, INVISIBLE, INVISIBLE]),
        ("documents", "read", format!("SELECT count(*) FROM projects.documents WHERE project_id = '{p}'"),
         [Rows(1), Rows(1), Rows(1), Rows(1), INVISIBLE, INVISIBLE]),
        ("documents", "insert", format!("INSERT INTO projects.documents (project_id, title) VALUES ('{p}', 'Spec')"),
         [Rows(1), Rows(1), Rows(1), READ_ONLY, NOT_A_MEMBER, NOT_A_MEMBER]),
        ("documents", "update", format!("UPDATE projects.documents SET content = 'v2' WHERE id = '{doc}'"),
         [Rows(1), Rows(1), Rows(1), READ_ONLY, INVISIBLE, INVISIBLE]),
        ("documents", "delete", format!("DELETE FROM projects.documents WHERE id = '{doc}'"),
         [Rows(1), Rows(1), Rows(1), READ_ONLY, INVISIBLE, INVISIBLE]),
        ("document_versions", "read", format!("SELECT count(*) FROM projects.document_versions WHERE document_id = '{doc}'"),
         [Rows(1), Rows(1), Rows(1), Rows(1), INVISIBLE, INVISIBLE]),
        // Versions are written by the database only.
        ("document_versions", "insert", format!(
            "INSERT INTO projects.document_versions (organization_id, project_id, document_id, version_number, content, author_id) \
             VALUES (identity.current_org_id(), '{p}', '{doc}', 9, 'forged', identity.current_user_id())"),
         [NO_PRIVILEGE; 6]),
        ("document_versions", "update", format!("UPDATE projects.document_versions SET content = 'forged' WHERE document_id = '{doc}'"),
         [NO_PRIVILEGE; 6]),
        ("document_versions", "delete", format!("DELETE FROM projects.document_versions WHERE document_id = '{doc}'"),
         [NO_PRIVILEGE; 6]),
        ("file_attachments", "read", format!("SELECT count(*) FROM projects.file_attachments WHERE project_id = '{p}'"),
         [Rows(1), Rows(1), Rows(1), Rows(1), INVISIBLE, INVISIBLE]),
        ("file_attachments", "insert", format!(
            "INSERT INTO projects.file_attachments (project_id, entity_type, entity_id, filename, original_filename, file_size, mime_type, storage_path) \
             VALUES ('{p}', 'project', '{p}', 'a.txt', 'a.txt', 1, 'text/plain', 'a')"),
         [Rows(1), Rows(1), Rows(1), READ_ONLY, NOT_A_MEMBER, NOT_A_MEMBER]),
        // Attachments are immutable: replace them.
        ("file_attachments", "update", format!("UPDATE projects.file_attachments SET file_size = 2 WHERE project_id = '{p}'"),
         [NO_PRIVILEGE; 6]),
        ("file_attachments", "delete", format!("DELETE FROM projects.file_attachments WHERE project_id = '{p}'"),
         [Rows(1), Rows(1), Rows(1), READ_ONLY, INVISIBLE, INVISIBLE]),
    ];
    let mut wrong = Vec::new();
    for (table, operation, sql, expected) in &cases {
        for ((actor, tenant), expected) in actors.iter().zip(expected) {
            let got = attempt(&w.db, *tenant, sql).await;
            if got != *expected {
                wrong.push(format!(
                    "{table} {operation} as {actor}: expected {expected:?}, got {got:?}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    // Every attempt was rolled back: the project is as it was.
    assert_eq!(w.db.count("projects.tasks").await, 3);
    assert_eq!(w.db.count("projects.project_members").await, 3);
}

/// The error of running `sql` as `tenant` (it must fail), with the tables' row counts
/// unchanged.
async fn refused(w: &World, tenant: Tenant, sql: &str) -> ProjectError {
    let tables = [
        "projects.projects",
        "projects.project_members",
        "projects.tasks",
        "projects.task_dependencies",
        "projects.documents",
        "projects.document_versions",
        "projects.file_attachments",
    ];
    let mut before = Vec::new();
    for t in tables {
        before.push(w.db.count(t).await);
    }
    let err =
        w.db.with_tenant(DbRole::App, tenant, async |tx| {
            Ok(tx.batch_execute(sql).await?)
        })
        .await
        .expect_err("refused");
    for (t, n) in tables.iter().zip(before) {
        assert_eq!(w.db.count(t).await, n, "{t} changed");
    }
    err.into()
}

#[tokio::test]
async fn every_rule_refuses_with_its_error_and_writes_nothing() {
    let w = world().await;
    let me = w.acting(w.owner);
    let (p, task, blocker, spare, doc) = (w.project, w.task, w.blocker, w.spare, w.document);
    // A second project of the same organization, for cross-project rules.
    let other = w.db.insert(ProjectFixture::new(me).name("Gemini")).await.id;
    let other_task =
        w.db.insert(TaskFixture::new(me, other).title("Elsewhere"))
            .await
            .id;
    let cases: Vec<(String, &str)> = vec![
        (
            format!(
                "INSERT INTO projects.tasks (project_id, title, estimated_hours) VALUES ('{p}', 'x', 0)"
            ),
            "tasks_estimated_hours_positive",
        ),
        (
            format!("UPDATE projects.tasks SET actual_hours = -1 WHERE id = '{task}'"),
            "tasks_actual_hours_positive",
        ),
        (
            format!(
                "INSERT INTO projects.tasks (project_id, title, due_date) VALUES ('{p}', 'x', now() - interval '1 day')"
            ),
            "tasks_due_date_after_creation",
        ),
        (
            format!("INSERT INTO projects.tasks (project_id, title) VALUES ('{p}', '  ')"),
            "tasks_title_length",
        ),
        (
            format!(
                "UPDATE projects.tasks SET parent_task_id = '{other_task}' WHERE id = '{task}'"
            ),
            "tasks_parent_task_id_fkey",
        ),
        (
            format!(
                "INSERT INTO projects.task_dependencies (task_id, depends_on_task_id) VALUES ('{task}', '{task}')"
            ),
            "task_dependencies_no_self_dependency",
        ),
        (
            format!(
                "INSERT INTO projects.task_dependencies (task_id, depends_on_task_id) VALUES ('{task}', '{other_task}')"
            ),
            "task_dependencies_depends_on_task_id_fkey",
        ),
        (
            format!(
                "INSERT INTO projects.task_dependencies (task_id, depends_on_task_id) VALUES ('{task}', '{blocker}')"
            ),
            "task_dependencies_task_id_depends_on_task_id_key",
        ),
        (
            format!(
                "INSERT INTO projects.project_members (project_id, user_id) VALUES ('{p}', '{}')",
                w.admin
            ),
            "project_members_project_id_user_id_key",
        ),
        (
            format!(
                "INSERT INTO projects.project_members (project_id, user_id, role) VALUES ('{p}', '{}', 'owner')",
                w.outsider
            ),
            "project_members_role_not_owner",
        ),
        (
            format!(
                "INSERT INTO projects.documents (project_id, title, content_type) VALUES ('{p}', 'x', '')"
            ),
            "documents_content_type_length",
        ),
        (
            format!(
                "INSERT INTO projects.file_attachments (project_id, entity_type, entity_id, filename, original_filename, file_size, mime_type, storage_path) VALUES ('{p}', 'project', '{p}', 'a', 'a', 0, 'text/plain', 'a')"
            ),
            "file_attachments_file_size_positive",
        ),
        (
            format!(
                "INSERT INTO projects.file_attachments (project_id, entity_type, entity_id, filename, original_filename, file_size, mime_type, storage_path) VALUES ('{p}', 'project', '{p}', '', 'a', 1, 'text/plain', 'a')"
            ),
            "file_attachments_filename_not_empty",
        ),
        (
            format!(
                "INSERT INTO projects.file_attachments (project_id, entity_type, entity_id, filename, original_filename, file_size, mime_type, storage_path) VALUES ('{p}', 'project', '{other}', 'a', 'a', 1, 'text/plain', 'a')"
            ),
            "file_attachments_project_entity",
        ),
        (
            format!(
                "INSERT INTO projects.file_attachments (project_id, entity_type, entity_id, filename, original_filename, file_size, mime_type, storage_path) VALUES ('{p}', 'task', '{other_task}', 'a', 'a', 1, 'text/plain', 'a')"
            ),
            "file_attachments_task_id_fkey",
        ),
        (
            format!(
                "INSERT INTO projects.file_attachments (project_id, entity_type, entity_id, filename, original_filename, file_size, mime_type, storage_path) VALUES ('{p}', 'document', '{spare}', 'a', 'a', 1, 'text/plain', 'a')"
            ),
            "file_attachments_document_id_fkey",
        ),
        (
            format!(
                "INSERT INTO projects.file_attachments (project_id, entity_type, entity_id, filename, original_filename, file_size, mime_type, storage_path) VALUES ('{p}', 'project', '{p}', 'a', 'a', 1, 'not a type', 'a')"
            ),
            "file_attachments_mime_type_format",
        ),
    ];
    for (sql, constraint) in cases {
        let err = refused(&w, me, &sql).await;
        assert_eq!(err.constraint(), Some(constraint), "{sql}: {err:?}");
    }
    // Being one's own parent is the CHECK tasks_not_own_parent.
    let err = refused(
        &w,
        me,
        &format!("UPDATE projects.tasks SET parent_task_id = id WHERE id = '{task}'"),
    )
    .await;
    assert!(
        matches!(err, ProjectError::Database(Error::Invalid(_))),
        "{err:?}"
    );
    assert_eq!(err.constraint(), Some("tasks_not_own_parent"));
    // The database keeps document versions, archive stamps and completion times.
    for sql in [
        format!("UPDATE projects.documents SET version = 99 WHERE id = '{doc}'"),
        format!("UPDATE projects.projects SET archived_at = now() WHERE id = '{p}'"),
        format!("UPDATE projects.tasks SET completed_at = now() WHERE id = '{task}'"),
    ] {
        let err = refused(&w, me, &sql).await;
        assert!(
            matches!(err, ProjectError::Database(Error::PermissionDenied(_))),
            "{sql}: {err:?}"
        );
    }
    // A project is created by its owner, who is an active member of the organization.
    let err = refused(
        &w,
        me,
        &format!(
            "INSERT INTO projects.projects (name, owner_id) VALUES ('x', '{}')",
            w.admin
        ),
    )
    .await;
    assert!(
        matches!(err, ProjectError::Database(Error::PermissionDenied(_))),
        "{err:?}"
    );
    // A project member is a member of the organization.
    let loner = w.db.insert(UserFixture::default()).await.id;
    let err = refused(
        &w,
        me,
        &format!(
            "INSERT INTO projects.project_members (project_id, user_id) VALUES ('{p}', '{loner}')"
        ),
    )
    .await;
    assert!(matches!(err, ProjectError::NotAMember(_)), "{err:?}");
    // A suspended organization member loses the project.
    w.db.pool(DbRole::Owner)
        .get()
        .await
        .unwrap()
        .execute(
            "UPDATE identity.organization_members SET status = 'suspended' WHERE user_id = $1",
            &[&w.member],
        )
        .await
        .unwrap();
    assert_eq!(
        attempt(
            &w.db,
            w.acting(w.member),
            &format!("SELECT count(*) FROM projects.tasks WHERE project_id = '{p}'")
        )
        .await,
        Rows(0)
    );
}

#[tokio::test]
async fn cycles_of_dependencies_and_parents_are_refused_at_any_length() {
    let w = world().await;
    let me = w.acting(w.owner);
    let mut chain = Vec::new();
    for _ in 0..5 {
        chain.push(w.db.insert(TaskFixture::new(me, w.project)).await.id);
    }
    // step 0 <- 1 <- 2 <- 3 <- 4 (each depends on the one before).
    for pair in chain.windows(2) {
        let (task, on) = (pair[1], pair[0]);
        w.db.with_tenant(DbRole::App, me, async |tx| {
            Ok(add_dependency(tx, task, on, DependencyType::RelatesTo).await?)
        })
        .await
        .unwrap();
    }
    for (task, on) in [
        (chain[0], chain[4]),
        (chain[0], chain[1]),
        (chain[2], chain[3]),
    ] {
        let err = ProjectError::from(
            w.db.with_tenant(DbRole::App, me, async |tx| {
                Ok(add_dependency(tx, task, on, DependencyType::Blocks).await?)
            })
            .await
            .unwrap_err(),
        );
        assert!(matches!(err, ProjectError::Cycle(_)), "{err:?}");
        assert_eq!(err.code().map(SqlState::code), Some("WP001"));
    }
    // Parents: 0 > 1 > 2; 2 cannot become 0's parent.
    for (child, parent) in [(chain[1], chain[0]), (chain[2], chain[1])] {
        attempt_ok(
            &w,
            me,
            &format!("UPDATE projects.tasks SET parent_task_id = '{parent}' WHERE id = '{child}'"),
        )
        .await;
    }
    let err = refused(
        &w,
        me,
        &format!(
            "UPDATE projects.tasks SET parent_task_id = '{}' WHERE id = '{}'",
            chain[2], chain[0]
        ),
    )
    .await;
    assert!(matches!(err, ProjectError::Cycle(_)), "{err:?}");
    // Deleting a parent keeps its subtasks, at the top.
    attempt_ok(
        &w,
        me,
        &format!("DELETE FROM projects.tasks WHERE id = '{}'", chain[1]),
    )
    .await;
    let orphan = get_task(&w, me, chain[2]).await;
    assert_eq!(orphan.parent_task_id, None);
}

/// Runs `sql` as `tenant` and commits; it must succeed.
async fn attempt_ok(w: &World, tenant: Tenant, sql: &str) {
    w.db.with_tenant(DbRole::App, tenant, async |tx| {
        Ok(tx.batch_execute(sql).await?)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

async fn get_task(w: &World, tenant: Tenant, id: Uuid) -> tasks::Task {
    w.db.with_tenant(DbRole::App, tenant, async |tx| {
        Ok(tasks::task_get().bind(tx, &id).one().await?)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_task_is_done_only_when_its_blockers_are_and_progress_counts_it() {
    let w = world().await;
    let me = w.acting(w.owner);
    let task = w.task;
    let complete = |id: Uuid| {
        w.db.with_tenant(DbRole::App, me, async move |tx| {
            Ok(complete_task(tx, id).await?)
        })
    };
    let err = ProjectError::from(complete(task).await.unwrap_err());
    let ProjectError::Blocked { blockers, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(blockers, &[w.blocker]);
    // Setting the status directly is the same rule.
    let err = refused(
        &w,
        me,
        &format!("UPDATE projects.tasks SET status = 'done' WHERE id = '{task}'"),
    )
    .await;
    assert!(matches!(err, ProjectError::Blocked { .. }), "{err:?}");
    assert_eq!(get_task(&w, me, task).await.completed_at, None);
    // A cancelled blocker no longer blocks; a done one neither.
    attempt_ok(
        &w,
        me,
        &format!(
            "UPDATE projects.tasks SET status = 'cancelled' WHERE id = '{}'",
            w.blocker
        ),
    )
    .await;
    let done = complete(task).await.unwrap().expect("visible");
    assert_eq!(done.status, TaskStatus::Done);
    assert!(done.completed_at.is_some());
    // Reopening clears completed_at.
    attempt_ok(
        &w,
        me,
        &format!("UPDATE projects.tasks SET status = 'in_progress' WHERE id = '{task}'"),
    )
    .await;
    assert_eq!(get_task(&w, me, task).await.completed_at, None);
    complete(w.spare).await.unwrap();
    let progress =
        w.db.with_tenant(DbRole::App, me, async |tx| {
            Ok(progress(tx, w.project).await?)
        })
        .await
        .unwrap();
    assert_eq!(
        (progress.tasks, progress.done, progress.cancelled),
        (3, 1, 1)
    );
    assert!((progress.ratio() - 0.5).abs() < 1e-9);
}

#[tokio::test]
async fn documents_keep_every_version_and_publishing_stamps_the_time() {
    let w = world().await;
    let me = w.acting(w.member);
    let doc = w.document;
    for (content, summary) in [("v2", Some("second")), ("v3", None)] {
        w.db.with_tenant(DbRole::App, me, async |tx| {
            Ok(edit_document(tx, doc, content, summary).await?)
        })
        .await
        .unwrap()
        .expect("visible");
    }
    // A title change is not a new version.
    attempt_ok(
        &w,
        me,
        &format!("UPDATE projects.documents SET title = 'Renamed' WHERE id = '{doc}'"),
    )
    .await;
    let (document, versions) =
        w.db.with_tenant(DbRole::App, me, async |tx| {
            let d = documents::document_get().bind(tx, &doc).one().await?;
            let v = document_versions::document_version_list()
                .bind(tx, &doc, &10)
                .all()
                .await?;
            Ok((d, v))
        })
        .await
        .unwrap();
    assert_eq!(document.version, 3);
    assert_eq!(
        versions
            .iter()
            .map(|v| (v.version_number, v.content.as_str()))
            .collect::<Vec<_>>(),
        [(3, "v3"), (2, "v2"), (1, "# Notes")]
    );
    assert_eq!(versions[1].change_summary.as_deref(), Some("second"));
    assert_eq!(versions[0].author_id, w.member);
    let published =
        w.db.with_tenant(DbRole::App, me, async |tx| {
            Ok(documents::document_set_status()
                .bind(tx, &DocumentStatus::Published, &doc)
                .one()
                .await?)
        })
        .await
        .unwrap();
    assert!(published.published_at.is_some());
}

#[tokio::test]
async fn an_archived_project_is_read_only_until_restored() {
    let w = world().await;
    let (admin, member) = (w.acting(w.admin), w.acting(w.member));
    let set_status = |tenant: Tenant, status: ProjectStatus| {
        w.db.with_tenant(DbRole::App, tenant, async move |tx| {
            Ok(projects::project_set_status()
                .bind(tx, &status, &w.project)
                .one()
                .await?)
        })
    };
    let archived = set_status(admin, ProjectStatus::Archived).await.unwrap();
    assert!(archived.archived_at.is_some());
    for sql in [
        format!(
            "INSERT INTO projects.tasks (project_id, title) VALUES ('{}', 'late')",
            w.project
        ),
        format!(
            "UPDATE projects.tasks SET title = 'late' WHERE id = '{}'",
            w.task
        ),
        format!(
            "UPDATE projects.projects SET name = 'late' WHERE id = '{}'",
            w.project
        ),
        format!("DELETE FROM projects.documents WHERE id = '{}'", w.document),
    ] {
        let err = refused(&w, admin, &sql).await;
        assert!(matches!(err, ProjectError::ReadOnly(_)), "{sql}: {err:?}");
    }
    // Members do not restore it; admins do.
    assert!(matches!(
        set_status(member, ProjectStatus::Active)
            .await
            .map_err(ProjectError::from),
        Err(ProjectError::ReadOnly(_))
    ));
    let restored = set_status(admin, ProjectStatus::Active).await.unwrap();
    assert_eq!(restored.archived_at, None);
    attempt_ok(
        &w,
        member,
        &format!(
            "UPDATE projects.tasks SET title = 'on time' WHERE id = '{}'",
            w.task
        ),
    )
    .await;
}

/// Whether the edges (task, depends on) leave a cycle: Kahn's algorithm.
fn has_cycle(edges: &[(Uuid, Uuid)]) -> bool {
    let mut incoming: BTreeMap<Uuid, usize> = BTreeMap::new();
    let mut out: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
    for (a, b) in edges {
        *incoming.entry(*b).or_default() += 1;
        incoming.entry(*a).or_default();
        out.entry(*a).or_default().push(*b);
    }
    let mut ready: Vec<Uuid> = incoming
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(k, _)| *k)
        .collect();
    let mut seen = 0;
    while let Some(node) = ready.pop() {
        seen += 1;
        for next in out.get(&node).into_iter().flatten() {
            let n = incoming.get_mut(next).unwrap();
            *n -= 1;
            if *n == 0 {
                ready.push(*next);
            }
        }
    }
    seen != incoming.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_edges_over_a_random_graph_never_close_a_cycle() {
    let w = world().await;
    let me = w.acting(w.owner);
    // A small linear congruential generator: the same graphs every run.
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move |n: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize % n
    };
    let (mut refused_cycles, mut added) = (0, 0);
    for round in 0..5 {
        let mut nodes = Vec::new();
        for _ in 0..6 {
            nodes.push(w.db.insert(TaskFixture::new(me, w.project)).await.id);
        }
        let mut attempts = Vec::new();
        for _ in 0..20 {
            let (a, b) = (next(6), next(6));
            let (task, on) = (nodes[a], nodes[if a == b { (b + 1) % 6 } else { b }]);
            let db = w.db.clone();
            attempts.push(tokio::spawn(async move {
                db.with_tenant(DbRole::App, me, async |tx| {
                    Ok(add_dependency(tx, task, on, DependencyType::Blocks).await?)
                })
                .await
            }));
        }
        for attempt in attempts {
            match attempt.await.unwrap().map_err(ProjectError::from) {
                Ok(()) => added += 1,
                Err(ProjectError::Cycle(_)) => refused_cycles += 1,
                // The same edge twice, or both directions at once.
                Err(ProjectError::Database(Error::Conflict(_))) => {}
                Err(other) => panic!("{other}"),
            }
        }
        let owner = w.db.pool(DbRole::Owner).get().await.unwrap();
        let edges: Vec<(Uuid, Uuid)> = owner
            .query(
                "SELECT task_id, depends_on_task_id FROM projects.task_dependencies WHERE task_id = ANY ($1)",
                &[&nodes],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert!(!has_cycle(&edges), "round {round} left a cycle: {edges:?}");
    }
    assert!(
        added > 0 && refused_cycles > 0,
        "added {added}, refused {refused_cycles}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_document_edits_leave_versions_without_gaps() {
    let w = world().await;
    let mut edits = Vec::new();
    for i in 0..20 {
        let db = w.db.clone();
        let (tenant, doc) = (
            w.acting(if i % 2 == 0 { w.owner } else { w.member }),
            w.document,
        );
        edits.push(tokio::spawn(async move {
            let content = format!("edit {i}");
            db.with_tenant(DbRole::App, tenant, async |tx| {
                Ok(edit_document(tx, doc, &content, None).await?)
            })
            .await
            .unwrap()
        }));
    }
    let mut reported = BTreeSet::new();
    for edit in edits {
        reported.insert(edit.await.unwrap().expect("visible").version);
    }
    assert_eq!(
        reported,
        (2..=21).collect::<BTreeSet<_>>(),
        "each edit got its own version"
    );
    let owner = w.db.pool(DbRole::Owner).get().await.unwrap();
    let numbers: Vec<i32> = owner
        .query(
            "SELECT version_number FROM projects.document_versions WHERE document_id = $1 ORDER BY 1",
            &[&w.document],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(numbers, (1..=21).collect::<Vec<_>>());
    let version: i32 = owner
        .query_one(
            "SELECT version FROM projects.documents WHERE id = $1",
            &[&w.document],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, 21);
}

#[tokio::test]
async fn the_board_ready_tasks_blockers_documents_and_my_tasks() {
    let w = world().await;
    let me = w.acting(w.owner);
    let p = w.project;
    // 25 tasks of mixed priorities on the board.
    let priorities = [
        TaskPriority::Low,
        TaskPriority::Medium,
        TaskPriority::High,
        TaskPriority::Urgent,
    ];
    for i in 0..25 {
        w.db.insert(TaskFixture::new(me, p).priority(priorities[i % 4]))
            .await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<(TaskPriority, Uuid)> = None;
    loop {
        let page =
            w.db.with_tenant(DbRole::App, me, async |tx| {
                Ok(tasks::task_board()
                    .bind(
                        tx,
                        &p,
                        &Some(TaskStatus::Pending),
                        &cursor.map(|c| c.1),
                        &cursor.map(|c| c.0),
                        &7,
                    )
                    .all()
                    .await?)
            })
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        cursor = Some((last.priority, last.id));
        seen.extend(page.into_iter().map(|t| (t.priority, t.id)));
    }
    assert_eq!(
        seen.len(),
        28,
        "25 cards and the world's 3 tasks, each once"
    );
    let rank = |p: TaskPriority| priorities.iter().position(|q| *q == p).unwrap();
    assert!(
        seen.windows(2)
            .all(|w| (rank(w[0].0), w[0].1) > (rank(w[1].0), w[1].1)),
        "priority, then id, descending"
    );

    // A chain c0 <- c1 <- c2 <- c3: only c0 is ready; c3's blockers are all three.
    let mut chain = Vec::new();
    for _ in 0..4 {
        let mut task = TaskFixture::new(me, p);
        if let Some(prev) = chain.last() {
            task = task.blocked_by(*prev);
        }
        chain.push(w.db.insert(task).await.id);
    }
    let (ready, blockers, shallow, dependents) =
        w.db.with_tenant(DbRole::App, me, async |tx| {
            let ready = tasks::task_list_ready()
                .bind(tx, &p, &None::<Uuid>, &1000)
                .all()
                .await?;
            let blockers = tasks::task_blockers()
                .bind(tx, &chain[3], &50)
                .all()
                .await?;
            let shallow = tasks::task_blockers().bind(tx, &chain[3], &2).all().await?;
            let dependents = tasks::task_dependents()
                .bind(tx, &chain[0], &50)
                .all()
                .await?;
            Ok((ready, blockers, shallow, dependents))
        })
        .await
        .unwrap();
    let ready: BTreeSet<Uuid> = ready.iter().map(|t| t.id).collect();
    assert!(ready.contains(&chain[0]) && !chain[1..].iter().any(|c| ready.contains(c)));
    assert!(!ready.contains(&w.task), "blocked by an open task");
    assert_eq!(
        blockers.iter().map(|b| (b.id, b.depth)).collect::<Vec<_>>(),
        [(chain[2], 1), (chain[1], 2), (chain[0], 3)]
    );
    assert_eq!(shallow.len(), 2, "the depth guard stops the walk");
    assert_eq!(dependents.len(), 3);

    // Documents with their latest version.
    edit(&w, me, w.document, "v2").await;
    let listed =
        w.db.with_tenant(DbRole::App, me, async |tx| {
            Ok(documents::document_list_with_latest_version()
                .bind(tx, &p, &None::<Uuid>, &10)
                .all()
                .await?)
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].version, listed[0].version_author_id),
        (2, w.owner)
    );

    // The member's open tasks across every project they can see, and none they cannot.
    let member = w.acting(w.member);
    let elsewhere =
        w.db.insert(
            ProjectFixture::new(me)
                .name("Vostok")
                .member(w.member, ProjectRole::Member),
        )
        .await
        .id;
    let hidden = w.db.insert(ProjectFixture::new(me).name("Secret")).await.id;
    for (project, title) in [(p, "here"), (elsewhere, "there"), (hidden, "hidden")] {
        w.db.insert(
            TaskFixture::new(me, project)
                .title(title)
                .assignee(w.member),
        )
        .await;
    }
    let mine =
        w.db.with_tenant(DbRole::App, member, async |tx| {
            Ok(tasks::task_list_open_for_me()
                .bind(tx, &None::<Uuid>, &100)
                .all()
                .await?)
        })
        .await
        .unwrap();
    let mut titles: Vec<String> = mine.into_iter().map(|t| t.title).collect();
    titles.sort();
    assert_eq!(titles, ["here", "there"]);
}

async fn edit(w: &World, tenant: Tenant, document: Uuid, content: &'static str) {
    w.db.with_tenant(DbRole::App, tenant, async |tx| {
        Ok(edit_document(tx, document, content, None).await?)
    })
    .await
    .unwrap();
}
