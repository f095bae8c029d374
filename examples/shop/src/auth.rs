//! Who a request acts for: the API key's organization and the user it names.

use axum::http::HeaderMap;
use deadpool_postgres::Transaction;
use groundwork::identity::authenticate_api_key;
use groundwork::queries::identity::member_directory::member_directory_get_by_user;
use groundwork::tenant::{self, Tenant};
use uuid::Uuid;

use crate::Shop;
use crate::error::ApiError;

/// The header that names the user a request acts for.
pub(crate) const USER_HEADER: &str = "x-user-id";

/// An authenticated request: a pooled connection and who it acts for.
pub(crate) struct Caller {
    client: deadpool_postgres::Client,
    tenant: Tenant,
}

impl Shop {
    /// Authenticates the request's API key (a `SECURITY DEFINER` lookup by hash, before
    /// any tenant is known) and reads the `X-User-Id` header.
    pub(crate) async fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let key = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::unauthorized("an API key is required: Authorization: Bearer <key>")
            })?;
        let user = match headers.get(USER_HEADER) {
            None => None,
            Some(value) => Some(
                value
                    .to_str()
                    .ok()
                    .and_then(|v| v.trim().parse::<Uuid>().ok())
                    .ok_or_else(|| ApiError::bad_input("X-User-Id is not a UUID"))?,
            ),
        };
        let client = self.pool.get().await.map_err(groundwork::Error::from)?;
        let principal = authenticate_api_key(&client, key.trim())
            .await?
            .ok_or_else(|| ApiError::unauthorized("the API key is unknown, revoked or expired"))?;
        let tenant = match user {
            Some(user) => Tenant::new(principal.organization_id, user),
            None => Tenant::organization(principal.organization_id),
        };
        Ok(Caller { client, tenant })
    }
}

impl Caller {
    /// The user the request names; the cart, orders and payments need one.
    pub(crate) fn user(&self) -> Result<Uuid, ApiError> {
        self.tenant
            .user_id
            .ok_or_else(|| ApiError::missing("this request acts for a user: send X-User-Id"))
    }

    /// Begins the request's transaction with its tenant set; a user it names must be
    /// an active member of the key's organization.
    pub(crate) async fn begin(&mut self) -> Result<Transaction<'_>, ApiError> {
        let tx = tenant::begin(&mut self.client, self.tenant).await?;
        if let Some(user) = self.tenant.user_id {
            let member = member_directory_get_by_user()
                .bind(&tx, &user)
                .opt()
                .await
                .map_err(groundwork::Error::from)?;
            if member.is_none() {
                return Err(ApiError::forbidden(
                    "the user is not an active member of the API key's organization",
                ));
            }
        }
        Ok(tx)
    }
}
