//! The tenant context that row-level security reads.
//!
//! Policies compare rows with `app.current_org_id` and `app.current_user_id`; unset,
//! they match nothing. [`with_tenant`] runs an async closure in a transaction whose
//! context is set with `set_config(..., true)` (that is, `SET LOCAL`): it ends with the
//! transaction, so a pooled connection never hands one tenant's context to its next
//! user.
//!
//! ```no_run
//! # async fn example(pool: deadpool_postgres::Pool, org: uuid::Uuid) -> Result<(), groundwork::Error> {
//! use groundwork::queries::identity::organizations::organization_get;
//! use groundwork::tenant::{Tenant, with_tenant};
//!
//! let mut client = pool.get().await?;
//! let name = with_tenant(&mut client, Tenant::organization(org), async |tx| {
//!     Ok(organization_get().bind(tx, &org).one().await?.name)
//! })
//! .await?;
//! # Ok(())
//! # }
//! ```

use deadpool_postgres::Transaction;
use futures::FutureExt;
use uuid::Uuid;

use crate::Error;

/// Who a transaction acts for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tenant {
    /// The organization (`app.current_org_id`).
    pub organization_id: Option<Uuid>,
    /// The user (`app.current_user_id`).
    pub user_id: Option<Uuid>,
}

impl Tenant {
    /// Acting for an organization and a user.
    pub fn new(organization_id: Uuid, user_id: Uuid) -> Self {
        Self {
            organization_id: Some(organization_id),
            user_id: Some(user_id),
        }
    }

    /// Acting for an organization, no user (for example an API key).
    pub fn organization(organization_id: Uuid) -> Self {
        Self {
            organization_id: Some(organization_id),
            user_id: None,
        }
    }

    /// Acting for a user outside any organization.
    pub fn user(user_id: Uuid) -> Self {
        Self {
            organization_id: None,
            user_id: Some(user_id),
        }
    }
}

/// Begins a transaction on `client` with `tenant` set for that transaction only.
///
/// One round trip: the transaction's `BEGIN` is awaited, and the statement that sets
/// the context is sent without waiting for its answer, so it travels with the
/// transaction's first statement. tokio-postgres sends a request when its future is
/// first polled and runs requests in that order, so the context is in place before
/// anything the caller sends. The statement holds nothing but two UUID literals and
/// cannot fail on its own; if the server refuses it all the same, the transaction is
/// aborted and the caller's first statement fails (SQLSTATE 25P02) rather than running
/// without a tenant.
///
/// On a pool in [`PoolMode::Transaction`](crate::pool::PoolMode::Transaction), end
/// the transaction with [`pool::commit`](crate::pool::commit) so that its statements
/// are closed on the server connection that prepared them.
pub async fn begin<'c>(
    client: &'c mut deadpool_postgres::Client,
    tenant: Tenant,
) -> Result<Transaction<'c>, Error> {
    let tx = crate::pool::transaction(client).await?;
    send_ahead(&tx, &context_statement(tenant))?;
    Ok(tx)
}

/// Sends `statement` on `tx` without waiting for its answer, so that it travels with
/// the next statement the caller sends (tokio-postgres sends a request when its
/// future is first polled, and runs requests in order). For statements that cannot
/// fail on their own; if the server refuses one all the same, the transaction is
/// aborted and the next statement fails (25P02).
pub(crate) fn send_ahead(tx: &Transaction<'_>, statement: &str) -> Result<(), Error> {
    match tx.batch_execute(statement).now_or_never() {
        Some(Err(e)) => Err(e.into()),
        _ => Ok(()),
    }
}

/// The values of `app.current_org_id` and `app.current_user_id` for `tenant`: UUIDs
/// as hexadecimal digits and hyphens, '' for none.
pub(crate) fn context_values(tenant: Tenant) -> (String, String) {
    let text = |id: Option<Uuid>| id.map(|id| id.to_string()).unwrap_or_default();
    (text(tenant.organization_id), text(tenant.user_id))
}

/// `SELECT set_config(...)` for both settings, local to the transaction.
pub(crate) fn context_statement(tenant: Tenant) -> String {
    let (organization_id, user_id) = context_values(tenant);
    format!(
        "SELECT set_config('app.current_org_id', '{organization_id}', true), \
         set_config('app.current_user_id', '{user_id}', true)"
    )
}

/// Runs `work` in a transaction with `tenant` set, committing if it returns `Ok` and
/// rolling back otherwise (an `Err` from `work`, or a panic, drops the transaction).
///
/// `work` is an async closure, `async |tx| { ... }`, called once with the transaction.
/// Like any closure it may borrow from where it is written, so nothing needs cloning
/// or boxing to get into it; its result `T` may not borrow the transaction. The future
/// `with_tenant` returns is `Send` when what the closure captures and holds across an
/// `.await` is, so it runs on `tokio::spawn` like any request handler:
///
/// ```no_run
/// # async fn example(pool: deadpool_postgres::Pool, org: uuid::Uuid, user: uuid::Uuid) -> Result<(), groundwork::Error> {
/// use groundwork::queries::identity::api_keys::api_key_list;
/// use groundwork::tenant::{Tenant, with_tenant};
///
/// let page_size = 50;
/// let keys = tokio::spawn(async move {
///     let mut client = pool.get().await?;
///     with_tenant(&mut client, Tenant::new(org, user), async |tx| {
///         Ok(api_key_list().bind(tx, &None, &page_size).all().await?)
///     })
///     .await
/// })
/// .await
/// .expect("the request task panicked")?;
/// println!("{} keys", keys.len());
/// # Ok(())
/// # }
/// ```
pub async fn with_tenant<T, F>(
    client: &mut deadpool_postgres::Client,
    tenant: Tenant,
    work: F,
) -> Result<T, Error>
where
    F: AsyncFnOnce(&Transaction<'_>) -> Result<T, Error>,
{
    let tx = begin(client, tenant).await?;
    let value = work(&tx).await?;
    crate::pool::commit(tx).await?;
    Ok(value)
}
