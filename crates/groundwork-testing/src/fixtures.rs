//! Rows for tests, with defaults: a test names only what it cares about.
//!
//! Every fixture is inserted the way a service would insert it: through the
//! application role, in a transaction acting for the tenant (organization, user) the
//! row belongs to ([`Fixture::tenant`]). [`TestDb::insert`](crate::TestDb::insert)
//! panics with the reason when the database refuses; [`TestDb::try_insert`](
//! crate::TestDb::try_insert) returns it, for tests of the refusal.
//!
//! | table | fixture | row |
//! |---|---|---|
//! | `identity.users` | [`UserFixture`] | [`User`] |
//! | `identity.organizations` | [`OrganizationFixture`] | [`Organization`] |
//! | `identity.organization_members` | [`MemberFixture`] (the current user joins) | [`OrganizationMember`] |
//! | `identity.organization_members` (invitations) | `(Tenant, NewInvitation)` | [`Invitation`] |
//! | `identity.user_profiles` | [`ProfileFixture`] | [`UserProfile`] |
//! | `identity.sessions` | [`NewSession`] | [`IssuedSession`] |
//! | `identity.api_keys` | `(Tenant, NewApiKey)` | [`IssuedApiKey`] |
//! | `eventstore.events` | `(Tenant, Vec<NewEvent>)` | the last position |
//! | `eventstore.subscriptions` | [`SubscriptionFixture`] | its position |
//! | `messaging.outbox_messages` | `(Tenant, NewMessage)` | [`OutboxMessage`] |
//! | `messaging.idempotency_keys` | [`IdempotencyKeyFixture`] | [`IdempotencyKey`] |
//! | `projects.projects` (and `project_members`) | `(Tenant, NewProject)` | [`Project`] |
//! | `projects.tasks` (and `task_dependencies`) | `(Tenant, NewTask)` | [`Task`] |
//! | `projects.documents` (and `document_versions`) | [`DocumentFixture`] | [`Document`] |
//! | `projects.file_attachments` | [`AttachmentFixture`] | [`FileAttachment`] |

use std::time::Duration;

use deadpool_postgres::Transaction;
use futures::future::BoxFuture;
use groundwork::Error;
use groundwork::client::Params;
use groundwork::eventstore::{EventStoreError, NewEvent, append};
use groundwork::identity::{
    IdentityError, Invitation, IssuedApiKey, IssuedSession, NewApiKey, NewInvitation, NewSession,
    create_session, invite_member, issue_api_key,
};
use groundwork::outbox::{NewMessage, enqueue};
use groundwork::projects::{NewProject, NewTask, ProjectError, create_project, create_task};
use groundwork::queries::eventstore::subscriptions::{subscription_ensure, subscription_get};
use groundwork::queries::identity::organization_members::{
    OrganizationMember, OrganizationMemberAddParams, organization_member_add,
};
use groundwork::queries::identity::organizations::{
    Organization, OrganizationCreateParams, organization_create,
};
use groundwork::queries::identity::user_profiles::{
    UserProfile, UserProfileUpsertParams, user_profile_upsert,
};
use groundwork::queries::identity::users::{User, UserCreateParams, user_create};
use groundwork::queries::messaging::idempotency_keys::{
    IdempotencyKey, IdempotencyKeyClaimParams, IdempotencyKeyCompleteParams, idempotency_key_claim,
    idempotency_key_complete, idempotency_key_get,
};
use groundwork::queries::messaging::outbox_messages::OutboxMessage;
use groundwork::queries::projects::documents::{Document, DocumentCreateParams, document_create};
use groundwork::queries::projects::file_attachments::{
    FileAttachment, FileAttachmentCreateParams, file_attachment_create,
};
use groundwork::queries::projects::projects::Project;
use groundwork::queries::projects::tasks::Task;
use groundwork::tenant::Tenant;
use groundwork::types::identity::MemberRole;
use groundwork::types::projects::AttachmentEntity;
use uuid::Uuid;

