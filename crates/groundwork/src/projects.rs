//! Project management (the `projects` schema, docs/REQUIREMENTS.md): the operations
//! that take more than one statement, with request structs. Single statements are the
//! generated queries (`groundwork::queries::projects::*`); their errors convert into
//! [`ProjectError`] too.
//!
//! The database enforces the rules; what they raise converts into typed errors:
//!
//! | rule | SQLSTATE | error |
//! |---|---|---|
//! | no cycle of task parents or dependencies, of any length, also under concurrency | WP001 | [`ProjectError::Cycle`] |
//! | viewers read only; members do not manage members; an archived project is read-only | WP002 | [`ProjectError::ReadOnly`] |
//! | only the project's owner and members act on it (and only active members of the organization) | WP003 | [`ProjectError::NotAMember`] |
//! | a task is done only when every task it depends on with type `blocks` is done or cancelled | WP004 | [`ProjectError::Blocked`] |
//!
//! Everything runs in a transaction acting for the user ([`crate::tenant::Tenant::new`]):
//! projects are seen by their owner and members only.

use chrono::{DateTime, FixedOffset};
use uuid::Uuid;

use crate::Error;
use crate::client::async_::{GenericClient, Params};
use crate::error::{Violation, converts_from_driver_errors};
use crate::queries::projects::documents::{Document, DocumentEditParams, document_edit};
use crate::queries::projects::project_members::{ProjectMemberAddParams, project_member_add};
use crate::queries::projects::projects::{
    Project, ProjectCreateParams, ProjectProgress, project_create, project_progress,
};
use crate::queries::projects::task_dependencies::{TaskDependencyAddParams, task_dependency_add};
use crate::queries::projects::tasks::{Task, TaskCreateParams, task_complete, task_create};
use crate::types::projects::{DependencyType, ProjectRole, ProjectVisibility, TaskPriority};

/// SQLSTATE raised when a change would make a cycle of task parents or dependencies.
pub const CYCLE: &str = "WP001";
/// SQLSTATE raised for a write to a project the current user may only read (a viewer,
/// a member managing members, anyone changing an archived project).
pub const READ_ONLY: &str = "WP002";
/// SQLSTATE raised when the current user is not a member of the project.
pub const NOT_A_MEMBER: &str = "WP003";
/// SQLSTATE raised when a task is completed while a task blocking it is open; the
/// detail is `{"blockers": [<task id>, ...]}`.
pub const BLOCKED: &str = "WP004";

/// Why a project operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectError {
    /// The change would make a cycle of task parents or dependencies (WP001).
    #[error("cycle: {0}")]
    Cycle(Box<Violation>),
    /// The current user may only read the project (WP002).
    #[error("read-only: {0}")]
    ReadOnly(Box<Violation>),
    /// The current user is not a member of the project (WP003).
    #[error("not a member: {0}")]
    NotAMember(Box<Violation>),
    /// The task is blocked by tasks not yet done (WP004).
    #[error("blocked by {} open task(s): {violation}", .blockers.len())]
    Blocked {
        /// The open tasks blocking it.
        blockers: Vec<Uuid>,
        /// The server's report.
        violation: Box<Violation>,
    },
    /// Anything else.
    #[error(transparent)]
    Database(Error),
}

impl ProjectError {
    /// The server's report, if there is one.
    pub fn violation(&self) -> Option<&Violation> {
        match self {
            Self::Cycle(v)
            | Self::ReadOnly(v)
            | Self::NotAMember(v)
            | Self::Blocked { violation: v, .. } => Some(v),
            Self::Database(e) => e.violation(),
        }
    }

    /// The SQLSTATE, if the server reported one.
    pub fn code(&self) -> Option<&tokio_postgres::error::SqlState> {
        self.violation().map(|v| &v.code)
    }

    /// The name of the constraint that rejected the row, if any.
    pub fn constraint(&self) -> Option<&str> {
        self.violation().and_then(|v| v.constraint.as_deref())
    }
}

