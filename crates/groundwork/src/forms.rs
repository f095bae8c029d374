//! The forms engine (the `forms` schema, docs/REQUIREMENTS.md): versioned form definitions whose
//! JSON Schema (draft 2020-12) is checked when saved, and submissions validated against
//! it by the database on every write. Single statements are the generated queries
//! (`groundwork::queries::forms::*`); this module holds the operations that take more
//! than one.
//!
//! Errors of the generated queries convert into [`FormError`] as well:
//!
//! | rule | SQLSTATE | error |
//! |---|---|---|
//! | a definition's schema is well formed and uses supported keywords only; its references stay inside the document | WF001 | [`FormError::InvalidSchema`] |
//! | submission data matches its form's schema (every error reported) | WF002 | [`FormError::ValidationFailed`] |
//! | submissions go to the active version of a form | WF003 | [`FormError::FormNotActive`] |
//! | active and archived definitions do not change | WF004 | [`FormError::Immutable`] |
//! | definition draft -> active -> archived; submission draft -> submitted -> approved / rejected, draft / submitted -> withdrawn | WF005 | [`FormError::InvalidTransition`] |
//! | schemas and instances nest at most 64 arrays and objects deep, evaluations at most 160 subschemas (checked by `forms.json_schema_valid`, `forms.json_schema_errors`, on save and on every submission write, before evaluating) | WF006 | [`FormError::TooDeep`] |
//! | at most one active version per name | 23505 | [`Error::Conflict`] in [`FormError::Database`] |
//!
//! Every change appends an event to the definition's (`form`) or the submission's
//! (`form_submission`) stream in the same transaction, with the acting user as
//! metadata. Work in a transaction with the tenant set ([`crate::tenant::Tenant`]).

use serde_json::Value;
use uuid::Uuid;

use crate::Error;
use crate::client::async_::{GenericClient, Params};
use crate::error::{Violation, converts_from_driver_errors};
use crate::queries::forms::form_definitions::{
    FormDefinition, FormDefinitionUpdateParams, FormDefinitionValidateParams,
    form_definition_new_version, form_definition_update, form_definition_validate,
};

/// SQLSTATE raised when a form definition's JSON Schema is malformed or uses an
/// unsupported keyword; the detail is `{"schema_path": "<JSON pointer>"}`.
pub const INVALID_SCHEMA: &str = "WF001";
/// SQLSTATE raised when submission data does not match its form's schema; the detail
/// is `{"errors": [<ValidationError>, ...]}`.
pub const VALIDATION_FAILED: &str = "WF002";
/// SQLSTATE raised for a submission to a form version that is not active.
pub const FORM_NOT_ACTIVE: &str = "WF003";
/// SQLSTATE raised for a change to a form definition that is no longer a draft.
pub const IMMUTABLE: &str = "WF004";
/// SQLSTATE raised for a status change the forms engine does not allow.
pub const INVALID_TRANSITION: &str = "WF005";
/// SQLSTATE raised when a schema or an instance nests deeper than 64 arrays and
/// objects, or an evaluation applies more than 160 subschemas one inside the other; the
/// detail is `{"subject": "schema" | "instance" | "evaluation", "limit": <n>}`.
pub const TOO_DEEP: &str = "WF006";

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

/// Why a forms operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormError {
    /// A form definition's JSON Schema is malformed or unsupported (WF001).
    #[error("invalid form schema at {schema_path:?}: {violation}")]
    InvalidSchema {
        /// The JSON pointer of the problem in the schema.
        schema_path: String,
        /// The server's report.
        violation: Box<Violation>,
    },
    /// Submission data does not match its form's schema (WF002).
    #[error("validation failed with {} error(s): {violation}", .errors.len())]
    ValidationFailed {
        /// Every error the data has.
        errors: Vec<ValidationError>,
        /// The server's report.
        violation: Box<Violation>,
    },
    /// The form version is a draft or archived: submissions go to the active version
    /// (WF003).
    #[error("form not active: {0}")]
    FormNotActive(Box<Violation>),
    /// The form definition is active or archived, so it no longer changes (WF004).
    #[error("immutable: {0}")]
    Immutable(Box<Violation>),
    /// The status change is not allowed (WF005).
    #[error("invalid transition: {0}")]
    InvalidTransition(Box<Violation>),
    /// A schema or an instance nests, or an evaluation goes, deeper than the
    /// validator's limit (WF006); refused before evaluating.
    #[error("too deep: {violation}")]
    TooDeep {
        /// What is too deep: `"schema"`, `"instance"` or `"evaluation"`.
        subject: String,
        /// The limit: levels of arrays and objects, or nested subschemas.
        limit: u32,
        /// The server's report.
        violation: Box<Violation>,
    },
    /// Anything else.
    #[error(transparent)]
    Database(Error),
}