/// A row a test can insert.
pub trait Fixture: Send + 'static {
    /// What the insert returns.
    type Row: Send + 'static;

    /// Why the insert fails: the error of the operation it goes through.
    type Error: From<Error> + std::fmt::Display + Send + 'static;

    /// Who inserts it: the tenant context of the application role's transaction.
    fn tenant(&self) -> Tenant;

    /// Inserts it in `tx`.
    fn insert<'t>(self, tx: &'t Transaction<'t>) -> BoxFuture<'t, Result<Self::Row, Self::Error>>;
}

/// A label unique in the test database, for emails, usernames and slugs.
fn unique() -> String {
    format!("t{}", &Uuid::new_v4().simple().to_string()[..12])
}

/// A user signing itself up: unique email and username, no password or phone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserFixture {
    /// The user's id (the signing-up user's context).
    pub id: Uuid,
    /// Default `<unique>@example.com`.
    pub email: String,
    /// Default the unique label.
    pub username: String,
    /// An argon2id hash, if any.
    pub password_hash: Option<String>,
    /// Default `Test`.
    pub first_name: Option<String>,
    /// A phone number, if any.
    pub phone: Option<String>,
}

impl Default for UserFixture {
    fn default() -> Self {
        let label = unique();
        Self {
            id: Uuid::new_v4(),
            email: format!("{label}@example.com"),
            username: label,
            password_hash: None,
            first_name: Some("Test".to_owned()),
            phone: None,
        }
    }
}

impl UserFixture {
    /// Sets the email.
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = email.into();
        self
    }

    /// Sets the username.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = username.into();
        self
    }

    /// Sets the password hash.
    pub fn password_hash(mut self, hash: impl Into<String>) -> Self {
        self.password_hash = Some(hash.into());
        self
    }

    /// Sets the phone number.
    pub fn phone(mut self, phone: impl Into<String>) -> Self {
        self.phone = Some(phone.into());
        self
    }
}

impl Fixture for UserFixture {
    type Row = User;
    type Error = Error;

    fn tenant(&self) -> Tenant {
        Tenant::user(self.id)
    }

    fn insert<'t>(self, tx: &'t Transaction<'t>) -> BoxFuture<'t, Result<User, Error>> {
        Box::pin(async move {
            Ok(user_create()
                .params(
                    tx,
                    &UserCreateParams {
                        id: Some(self.id),
                        email: self.email.as_str(),
                        username: self.username.as_str(),
                        password_hash: self.password_hash.as_deref(),
                        first_name: self.first_name.as_deref(),
                        last_name: None::<&str>,
                        phone: self.phone.as_deref(),
                    },
                )
                .one()
                .await?)
        })
    }
}

/// An organization created under its own context, with no members: unique slug.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrganizationFixture {
    /// The organization's id.
    pub id: Uuid,
    /// Default the unique label.
    pub slug: String,
    /// Default `Test organization`.
    pub name: String,
    /// The user who created it, if any.
    pub created_by: Option<Uuid>,
}

impl Default for OrganizationFixture {
    fn default() -> Self {
        Self {
            id: Uuid::new_v4(),
            slug: unique(),
            name: "Test organization".to_owned(),
            created_by: None,
        }
    }
}

impl OrganizationFixture {
    /// Sets the slug.
    pub fn slug(mut self, slug: impl Into<String>) -> Self {
        self.slug = slug.into();
        self
    }

    /// Records the creator, who then acts in the insert's context too.
    pub fn created_by(mut self, user_id: Uuid) -> Self {
        self.created_by = Some(user_id);
        self
    }
}

impl Fixture for OrganizationFixture {
    type Row = Organization;
    type Error = Error;

    fn tenant(&self) -> Tenant {
        Tenant {
            organization_id: Some(self.id),
            user_id: self.created_by,
        }
    }

