//! CAD models (the `cad` schema, seed 001): models owned by users, soft-deleted; their
//! file versions, numbered by the database; quotas from the owner's licence; and
//! processing (thumbnail, mesh analysis, CAM toolpath) on the job queue. Single
//! statements are the generated queries (`groundwork::queries::cad::*`); their errors
//! convert into [`CadError`].
//!
//! | rule | SQLSTATE | error |
//! |---|---|---|
//! | models within the plan's `max_models`, versions within the model owner's `max_versions_per_model`, also when uploads race | WD001 | [`CadError::QuotaExceeded`] |
//! | creating and uploading need a usable licence seat; processing needs its feature | WD002 | [`CadError::NotEntitled`] |
//! | the same content (SHA-256) once per model | WD003 | [`CadError::DuplicateContent`] |
//! | versions of live models only | WD004 | [`CadError::NotFound`] |
//! | versions 1..n without gaps, SHA-256 of 32 bytes, size > 0 | (database) | - |
//!
//! [`upload_version`] adds a version and enqueues its processing jobs in the caller's
//! transaction: the jobs exist exactly when the version does. A worker runs them as
//! jobs of kind `cad.<processing>` on queue `cad` with [`ProcessingArgs`], and writes
//! the result back with [`record_result`].

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Error;
use crate::client::async_::{GenericClient, Params};
use crate::error::{Violation, converts_from_driver_errors};
use crate::queries::cad::model_versions::{
    ModelVersion, ModelVersionAddParams, model_version_add, model_version_record_result,
    model_version_request_processing,
};
use crate::queries::cad::models::{Model, ModelCreateParams, model_create};
use crate::types::cad::{FileFormat, ModelType, Processing};

/// SQLSTATE raised past a plan's quota; the detail is `{"limit": <limit>}`.
pub const QUOTA_EXCEEDED: &str = "WD001";
/// SQLSTATE raised without the licence a model operation needs; the detail is
/// `{"feature": <feature>}` (`models` for creating and uploading).
pub const NOT_ENTITLED: &str = "WD002";
/// SQLSTATE raised for content a model already has; the detail is
/// `{"version": <version>}`.
pub const DUPLICATE_CONTENT: &str = "WD003";
/// SQLSTATE raised for a version of a model that does not exist or is soft-deleted.
pub const NOT_FOUND: &str = "WD004";

/// Why a CAD operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CadError {
    /// Past the plan's quota (WD001).
    #[error("quota of {limit} reached: {violation}")]
    QuotaExceeded {
        /// The plan's limit.
        limit: i64,
        /// The server's report.
        violation: Box<Violation>,
    },
    /// The licence does not allow it (WD002).
    #[error("not entitled to {feature}: {violation}")]
    NotEntitled {
        /// The feature missing (`models`: no usable seat at all).
        feature: String,
        /// The server's report.
        violation: Box<Violation>,
    },
    /// The model already has this content (WD003).
    #[error("same content as version {version}: {violation}")]
    DuplicateContent {
        /// The version with the same SHA-256.
        version: i32,
        /// The server's report.
        violation: Box<Violation>,
    },
    /// No such live model (WD004).
    #[error("not found: {0}")]
    NotFound(Box<Violation>),
    /// Anything else.
    #[error(transparent)]
    Database(Error),
}

impl CadError {
    /// The server's report, if there is one.
    pub fn violation(&self) -> Option<&Violation> {
        match self {
            Self::QuotaExceeded { violation: v, .. }
            | Self::NotEntitled { violation: v, .. }
            | Self::DuplicateContent { violation: v, .. }
            | Self::NotFound(v) => Some(v),
            Self::Database(e) => e.violation(),
        }
    }
}

impl From<Error> for CadError {
    fn from(error: Error) -> Self {
        let boxed = |v: &Violation| Box::new(v.clone());
        let detail = |v: &Violation, key: &str| v.detail_json().and_then(|d| d.get(key).cloned());
        if let Some(v) = error.raised(QUOTA_EXCEEDED) {
            Self::QuotaExceeded {
                limit: detail(v, "limit")
                    .and_then(|l| l.as_i64())
                    .unwrap_or_default(),
                violation: boxed(v),
            }
        } else if let Some(v) = error.raised(NOT_ENTITLED) {
            Self::NotEntitled {
                feature: detail(v, "feature")
                    .and_then(|f| f.as_str().map(ToOwned::to_owned))
                    .unwrap_or_default(),
                violation: boxed(v),
            }
        } else if let Some(v) = error.raised(DUPLICATE_CONTENT) {
            Self::DuplicateContent {
                version: detail(v, "version")
                    .and_then(|n| n.as_i64())
                    .and_then(|n| i32::try_from(n).ok())
                    .unwrap_or_default(),
                violation: boxed(v),
            }
        } else if let Some(v) = error.raised(NOT_FOUND) {
            Self::NotFound(boxed(v))
        } else {
            Self::Database(error)
        }
    }
}