impl From<Error> for ProjectError {
    fn from(error: Error) -> Self {
        let boxed = |v: &Violation| Box::new(v.clone());
        if let Some(v) = error.raised(CYCLE) {
            Self::Cycle(boxed(v))
        } else if let Some(v) = error.raised(READ_ONLY) {
            Self::ReadOnly(boxed(v))
        } else if let Some(v) = error.raised(NOT_A_MEMBER) {
            Self::NotAMember(boxed(v))
        } else if let Some(v) = error.raised(BLOCKED) {
            let blockers = v
                .detail_json()
                .and_then(|d| serde_json::from_value(d.get("blockers")?.clone()).ok())
                .unwrap_or_default();
            Self::Blocked {
                blockers,
                violation: boxed(v),
            }
        } else {
            Self::Database(error)
        }
    }
}

converts_from_driver_errors!(ProjectError);

impl From<ProjectError> for Error {
    fn from(error: ProjectError) -> Self {
        match error {
            ProjectError::Cycle(v)
            | ProjectError::ReadOnly(v)
            | ProjectError::NotAMember(v)
            | ProjectError::Blocked { violation: v, .. } => Error::Database(v),
            ProjectError::Database(e) => e,
        }
    }
}

/// A project to create, owned by the current user, with its first members.
#[derive(Clone, Debug, PartialEq)]
pub struct NewProject {
    /// 1 to 255 characters.
    pub name: String,
    /// What it is about.
    pub description: Option<String>,
    /// Informational (access is by ownership and membership).
    pub visibility: ProjectVisibility,
    /// Project settings (a JSON object).
    pub settings: serde_json::Value,
    /// Members to add: active members of the organization, with their roles (admin,
    /// member or viewer).
    pub members: Vec<(Uuid, ProjectRole)>,
}

impl NewProject {
    /// A private project named `name`, with no members besides its owner.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: None,
            visibility: ProjectVisibility::Private,
            settings: serde_json::json!({}),
            members: Vec::new(),
        }
    }

    /// Sets the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Adds a member.
    pub fn member(mut self, user_id: Uuid, role: ProjectRole) -> Self {
        self.members.push((user_id, role));
        self
    }
}

/// Creates the project and adds its members, atomically when `client` is a
/// transaction.
pub async fn create_project<C: GenericClient>(
    client: &C,
    project: &NewProject,
) -> Result<Project, ProjectError> {
    let created = project_create()
        .params(
            client,
            &ProjectCreateParams {
                name: project.name.as_str(),
                description: project.description.as_deref(),
                visibility: project.visibility,
                settings: &project.settings,
            },
        )
        .one()
        .await?;
    for (user_id, role) in &project.members {
        project_member_add()
            .params(
                client,
                &ProjectMemberAddParams {
                    project_id: created.id,
                    user_id: *user_id,
                    role: *role,
                    permissions: serde_json::json!({}),
                },
            )
            .one()
            .await?;
    }
    Ok(created)
}

/// A task to create, with the tasks that block it.
#[derive(Clone, Debug, PartialEq)]
pub struct NewTask {
    /// The project.
    pub project_id: Uuid,
    /// 1 to 255 characters.
    pub title: String,
    /// Details.
    pub description: Option<String>,
    /// A task of the same project it belongs under.
    pub parent_task_id: Option<Uuid>,
    /// Default medium.
    pub priority: TaskPriority,
    /// Who does it.
    pub assignee_id: Option<Uuid>,
    /// When it is due (after now).
    pub due_date: Option<DateTime<FixedOffset>>,
    /// Positive, if estimated.
    pub estimated_hours: Option<i32>,
    /// Labels.
    pub tags: Vec<String>,
    /// Tasks of the project it waits for (dependencies of type `blocks`).
    pub blocked_by: Vec<Uuid>,
}