    fn insert<'t>(self, tx: &'t Transaction<'t>) -> BoxFuture<'t, Result<Organization, Error>> {
        Box::pin(async move {
            Ok(organization_create()
                .params(
                    tx,
                    &OrganizationCreateParams {
                        id: Some(self.id),
                        name: self.name.as_str(),
                        slug: self.slug.as_str(),
                        settings: serde_json::json!({}),
                        metadata: serde_json::json!({}),
                        created_by: self.created_by,
                    },
                )
                .one()
                .await?)
        })
    }
}

/// The current user joining an organization (creating it, say) with a role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberFixture {
    /// The organization.
    pub organization_id: Uuid,
    /// The user, who acts.
    pub user_id: Uuid,
    /// Default `member`.
    pub role: MemberRole,
}

impl MemberFixture {
    /// `user_id` joins `organization_id` as a member.
    pub fn new(organization_id: Uuid, user_id: Uuid) -> Self {
        Self {
            organization_id,
            user_id,
            role: MemberRole::Member,
        }
    }

    /// Sets the role.
    pub fn role(mut self, role: MemberRole) -> Self {
        self.role = role;
        self
    }
}

impl Fixture for MemberFixture {
    type Row = OrganizationMember;
    type Error = Error;

    fn tenant(&self) -> Tenant {
        Tenant::new(self.organization_id, self.user_id)
    }

    fn insert<'t>(
        self,
        tx: &'t Transaction<'t>,
    ) -> BoxFuture<'t, Result<OrganizationMember, Error>> {
        Box::pin(async move {
            Ok(organization_member_add()
                .params(
                    tx,
                    &OrganizationMemberAddParams {
                        user_id: self.user_id,
                        role: self.role,
                        permissions: serde_json::json!({}),
                    },
                )
                .one()
                .await?)
        })
    }
}

impl Fixture for (Tenant, NewInvitation) {
    type Row = Invitation;
    type Error = IdentityError;

    fn tenant(&self) -> Tenant {
        self.0
    }

    fn insert<'t>(
        self,
        tx: &'t Transaction<'t>,
    ) -> BoxFuture<'t, Result<Invitation, IdentityError>> {
        Box::pin(async move { invite_member(tx, &self.1).await })
    }
}

/// A user's profile, as the user writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileFixture {
    /// The user, who acts.
    pub user_id: Uuid,
    /// A biography, if any.
    pub bio: Option<String>,
    /// A website (`http(s)://`), if any.
    pub website_url: Option<String>,
    /// Default `{}`.
    pub preferences: serde_json::Value,
}

impl ProfileFixture {
    /// An empty profile of `user_id`.
    pub fn new(user_id: Uuid) -> Self {
        Self {
            user_id,
            bio: None,
            website_url: None,
            preferences: serde_json::json!({}),
        }
    }

    /// Sets the biography.
    pub fn bio(mut self, bio: impl Into<String>) -> Self {
        self.bio = Some(bio.into());
        self
    }

    /// Sets the website.
    pub fn website_url(mut self, url: impl Into<String>) -> Self {
        self.website_url = Some(url.into());
        self
    }
}

impl Fixture for ProfileFixture {
    type Row = UserProfile;
    type Error = Error;

    fn tenant(&self) -> Tenant {
        Tenant::user(self.user_id)
    }

    fn insert<'t>(self, tx: &'t Transaction<'t>) -> BoxFuture<'t, Result<UserProfile, Error>> {
        Box::pin(async move {
            Ok(user_profile_upsert()
                .params(
                    tx,
                    &UserProfileUpsertParams {
                        user_id: self.user_id,
                        bio: self.bio.as_deref(),
                        location: None::<&str>,
                        website_url: self.website_url.as_deref(),
                        social_links: serde_json::json!({}),
                        preferences: self.preferences,
                    },
                )
                .one()
                .await?)
        })
    }
}

impl Fixture for NewSession {
    type Row = IssuedSession;
    type Error = IdentityError;

    fn tenant(&self) -> Tenant {
        Tenant::user(self.user_id)
    }

