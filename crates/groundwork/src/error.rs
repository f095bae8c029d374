//! The engine's error: a failed database operation, with PostgreSQL's SQLSTATEs mapped
//! to typed variants in exactly one place ([`Error::from`] a driver error).
//!
//! This type knows no domain. SQLSTATEs that a schema's functions raise (its own
//! class in `sqlstates.txt`) arrive here as [`Error::Database`] and become typed in
//! that schema's module, whose error converts from this one: for example
//! [`crate::eventstore::EventStoreError`], [`crate::projects::ProjectError`] and
//! [`crate::forms::FormError`]. Those convert back into this one without losing the
//! server's report, so a domain operation can run inside
//! [`crate::tenant::with_tenant`], and converting again gives the typed error.

use tokio_postgres::error::SqlState;

use crate::pool::ConfigError;

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
    /// The server's detail (for example the duplicate key). groundwork's own
    /// SQLSTATEs carry a JSON object here ([`Violation::detail_json`]).
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

    /// The detail as a JSON object, for the SQLSTATEs that carry one (their keys are
    /// listed in `sqlstates.txt`); `None` when there is no detail or it is not a JSON
    /// object.
    pub fn detail_json(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        match serde_json::from_str(self.detail.as_deref()?) {
            Ok(serde_json::Value::Object(map)) => Some(map),
            _ => None,
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
    /// The role may not do this, or row-level security refused the row, or the work
    /// needs a tenant context that is not set (42501).
    #[error("permission denied: {0}")]
    PermissionDenied(Box<Violation>),
    /// The input is over a size or count limit (class 54, for example 54000 from the
    /// event store's limits): make it smaller or split it.
    #[error("limit exceeded: {0}")]
    LimitExceeded(Box<Violation>),
    /// The server, or the transaction, accepts no writes (25006): a hot standby
    /// refuses every write, `LISTEN` and job-queue call, and
    /// [`ReplicatedPool::read`](crate::pool::ReplicatedPool::read) runs read-only
    /// transactions. Writes, subscriptions and the job queue need the primary.
    #[error(
        "read-only: {0}; writes, subscriptions and the job queue run on the primary \
         (ReplicatedPool::primary, ReplicatedPool::write)"
    )]
    ReadOnly(Box<Violation>),
    /// Any other error the server reported, including a schema's own SQLSTATEs,
    /// which that schema's error type makes typed.
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
    Config(#[from] ConfigError),
    /// A `LISTEN` did not hold: the connection it was sent on is not a session of its
    /// own (a transaction pooler such as PgBouncer hands each statement to any server
    /// connection, and resets it after). `LISTEN` needs a direct connection.
    #[error(
        "LISTEN {channel} did not hold on its connection: the URL leads through a \
         transaction pooler; listen on a direct connection to the server"
    )]
    ListenNeedsDirectConnection {
        /// The channel.
        channel: String,
    },
    /// A JSON value the server returned does not have the shape the caller expects.
    #[error("decoding the server's JSON: {0}")]
    Decode(#[source] serde_json::Error),
    /// A value to send could not be encoded as JSON (for example a map with
    /// non-string keys).
    #[error("encoding a value as JSON: {0}")]
    Encode(#[source] serde_json::Error),
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
            | Self::PermissionDenied(v)
            | Self::LimitExceeded(v)
            | Self::ReadOnly(v)
            | Self::Database(v) => Some(v.as_ref()),
            _ => None,
        }
    }

    /// The name of the constraint that rejected the row, if any.
    pub fn constraint(&self) -> Option<&str> {
        self.violation().and_then(|v| v.constraint.as_deref())
    }

    /// Whether running the transaction again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable(_))
    }

    /// The server's report when it raised `code`: what a schema's error type
    /// converts into its typed variants.
    pub(crate) fn raised(&self, code: &str) -> Option<&Violation> {
        match self {
            Self::Database(v) if v.code.code() == code => Some(v),
            _ => None,
        }
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
        } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
            Self::PermissionDenied(violation)
        } else if code.code().starts_with("54") {
            Self::LimitExceeded(violation)
        } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
            Self::ReadOnly(violation)
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

/// Gives a module's error type the conversions every module error has: from the
/// driver's and the pool's errors, through [`Error`] and the type's own
/// `From<Error>`.
macro_rules! converts_from_driver_errors {
    ($error:ty) => {
        impl From<tokio_postgres::Error> for $error {
            fn from(error: tokio_postgres::Error) -> Self {
                $crate::Error::from(error).into()
            }
        }

        impl From<deadpool_postgres::PoolError> for $error {
            fn from(error: deadpool_postgres::PoolError) -> Self {
                $crate::Error::from(error).into()
            }
        }
    };
}
pub(crate) use converts_from_driver_errors;

/// A driver error that is not the server's, with its cause (the driver's own display
/// says only "error connecting to server" and the like).
fn connection_failure(error: &tokio_postgres::Error) -> String {
    use std::error::Error as _;
    match error.source() {
        Some(source) => format!("{error}: {source}"),
        None => error.to_string(),
    }
}