impl NewTask {
    /// A medium-priority task titled `title` in `project_id`.
    pub fn new(project_id: Uuid, title: impl Into<String>) -> Self {
        Self {
            project_id,
            title: title.into(),
            description: None,
            parent_task_id: None,
            priority: TaskPriority::Medium,
            assignee_id: None,
            due_date: None,
            estimated_hours: None,
            tags: Vec::new(),
            blocked_by: Vec::new(),
        }
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: TaskPriority) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the assignee.
    pub fn assignee(mut self, user_id: Uuid) -> Self {
        self.assignee_id = Some(user_id);
        self
    }

    /// Puts it under a parent task.
    pub fn parent(mut self, task_id: Uuid) -> Self {
        self.parent_task_id = Some(task_id);
        self
    }

    /// Adds a task that blocks it.
    pub fn blocked_by(mut self, task_id: Uuid) -> Self {
        self.blocked_by.push(task_id);
        self
    }
}

/// Creates the task and its blocking dependencies, atomically when `client` is a
/// transaction.
pub async fn create_task<C: GenericClient>(
    client: &C,
    task: &NewTask,
) -> Result<Task, ProjectError> {
    let created = task_create()
        .params(
            client,
            &TaskCreateParams {
                project_id: task.project_id,
                parent_task_id: task.parent_task_id,
                title: task.title.as_str(),
                description: task.description.as_deref(),
                priority: task.priority,
                assignee_id: task.assignee_id,
                due_date: task.due_date,
                estimated_hours: task.estimated_hours,
                tags: task.tags.as_slice(),
                metadata: serde_json::json!({}),
            },
        )
        .one()
        .await?;
    for blocker in &task.blocked_by {
        add_dependency(client, created.id, *blocker, DependencyType::Blocks).await?;
    }
    Ok(created)
}

/// Makes `task_id` depend on `depends_on`: [`ProjectError::Cycle`] if that closes a
/// cycle.
pub async fn add_dependency<C: GenericClient>(
    client: &C,
    task_id: Uuid,
    depends_on: Uuid,
    dependency_type: DependencyType,
) -> Result<(), ProjectError> {
    task_dependency_add()
        .params(
            client,
            &TaskDependencyAddParams {
                task_id,
                depends_on_task_id: depends_on,
                dependency_type,
            },
        )
        .one()
        .await?;
    Ok(())
}

/// Marks the task done (`projects.complete_task`): [`ProjectError::Blocked`] while a
/// task blocking it is neither done nor cancelled; `None` if the task is not visible.
pub async fn complete_task<C: GenericClient>(
    client: &C,
    task_id: Uuid,
) -> Result<Option<Task>, ProjectError> {
    Ok(task_complete().bind(client, &task_id).opt().await?)
}

/// A project's progress.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    /// All its tasks.
    pub tasks: i64,
    /// Done.
    pub done: i64,
    /// Cancelled.
    pub cancelled: i64,
}

impl Progress {
    /// Done over the tasks that are not cancelled, 0 to 1 (1 with none).
    pub fn ratio(&self) -> f64 {
        let open = self.tasks - self.cancelled;
        if open <= 0 {
            1.0
        } else {
            self.done as f64 / open as f64
        }
    }
}

/// The project's progress, counted from its own tasks only.
pub async fn progress<C: GenericClient>(
    client: &C,
    project_id: Uuid,
) -> Result<Progress, ProjectError> {
    let ProjectProgress {
        tasks,
        done,
        cancelled,
    } = project_progress().bind(client, &project_id).one().await?;
    Ok(Progress {
        tasks,
        done,
        cancelled,
    })
}

/// Replaces a document's content: the database writes it as the next version.
pub async fn edit_document<C: GenericClient>(
    client: &C,
    document_id: Uuid,
    content: &str,
    change_summary: Option<&str>,
) -> Result<Option<Document>, ProjectError> {
    Ok(document_edit()
        .params(
            client,
            &DocumentEditParams {
                content,
                change_summary,
                id: document_id,
            },
        )
        .opt()
        .await?)
}
