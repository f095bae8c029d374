//! One error type for database work, with SQLSTATEs mapped to typed variants in
//! exactly one place ([`Error::from`] a driver error).

use tokio_postgres::error::SqlState;

/// SQLSTATE raised by `eventstore.append` when its condition matches an event.
pub const CONDITION_FAILED: &str = "GWC01";
/// SQLSTATE raised by `eventstore.append_to_stream` on a stale expected version.
pub const VERSION_CONFLICT: &str = "GWC02";
/// SQLSTATE raised when a change would make a cycle of task parents or dependencies.
pub const CYCLE: &str = "GWP01";
/// SQLSTATE raised for a write to a project the current user may only read (a viewer,
/// a member managing members, anyone changing an archived project).
pub const READ_ONLY: &str = "GWP02";
/// SQLSTATE raised when the current user is not a member of the project.
pub const NOT_A_MEMBER: &str = "GWP03";
/// SQLSTATE raised when a task is completed while a task blocking it is open; the
/// detail lists the blockers ("blockers: <id>, <id>").
pub const BLOCKED: &str = "GWP04";
/// SQLSTATE raised when a form definition's JSON Schema is malformed or uses an
/// unsupported keyword; the detail is `{"schema_path": "<JSON pointer>"}`.
pub const INVALID_SCHEMA: &str = "GWF01";
/// SQLSTATE raised when submission data does not match its form's schema; the detail
/// is the JSON array of every error (see [`ValidationError`]).
pub const VALIDATION_FAILED: &str = "GWF02";
/// SQLSTATE raised for a submission to a form version that is not active.
pub const FORM_NOT_ACTIVE: &str = "GWF03";
/// SQLSTATE raised for a change to a form definition that is no longer a draft.
pub const IMMUTABLE: &str = "GWF04";
/// SQLSTATE raised for a status change the forms engine does not allow.
pub const INVALID_TRANSITION: &str = "GWF05";

/// One way a JSON document fails a JSON Schema, as `forms.json_schema_errors` reports
/// it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct ValidationError {
    /// JSON pointer to the failing value in the document (`""` for the root).
    pub instance_path: String,
    /// JSON pointer to the failing keyword in the schema.
    pub schema_path: String,
    /// The keyword (`"required"`, `"type"`, ...).
    pub keyword: String,
    /// What is wrong, in words.
    pub message: String,
}

/// What the server said about a rejected row: the SQLSTATE and the names of the
/// constraint, table and column involved, as far as the server reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The SQLSTATE.
    pub code: SqlState,
    /// The constraint (or unique index) that rejected the row.
    pub constraint: Option<String>,
    /// The table's schema.
    pub schema: Option<String>,
    /// The table.
    pub table: Option<String>,
    /// The column.
    pub column: Option<String>,
    /// The server's message.
    pub message: String,
    /// The server's detail (for example the duplicate key).
    pub detail: Option<String>,
}

impl Violation {
    fn from_db(db: &tokio_postgres::error::DbError) -> Self {
        Self {
            code: db.code().clone(),
            constraint: db.constraint().map(ToOwned::to_owned),
            schema: db.schema().map(ToOwned::to_owned),
            table: db.table().map(ToOwned::to_owned),
            column: db.column().map(ToOwned::to_owned),
            message: db.message().to_owned(),
            detail: db.detail().map(ToOwned::to_owned),
        }
    }

    /// `constraint on schema.table`, or the parts of it that are known.
    fn object(&self) -> String {
        let table = match (&self.schema, &self.table) {
            (Some(schema), Some(table)) => format!("{schema}.{table}"),
            (None, Some(table)) => table.clone(),
            _ => String::new(),
        };
        match (&self.constraint, &self.column, table.is_empty()) {
            (Some(c), _, false) => format!("{c} on {table}"),
            (Some(c), _, true) => c.clone(),
            (None, Some(col), false) => format!("{table}.{col}"),
            (None, _, false) => table,
            (None, Some(col), true) => col.clone(),
            (None, None, true) => "the statement".into(),
        }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.object(), self.message)?;
        if let Some(detail) = &self.detail {
            write!(f, " ({detail})")?;
        }
        Ok(())
    }
}