    fn insert<'t>(
        self,
        tx: &'t Transaction<'t>,
    ) -> BoxFuture<'t, Result<IssuedSession, IdentityError>> {
        Box::pin(async move { create_session(tx, &self).await })
    }
}

impl Fixture for (Tenant, NewApiKey) {
    type Row = IssuedApiKey;
    type Error = IdentityError;

    fn tenant(&self) -> Tenant {
        self.0
    }

    fn insert<'t>(
        self,
        tx: &'t Transaction<'t>,
    ) -> BoxFuture<'t, Result<IssuedApiKey, IdentityError>> {
        Box::pin(async move { issue_api_key(tx, &self.1).await })
    }
}

impl Fixture for (Tenant, Vec<NewEvent>) {
    type Row = i64;
    type Error = EventStoreError;

    fn tenant(&self) -> Tenant {
        self.0
    }

    fn insert<'t>(self, tx: &'t Transaction<'t>) -> BoxFuture<'t, Result<i64, EventStoreError>> {
        Box::pin(async move { append(tx, &self.1, None).await })
    }
}

/// A named subscription checkpoint of a tenant, at position 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionFixture {
    /// The tenant.
    pub tenant: Tenant,
    /// The subscription's name.
    pub name: String,
}

impl Fixture for SubscriptionFixture {
    type Row = i64;
    type Error = Error;

    fn tenant(&self) -> Tenant {
        self.tenant
    }

    fn insert<'t>(self, tx: &'t Transaction<'t>) -> BoxFuture<'t, Result<i64, Error>> {
        Box::pin(async move {
            subscription_ensure().bind(tx, &self.name.as_str()).await?;
            Ok(subscription_get()
                .bind(tx, &self.name.as_str())
                .one()
                .await?)
        })
    }
}

impl Fixture for (Tenant, NewMessage) {
    type Row = OutboxMessage;
    type Error = Error;

    fn tenant(&self) -> Tenant {
        self.0
    }

    fn insert<'t>(self, tx: &'t Transaction<'t>) -> BoxFuture<'t, Result<OutboxMessage, Error>> {
        Box::pin(async move { enqueue(tx, &self.1).await })
    }
}

/// A completed idempotency key with its stored response: unique key, request hash
/// `[1; 32]`, response `{}`, kept for an hour.
#[derive(Clone, Debug, PartialEq)]
pub struct IdempotencyKeyFixture {
    /// The tenant.
    pub tenant: Tenant,
    /// The key.
    pub key: String,
    /// The request's hash.
    pub request_hash: Vec<u8>,
    /// The stored response.
    pub response: serde_json::Value,
    /// How long it is kept.
    pub ttl: Duration,
}

impl IdempotencyKeyFixture {
    /// A completed key of `tenant`.
    pub fn new(tenant: Tenant) -> Self {
        Self {
            tenant,
            key: unique(),
            request_hash: vec![1; 32],
            response: serde_json::json!({}),
            ttl: Duration::from_secs(3600),
        }
    }
}

impl Fixture for IdempotencyKeyFixture {
    type Row = IdempotencyKey;
    type Error = Error;

    fn tenant(&self) -> Tenant {
        self.tenant
    }

    fn insert<'t>(self, tx: &'t Transaction<'t>) -> BoxFuture<'t, Result<IdempotencyKey, Error>> {
        Box::pin(async move {
            idempotency_key_claim()
                .params(
                    tx,
                    &IdempotencyKeyClaimParams {
                        key: self.key.as_str(),
                        request_hash: self.request_hash.as_slice(),
                        ttl_seconds: self.ttl.as_secs_f64(),
                    },
                )
                .one()
                .await?;
            idempotency_key_complete()
                .params(
                    tx,
                    &IdempotencyKeyCompleteParams {
                        response: self.response.clone(),
                        key: self.key.as_str(),
                    },
                )
                .await?;
            Ok(idempotency_key_get()
                .bind(tx, &self.key.as_str())
                .one()
                .await?)
        })
    }
}

