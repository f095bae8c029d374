//! Idempotency keys (`messaging.idempotency_keys`): run an operation once per key and
//! answer repeats with the stored response.
//!
//! [`execute_once`] claims the key by inserting it in the same transaction that runs
//! the operation and stores its response. A concurrent call with the same key blocks
//! on that insert until the first transaction ends: if it committed, the waiter
//! returns the stored response; if it rolled back, the waiter runs the operation
//! itself. The same key with a different request hash is refused.

use std::time::Duration;

use deadpool_postgres::Transaction;
use serde_json::Value;

use crate::Error;
use crate::queries::messaging::idempotency_keys::{
    idempotency_key_claim, idempotency_key_complete, idempotency_key_get,
};
use crate::tenant::{Tenant, begin};

/// Why [`execute_once`] did not return a response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdempotencyError {
    /// The key was used before for a different request.
    #[error("idempotency key {key:?} was used for a different request")]
    RequestMismatch {
        /// The key.
        key: String,
    },
    /// The operation or the database failed; nothing was stored.
    #[error(transparent)]
    Database(#[from] Error),
}

crate::error::converts_from_driver_errors!(IdempotencyError);

/// One request that must run at most once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdempotentRequest<'a> {
    /// Who the request acts for; keys are per tenant.
    pub tenant: Tenant,
    /// The client's idempotency key (1 to 255 characters).
    pub key: &'a str,
    /// A hash of the request (1 to 64 bytes): the same key with another request is
    /// refused.
    pub request_hash: &'a [u8],
    /// How long the response is kept for repeats.
    pub ttl: Duration,
}

/// How a response was obtained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// This call ran the operation.
    Executed(Value),
    /// An earlier call with the same key did; this is its stored response.
    Replayed(Value),
}

impl Outcome {
    /// The response, however it was obtained.
    pub fn response(&self) -> &Value {
        match self {
            Self::Executed(v) | Self::Replayed(v) => v,
        }
    }
}

/// Runs `operation` once for the request's key within its tenant, storing the
/// response for the request's `ttl`.
pub async fn execute_once<F>(
    client: &mut deadpool_postgres::Client,
    request: &IdempotentRequest<'_>,
    operation: F,
) -> Result<Outcome, IdempotencyError>
where
    F: AsyncFnOnce(&Transaction<'_>) -> Result<Value, Error>,
{
    let IdempotentRequest {
        tenant,
        key,
        request_hash,
        ttl,
    } = *request;
    let tx = begin(client, tenant).await?;
    let claimed = idempotency_key_claim()
        .bind(&tx, &key, &request_hash, &ttl.as_secs_f64())
        .opt()
        .await?;
    if claimed.is_none() {
        let existing = idempotency_key_get().bind(&tx, &key).one().await?;
        if existing.request_hash != request_hash {
            return Err(IdempotencyError::RequestMismatch {
                key: key.to_owned(),
            });
        }
        return Ok(Outcome::Replayed(existing.response.unwrap_or(Value::Null)));
    }
    let response = operation(&tx).await?;
    idempotency_key_complete()
        .bind(&tx, &response, &key)
        .await?;
    crate::pool::commit(tx).await?;
    Ok(Outcome::Executed(response))
}
