//! Project management (seed 003) as services use it: every test acts through the
//! application role with a tenant and a user set. Access by role, every rule broken
//! on purpose with its exact error and nothing written, cycles and document versions
//! under concurrency, and the queries.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use groundwork::Error;
use groundwork::projects::{
    NewProject, NewTask, add_dependency, complete_task, edit_document, progress,
};
use groundwork::queries::projects::{document_versions, documents, projects, tasks};
use groundwork::tenant::Tenant;
use groundwork::types::projects::{
    AttachmentEntity, DependencyType, DocumentStatus, ProjectRole, ProjectStatus, TaskPriority,
    TaskStatus,
};
use groundwork_testing::fixtures::{
    AttachmentFixture, DocumentFixture, MemberFixture, UserFixture,
};
use groundwork_testing::{DbRole, TestDb, TestTenant};
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use crate::common;

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
        .insert((
            owner,
            NewProject::new("Apollo")
                .member(admin, ProjectRole::Admin)
                .member(member, ProjectRole::Member)
                .member(viewer, ProjectRole::Viewer),
        ))
        .await;
    let blocker = db.insert((owner, NewTask::new(project.id, "Design"))).await;
    let task = db
        .insert((
            owner,
            NewTask::new(project.id, "Build").blocked_by(blocker.id),
        ))
        .await;
    let spare = db.insert((owner, NewTask::new(project.id, "Spare"))).await;
    let document = db.insert(DocumentFixture::new(owner, project.id)).await;
    db.insert(AttachmentFixture::new(
        owner,
        project.id,
        AttachmentEntity::Task,
        task.id,
    ))
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

const READ_ONLY: Outcome = Refused("GWP02");
const NOT_A_MEMBER: Outcome = Refused("GWP03");
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
            for known in ["GWP01", "GWP02", "GWP03", "GWP04", "42501"] {
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
    assert_eq!(common::count(&w.db, "projects.tasks").await, 3);
    assert_eq!(common::count(&w.db, "projects.project_members").await, 3);
}
