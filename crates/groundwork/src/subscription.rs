//! Durable event-store subscriptions: a named checkpoint per tenant, catch-up from
//! it, then live updates through `LISTEN` on the tenant's notification channel with a
//! polling fallback.
//!
//! Each tenant has its own channel, with an unguessable name that only a transaction
//! acting for that tenant is told (`eventstore.notification_channel()`); the
//! notifications carry no payload. Another tenant can neither hear when this one
//! appends nor wake its subscribers.
//!
//! Each batch runs in one transaction: lock the checkpoint (`FOR UPDATE`, so one
//! instance of a subscription works at a time), read the next events, call the
//! handler with that transaction, advance the checkpoint, commit. Delivery is at
//! least once; when the handler writes its effects through the transaction it is
//! given, effects and checkpoint commit together and a crash mid-batch leaves
//! neither, so the effect is exactly once.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Transaction;
use futures::future::BoxFuture;
use tokio::sync::Notify;

use crate::Error;
use crate::eventstore::{EventStoreError, Query, read};
use crate::listener::{Listener, Subscribed};
use crate::queries::eventstore::events::Event;
use crate::queries::eventstore::subscriptions::{
    subscription_advance, subscription_channel, subscription_ensure, subscription_lock,
};
use crate::tenant::{Tenant, begin};

/// Handles batches of events inside the subscription's transaction.
pub trait Handler: Send + Sync {
    /// Handles `events` (in position order). An `Err` rolls the batch back; it will
    /// be delivered again.
    fn handle<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        events: &'a [Event],
    ) -> BoxFuture<'a, Result<(), Error>>;
}

/// A named subscription of one tenant to the events matching a query.
#[derive(Clone, Debug)]
pub struct Subscription {
    pool: deadpool_postgres::Pool,
    tenant: Tenant,
    name: String,
    query: Query,
    batch_size: i32,
    poll_interval: Duration,
}

impl Subscription {
    /// A subscription named `name` for `tenant` (its organization) to `query`.
    pub fn new(
        pool: deadpool_postgres::Pool,
        tenant: Tenant,
        name: impl Into<String>,
        query: Query,
    ) -> Self {
        Self {
            pool,
            tenant,
            name: name.into(),
            query,
            batch_size: 100,
            poll_interval: Duration::from_secs(5),
        }
    }

    /// Events per batch (default 100).
    pub fn batch_size(mut self, size: i32) -> Self {
        self.batch_size = size;
        self
    }

    /// How often to look for events when no notification arrives (default 5 s).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Processes one batch; returns how many events it handled (0: caught up).
    pub async fn run_batch(&self, handler: &dyn Handler) -> Result<usize, EventStoreError> {
        let mut client = self.pool.get().await?;
        let tx = begin(&mut client, self.tenant).await?;
        subscription_ensure().bind(&tx, &self.name.as_str()).await?;
        let position = subscription_lock()
            .bind(&tx, &self.name.as_str())
            .one()
            .await?;
        let events = read(&tx, &self.query, position, Some(self.batch_size)).await?;
        let Some(last) = events.last().map(|e| e.position) else {
            crate::pool::commit(tx).await?;
            return Ok(0);
        };
        handler.handle(&tx, &events).await?;
        subscription_advance()
            .bind(&tx, &last, &self.name.as_str())
            .await?;
        crate::pool::commit(tx).await?;
        Ok(events.len())
    }

    /// Catches up, then follows new events until `stop` is notified.
    ///
    /// `listen_url` is a connection string for the `LISTEN` connection, which every
    /// subscription and job worker of the process given the same string shares
    /// ([`crate::listener`]; any role may listen). Without one (or if it cannot
    /// connect) the subscription polls. It must lead straight to the server:
    /// through a transaction pooler the `LISTEN` would not hold, and `run` fails with
    /// [`Error::ListenNeedsDirectConnection`] rather than poll unawares. On a hot
    /// standby (which refuses `LISTEN` and the checkpoint's writes) it fails with
    /// [`Error::ReadOnly`].
    pub async fn run(
        &self,
        handler: &dyn Handler,
        listen_url: Option<&str>,
        stop: Arc<Notify>,
    ) -> Result<(), EventStoreError> {
        let wake = Arc::new(Notify::new());
        let _listener = match listen_url {
            Some(url) => match self.listen(url, wake.clone()).await {
                Ok(listener) => Some(listener),
                Err(e @ (Error::ListenNeedsDirectConnection { .. } | Error::ReadOnly(_))) => {
                    return Err(EventStoreError::Database(e));
                }
                Err(_) => None,
            },
            None => None,
        };
        loop {
            while self.run_batch(handler).await? > 0 {}
            tokio::select! {
                _ = stop.notified() => return Ok(()),
                _ = wake.notified() => {}
                _ = tokio::time::sleep(self.poll_interval) => {}
            }
        }
    }

    /// Subscribes to the tenant's channel on the process's shared listener for
    /// `url`, waking `wake` on every notification.
    async fn listen(&self, url: &str, wake: Arc<Notify>) -> Result<Subscribed, Error> {
        let channel = {
            let mut client = self.pool.get().await?;
            let tx = begin(&mut client, self.tenant).await?;
            let channel = subscription_channel().bind(&tx).one().await?;
            crate::pool::commit(tx).await?;
            channel
        };
        Listener::shared(url)
            .await?
            .subscribe(&channel, move |_| wake.notify_one())
            .await
    }
}