converts_from_driver_errors!(CadError);

impl From<CadError> for Error {
    fn from(error: CadError) -> Self {
        match error {
            CadError::QuotaExceeded { violation: v, .. }
            | CadError::NotEntitled { violation: v, .. }
            | CadError::DuplicateContent { violation: v, .. }
            | CadError::NotFound(v) => Error::Database(v),
            CadError::Database(e) => e,
        }
    }
}

/// A model to create, owned by the current user.
#[derive(Clone, Debug, PartialEq)]
pub struct NewModel {
    /// What it is.
    pub model_type: ModelType,
    /// 1 to 255 characters.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// Its parameters (a JSON object).
    pub params: Option<serde_json::Value>,
}

impl NewModel {
    /// A model named `name`.
    pub fn new(model_type: ModelType, name: impl Into<String>) -> Self {
        Self {
            model_type,
            name: name.into(),
            description: None,
            params: None,
        }
    }

    /// With parameters.
    pub fn params(mut self, params: serde_json::Value) -> Self {
        self.params = Some(params);
        self
    }
}

/// Creates `model` for the current user, within the plan's quota.
pub async fn create_model<C: GenericClient>(
    client: &C,
    model: &NewModel,
) -> Result<Model, CadError> {
    Ok(model_create()
        .params(
            client,
            &ModelCreateParams {
                r#type: model.model_type,
                name: model.name.as_str(),
                description: model.description.as_deref(),
                params: model.params.as_ref(),
            },
        )
        .one()
        .await?)
}

/// A file version to add to a model, with the processing to run on it.
#[derive(Clone, Debug, PartialEq)]
pub struct NewVersion {
    /// The model.
    pub model_id: Uuid,
    /// Where the file is: unique per tenant, starting with the tenant's
    /// `<organization_id>/`.
    pub storage_key: String,
    /// The file's SHA-256.
    pub sha256: [u8; 32],
    /// Its size in bytes, at least 1.
    pub size_bytes: i64,
    /// Its format.
    pub file_format: FileFormat,
    /// Processing jobs to enqueue with it.
    pub processing: Vec<Processing>,
}

/// A version added, and the ids of its processing jobs (in the order asked).
#[derive(Clone, Debug, PartialEq)]
pub struct Uploaded {
    /// The version, numbered by the database.
    pub version: ModelVersion,
    /// The jobs enqueued.
    pub jobs: Vec<i64>,
}

/// Adds `version` and enqueues its processing, atomically when `client` is a
/// transaction (as it should be: a version without its jobs, or jobs without their
/// version, is what this avoids).
pub async fn upload_version<C: GenericClient>(
    client: &C,
    version: &NewVersion,
) -> Result<Uploaded, CadError> {
    let added = model_version_add()
        .params(
            client,
            &ModelVersionAddParams {
                model_id: version.model_id,
                storage_key: version.storage_key.as_str(),
                sha256: &version.sha256[..],
                size_bytes: version.size_bytes,
                file_format: version.file_format,
            },
        )
        .one()
        .await?;
    let mut jobs = Vec::with_capacity(version.processing.len());
    for processing in &version.processing {
        jobs.push(
            model_version_request_processing()
                .bind(client, &added.model_id, &added.version, processing)
                .one()
                .await?,
        );
    }
    Ok(Uploaded {
        version: added,
        jobs,
    })
}

/// The args of a processing job (kind `cad.<processing>`, queue `cad`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessingArgs {
    /// The model.
    pub model_id: Uuid,
    /// The version to process.
    pub version: i32,
    /// `thumbnail`, `mesh_analysis` or `cam_toolpath`.
    pub processing: String,
    /// The plan's maximum job runtime, in seconds: a handler's timeout.
    pub max_runtime_seconds: i64,
}

/// Writes a processing's result into the version's metrics, under the processing's
/// name; false when the version is not the tenant's.
pub async fn record_result<C: GenericClient>(
    client: &C,
    model_id: Uuid,
    version: i32,
    processing: Processing,
    result: &serde_json::Value,
) -> Result<bool, CadError> {
    Ok(model_version_record_result()
        .bind(client, &model_id, &version, &processing, result)
        .one()
        .await?)
}