impl Fixture for (Tenant, NewProject) {
    type Row = Project;
    type Error = ProjectError;

    fn tenant(&self) -> Tenant {
        self.0
    }

    fn insert<'t>(self, tx: &'t Transaction<'t>) -> BoxFuture<'t, Result<Project, ProjectError>> {
        Box::pin(async move { create_project(tx, &self.1).await })
    }
}

impl Fixture for (Tenant, NewTask) {
    type Row = Task;
    type Error = ProjectError;

    fn tenant(&self) -> Tenant {
        self.0
    }

    fn insert<'t>(self, tx: &'t Transaction<'t>) -> BoxFuture<'t, Result<Task, ProjectError>> {
        Box::pin(async move { create_task(tx, &self.1).await })
    }
}

/// A markdown document of a project: title `Notes`, content `# Notes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentFixture {
    /// Who writes it.
    pub tenant: Tenant,
    /// The project.
    pub project_id: Uuid,
    /// Default `Notes`.
    pub title: String,
    /// Default `# Notes`.
    pub content: String,
}

impl DocumentFixture {
    /// A document of `project_id` written by `tenant`'s user.
    pub fn new(tenant: Tenant, project_id: Uuid) -> Self {
        Self {
            tenant,
            project_id,
            title: "Notes".to_owned(),
            content: "# Notes".to_owned(),
        }
    }
}

impl Fixture for DocumentFixture {
    type Row = Document;
    type Error = Error;

    fn tenant(&self) -> Tenant {
        self.tenant
    }

    fn insert<'t>(self, tx: &'t Transaction<'t>) -> BoxFuture<'t, Result<Document, Error>> {
        Box::pin(async move {
            Ok(document_create()
                .params(
                    tx,
                    &DocumentCreateParams {
                        project_id: self.project_id,
                        title: self.title.as_str(),
                        content: self.content.as_str(),
                        content_type: "markdown",
                        change_summary: None::<&str>,
                        tags: &[] as &[&str],
                        metadata: serde_json::json!({}),
                    },
                )
                .one()
                .await?)
        })
    }
}

/// A 1 KiB PDF attached to a project, or to one of its tasks or documents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentFixture {
    /// Who uploads it.
    pub tenant: Tenant,
    /// The project.
    pub project_id: Uuid,
    /// What it is attached to.
    pub entity_type: AttachmentEntity,
    /// The project's, task's or document's id.
    pub entity_id: Uuid,
    /// Default 1024.
    pub file_size: i64,
    /// Default `report.pdf`.
    pub filename: String,
}

impl AttachmentFixture {
    /// A file attached to `entity_type` `entity_id` of `project_id`.
    pub fn new(
        tenant: Tenant,
        project_id: Uuid,
        entity_type: AttachmentEntity,
        entity_id: Uuid,
    ) -> Self {
        Self {
            tenant,
            project_id,
            entity_type,
            entity_id,
            file_size: 1024,
            filename: "report.pdf".to_owned(),
        }
    }
}

impl Fixture for AttachmentFixture {
    type Row = FileAttachment;
    type Error = Error;

    fn tenant(&self) -> Tenant {
        self.tenant
    }

    fn insert<'t>(self, tx: &'t Transaction<'t>) -> BoxFuture<'t, Result<FileAttachment, Error>> {
        Box::pin(async move {
            Ok(file_attachment_create()
                .params(
                    tx,
                    &FileAttachmentCreateParams {
                        project_id: self.project_id,
                        entity_type: self.entity_type,
                        entity_id: self.entity_id,
                        filename: self.filename.as_str(),
                        original_filename: self.filename.as_str(),
                        file_size: self.file_size,
                        mime_type: "application/pdf",
                        storage_path: format!("projects/{}/{}", self.project_id, self.filename),
                        metadata: serde_json::json!({}),
                    },
                )
                .one()
                .await?)
        })
    }
}