impl FormError {
    /// The server's report, if there is one.
    pub fn violation(&self) -> Option<&Violation> {
        match self {
            Self::InvalidSchema { violation: v, .. }
            | Self::ValidationFailed { violation: v, .. }
            | Self::FormNotActive(v)
            | Self::Immutable(v)
            | Self::InvalidTransition(v)
            | Self::TooDeep { violation: v, .. } => Some(v),
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

impl From<Error> for FormError {
    fn from(error: Error) -> Self {
        let boxed = |v: &Violation| Box::new(v.clone());
        let detail = |v: &Violation, key: &str| v.detail_json()?.get(key).cloned();
        if let Some(v) = error.raised(INVALID_SCHEMA) {
            Self::InvalidSchema {
                schema_path: detail(v, "schema_path")
                    .and_then(|p| p.as_str().map(ToOwned::to_owned))
                    .unwrap_or_default(),
                violation: boxed(v),
            }
        } else if let Some(v) = error.raised(VALIDATION_FAILED) {
            Self::ValidationFailed {
                errors: detail(v, "errors")
                    .and_then(|e| serde_json::from_value(e).ok())
                    .unwrap_or_default(),
                violation: boxed(v),
            }
        } else if let Some(v) = error.raised(FORM_NOT_ACTIVE) {
            Self::FormNotActive(boxed(v))
        } else if let Some(v) = error.raised(IMMUTABLE) {
            Self::Immutable(boxed(v))
        } else if let Some(v) = error.raised(INVALID_TRANSITION) {
            Self::InvalidTransition(boxed(v))
        } else if let Some(v) = error.raised(TOO_DEEP) {
            Self::TooDeep {
                subject: detail(v, "subject")
                    .and_then(|s| s.as_str().map(ToOwned::to_owned))
                    .unwrap_or_default(),
                limit: detail(v, "limit")
                    .and_then(|l| l.as_u64())
                    .and_then(|l| u32::try_from(l).ok())
                    .unwrap_or_default(),
                violation: boxed(v),
            }
        } else {
            Self::Database(error)
        }
    }
}

converts_from_driver_errors!(FormError);

impl From<FormError> for Error {
    fn from(error: FormError) -> Self {
        match error {
            FormError::InvalidSchema { violation: v, .. }
            | FormError::ValidationFailed { violation: v, .. }
            | FormError::FormNotActive(v)
            | FormError::Immutable(v)
            | FormError::InvalidTransition(v)
            | FormError::TooDeep { violation: v, .. } => Error::Database(v),
            FormError::Database(e) => e,
        }
    }
}

/// Every error `data` would have as a submission to the definition `definition_id`
/// (empty when valid); writes nothing. `None` when the definition is not visible.
pub async fn validate<C: GenericClient>(
    client: &C,
    definition_id: Uuid,
    data: &Value,
) -> Result<Option<Vec<ValidationError>>, FormError> {
    let errors = form_definition_validate()
        .params(
            client,
            &FormDefinitionValidateParams {
                data,
                id: definition_id,
            },
        )
        .opt()
        .await?;
    errors
        .map(|errors| serde_json::from_value(errors).map_err(|e| Error::Decode(e).into()))
        .transpose()
}

/// A draft of the next version of the form of `definition_id`, with a new
/// definition (its schema checked), in one transaction when `client` is one.
pub async fn new_version<C: GenericClient>(
    client: &C,
    definition_id: Uuid,
    definition: &Value,
    assert_formats: bool,
) -> Result<FormDefinition, FormError> {
    let draft = form_definition_new_version()
        .bind(client, &definition_id)
        .one()
        .await?;
    Ok(form_definition_update()
        .params(
            client,
            &FormDefinitionUpdateParams {
                definition,
                assert_formats,
                id: draft.id,
            },
        )
        .one()
        .await?)
}