/// A failed database operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A unique or exclusion constraint rejected the row (23505, 23P01).
    #[error("conflict with an existing row: {0}")]
    Conflict(Box<Violation>),
    /// A foreign key points at a row that does not exist, or a referenced row is
    /// still in use (23503).
    #[error("missing reference: {0}")]
    MissingReference(Box<Violation>),
    /// A CHECK constraint or a data exception rejected the value (23514, class 22).
    #[error("invalid value: {0}")]
    Invalid(Box<Violation>),
    /// A NOT NULL column got no value (23502).
    #[error("missing value: {0}")]
    MissingValue(Box<Violation>),
    /// Serialization failure or deadlock (40001, 40P01): retry the transaction.
    #[error("retryable conflict between transactions: {0}")]
    Retryable(Box<Violation>),
    /// An event-store append condition matched an event (SQLSTATE GWC01): the
    /// decision it guarded is stale; re-read and decide again.
    #[error("append condition failed: {0}")]
    ConditionFailed(Box<Violation>),
    /// A stream was not at the expected version (SQLSTATE GWC02).
    #[error("stream version conflict: {0}")]
    VersionConflict(Box<Violation>),
    /// The change would make a cycle of task parents or dependencies (GWP01).
    #[error("cycle: {0}")]
    Cycle(Box<Violation>),
    /// The current user may only read the project (GWP02).
    #[error("read-only: {0}")]
    ReadOnly(Box<Violation>),
    /// The current user is not a member of the project (GWP03).
    #[error("not a member: {0}")]
    NotAMember(Box<Violation>),
    /// The task is blocked by tasks not yet done (GWP04); see [`Error::blockers`].
    #[error("blocked: {0}")]
    Blocked(Box<Violation>),
    /// A form definition's JSON Schema is malformed or unsupported (GWF01); see
    /// [`Error::schema_path`].
    #[error("invalid form schema: {0}")]
    InvalidSchema(Box<Violation>),
    /// Submission data does not match its form's schema (GWF02); see
    /// [`Error::validation_errors`].
    #[error("validation failed: {0}")]
    ValidationFailed(Box<Violation>),
    /// The form version is a draft or archived: submissions go to the active version
    /// (GWF03).
    #[error("form not active: {0}")]
    FormNotActive(Box<Violation>),
    /// The form definition is active or archived, so it no longer changes (GWF04).
    #[error("immutable: {0}")]
    Immutable(Box<Violation>),
    /// The status change is not allowed (GWF05).
    #[error("invalid transition: {0}")]
    InvalidTransition(Box<Violation>),
    /// The role may not do this, or row-level security refused the row, or the work
    /// needs a tenant context that is not set (42501).
    #[error("permission denied: {0}")]
    PermissionDenied(Box<Violation>),
    /// The input is over a size or count limit (class 54, for example 54000 from the
    /// event store's limits): make it smaller or split it.
    #[error("limit exceeded: {0}")]
    LimitExceeded(Box<Violation>),
    /// Any other error the server reported.
    #[error("database error {}: {}", .0.code.code(), .0)]
    Database(Box<Violation>),
    /// The connection failed or the driver rejected the call.
    #[error("database connection: {}", connection_failure(.0))]
    Connection(#[source] tokio_postgres::Error),
    /// No connection could be taken from the pool.
    #[error("connection pool: {0}")]
    Pool(#[source] deadpool_postgres::PoolError),
    /// The pool could not be configured.
    #[error("pool configuration: {0}")]
    Config(String),
}

impl Error {
    /// The SQLSTATE, if the server reported one.
    pub fn code(&self) -> Option<&SqlState> {
        self.violation().map(|v| &v.code)
    }

    /// The server's report, if there is one.
    pub fn violation(&self) -> Option<&Violation> {
        match self {
            Self::Conflict(v)
            | Self::MissingReference(v)
            | Self::Invalid(v)
            | Self::MissingValue(v)
            | Self::Retryable(v)
            | Self::ConditionFailed(v)
            | Self::VersionConflict(v)
            | Self::Cycle(v)
            | Self::ReadOnly(v)
            | Self::NotAMember(v)
            | Self::Blocked(v)
            | Self::InvalidSchema(v)
            | Self::ValidationFailed(v)
            | Self::FormNotActive(v)
            | Self::Immutable(v)
            | Self::InvalidTransition(v)
            | Self::PermissionDenied(v)
            | Self::LimitExceeded(v)
            | Self::Database(v) => Some(v.as_ref()),
            _ => None,
        }
    }

    /// The name of the constraint that rejected the row, if any.
    pub fn constraint(&self) -> Option<&str> {
        self.violation().and_then(|v| v.constraint.as_deref())
    }

    /// For [`Error::Blocked`]: the ids of the open tasks blocking it.
    pub fn blockers(&self) -> Vec<uuid::Uuid> {
        match self {
            Self::Blocked(v) => v
                .detail
                .as_deref()
                .and_then(|d| d.strip_prefix("blockers: "))
                .map(|ids| ids.split(", ").filter_map(|id| id.parse().ok()).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// For [`Error::ValidationFailed`]: every error the data has.
    pub fn validation_errors(&self) -> Vec<ValidationError> {
        match self {
            Self::ValidationFailed(v) => v
                .detail
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// For [`Error::InvalidSchema`]: the JSON pointer of the problem in the schema.
    pub fn schema_path(&self) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Detail {
            schema_path: String,
        }
        match self {
            Self::InvalidSchema(v) => v
                .detail
                .as_deref()
                .and_then(|d| serde_json::from_str::<Detail>(d).ok())
                .map(|d| d.schema_path),
            _ => None,
        }
    }

    /// Whether running the transaction again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable(_))
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(error: tokio_postgres::Error) -> Self {
        let Some(db) = error.as_db_error() else {
            return Self::Connection(error);
        };
        let violation = Box::new(Violation::from_db(db));
        let code = db.code();
        if *code == SqlState::UNIQUE_VIOLATION || *code == SqlState::EXCLUSION_VIOLATION {
            Self::Conflict(violation)
        } else if *code == SqlState::FOREIGN_KEY_VIOLATION {
            Self::MissingReference(violation)
        } else if *code == SqlState::CHECK_VIOLATION || code.code().starts_with("22") {
            Self::Invalid(violation)
        } else if *code == SqlState::NOT_NULL_VIOLATION {
            Self::MissingValue(violation)
        } else if *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
        {
            Self::Retryable(violation)
        } else if code.code() == CONDITION_FAILED {
            Self::ConditionFailed(violation)
        } else if code.code() == VERSION_CONFLICT {
            Self::VersionConflict(violation)
        } else if code.code() == CYCLE {
            Self::Cycle(violation)
        } else if code.code() == READ_ONLY {
            Self::ReadOnly(violation)
        } else if code.code() == NOT_A_MEMBER {
            Self::NotAMember(violation)
        } else if code.code() == BLOCKED {
            Self::Blocked(violation)
        } else if code.code() == INVALID_SCHEMA {
            Self::InvalidSchema(violation)
        } else if code.code() == VALIDATION_FAILED {
            Self::ValidationFailed(violation)
        } else if code.code() == FORM_NOT_ACTIVE {
            Self::FormNotActive(violation)
        } else if code.code() == IMMUTABLE {
            Self::Immutable(violation)
        } else if code.code() == INVALID_TRANSITION {
            Self::InvalidTransition(violation)
        } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
            Self::PermissionDenied(violation)
        } else if code.code().starts_with("54") {
            Self::LimitExceeded(violation)
        } else {
            Self::Database(violation)
        }
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        match error {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => Self::Pool(other),
        }
    }
}

/// A driver error that is not the server's, with its cause (the driver's own display
/// says only "error connecting to server" and the like).
fn connection_failure(error: &tokio_postgres::Error) -> String {
    use std::error::Error as _;
    match error.source() {
        Some(source) => format!("{error}: {source}"),
        None => error.to_string(),
    }
}
