//! One `LISTEN` connection per process and server, shared by every subscription and
//! job worker of the process.
//!
//! [`Listener::shared`] returns the process's listener for a connection string,
//! opening it on first use; each [`Listener::subscribe`] adds a channel to it (the
//! first subscriber of a channel sends `LISTEN`, the last one to go sends `UNLISTEN`),
//! and every notification is fanned out to the channel's subscribers. A service with
//! a hundred subscriptions holds one listening session, not a hundred.
//!
//! The connection must lead straight to the server: before a channel counts as
//! subscribed, the listener checks that the `LISTEN` holds, and through a
//! transaction pooler it does not ([`Error::ListenNeedsDirectConnection`]). When the
//! connection is lost (a server restart, a terminated backend) the listener
//! reconnects every half second, listens on every channel again and calls every
//! subscriber with `None`: notifications sent meanwhile were missed, so each looks
//! for work itself.
//!
//! ```no_run
//! # async fn example(url: &str) -> Result<(), groundwork::Error> {
//! use std::sync::Arc;
//! use tokio::sync::Notify;
//!
//! let wake = Arc::new(Notify::new());
//! let listener = groundwork::listener::Listener::shared(url).await?;
//! let on_notification = wake.clone();
//! let _subscribed = listener
//!     .subscribe("my_channel", move |_payload| on_notification.notify_one())
//!     .await?;
//! wake.notified().await;
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use futures::StreamExt;
use tokio::task::JoinHandle;
use tokio_postgres::tls::NoTlsStream;
use tokio_postgres::{AsyncMessage, Client, Connection, NoTls, Socket};

use crate::Error;

/// What a subscriber is called with: the notification's payload, or `None` when
/// notifications may have been missed (the connection was lost and is back).
type Callback = dyn Fn(Option<&str>) + Send + Sync;

/// How long the listener waits before it reconnects.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// The process's listeners, by connection string.
static LISTENERS: Mutex<Vec<(String, Weak<Inner>)>> = Mutex::new(Vec::new());

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A process's shared `LISTEN` connection to one server (cheap to clone).
#[derive(Clone)]
pub struct Listener {
    inner: Arc<Inner>,
}

struct Inner {
    hub: Arc<Hub>,
    task: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The channels and their subscribers, and the current connection.
#[derive(Default)]
struct Hub {
    channels: Mutex<HashMap<String, Vec<Weak<Callback>>>>,
    client: Mutex<Option<Arc<Client>>>,
    /// Serialises `LISTEN` and `UNLISTEN` with the changes of `channels` they follow.
    commands: tokio::sync::Mutex<()>,
}

impl Hub {
    fn client(&self) -> Option<Arc<Client>> {
        lock(&self.client).clone()
    }

    /// Calls the live subscribers of `channel` (every channel's for `None`).
    fn dispatch(&self, channel: Option<&str>, payload: Option<&str>) {
        let callbacks: Vec<Arc<Callback>> = lock(&self.channels)
            .iter()
            .filter(|(name, _)| channel.is_none_or(|channel| channel == name.as_str()))
            .flat_map(|(_, subscribers)| subscribers.iter().filter_map(Weak::upgrade))
            .collect();
        for callback in callbacks {
            callback(payload);
        }
    }

    /// Whether `channel` has a live subscriber (dropping the dead ones).
    fn is_wanted(&self, channel: &str) -> bool {
        let mut channels = lock(&self.channels);
        let Some(subscribers) = channels.get_mut(channel) else {
            return false;
        };
        subscribers.retain(|s| s.strong_count() > 0);
        if subscribers.is_empty() {
            channels.remove(channel);
            false
        } else {
            true
        }
    }
}

impl Listener {
    /// The process's listener for `url`, connected: the one already open, or a new
    /// one. Fails when the server cannot be reached (a subscriber then polls).
    ///
    /// The listening connection runs as a task on the Tokio runtime of the call that
    /// opened it, and lives while any [`Listener`] for `url` does: a process with
    /// several runtimes shares it across them only while the first runtime runs
    /// (subscribers on another runtime are then called from that one's task).
    pub async fn shared(url: &str) -> Result<Self, Error> {
        if let Some(inner) = lock(&LISTENERS)
            .iter()
            .find(|(known, _)| known == url)
            .and_then(|(_, inner)| inner.upgrade())
        {
            return Ok(Self { inner });
        }
        let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
        let mut listeners = lock(&LISTENERS);
        listeners.retain(|(_, inner)| inner.strong_count() > 0);
        // Another task may have opened one meanwhile: the first one stays.
        if let Some(inner) = listeners
            .iter()
            .find(|(known, _)| known == url)
            .and_then(|(_, inner)| inner.upgrade())
        {
            return Ok(Self { inner });
        }
        let hub = Arc::new(Hub::default());
        *lock(&hub.client) = Some(Arc::new(client));
        let task = tokio::spawn(run(url.to_owned(), hub.clone(), connection));
        let inner = Arc::new(Inner { hub, task });
        listeners.push((url.to_owned(), Arc::downgrade(&inner)));
        Ok(Self { inner })
    }

    /// Calls `callback` with the payload of every notification on `channel` until
    /// the returned value is dropped. The channel name must need no quoting beyond
    /// double quotes. Refused with [`Error::ListenNeedsDirectConnection`] when the
    /// `LISTEN` does not hold (a transaction pooler between); while the connection is
    /// down, the channel is listened on when it is back.
    pub async fn subscribe(
        &self,
        channel: &str,
        callback: impl Fn(Option<&str>) + Send + Sync + 'static,
    ) -> Result<Subscribed, Error> {
        let hub = &self.inner.hub;
        let callback: Arc<Callback> = Arc::new(callback);
        let _commands = hub.commands.lock().await;
        let first = !hub.is_wanted(channel);
        lock(&hub.channels)
            .entry(channel.to_owned())
            .or_default()
            .push(Arc::downgrade(&callback));
        if first
            && let Some(client) = hub.client()
            && let Err(e) = crate::pool::listen(&client, channel).await
        {
            lock(&hub.channels).remove(channel);
            return Err(e);
        }
        Ok(Subscribed {
            listener: self.clone(),
            channel: channel.to_owned(),
            _callback: callback,
        })
    }
}

/// A channel subscribed to; dropping it ends the subscription (and the channel's
/// `LISTEN` with its last subscriber).
pub struct Subscribed {
    listener: Listener,
    channel: String,
    _callback: Arc<Callback>,
}

impl Drop for Subscribed {
    fn drop(&mut self) {
        let hub = self.listener.inner.hub.clone();
        let channel = std::mem::take(&mut self.channel);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        // `_callback` is dropped after this body: decide once it is gone.
        runtime.spawn(async move {
            let _commands = hub.commands.lock().await;
            if !hub.is_wanted(&channel)
                && let Some(client) = hub.client()
            {
                let _ = client
                    .batch_execute(&format!("UNLISTEN \"{channel}\""))
                    .await;
            }
        });
    }
}

type PgConnection = Connection<Socket, NoTlsStream>;

/// Drives `connection` until it ends, dispatching its notifications; then forgets
/// its client.
async fn drive(hub: &Hub, mut connection: PgConnection) {
    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    while let Some(Ok(message)) = messages.next().await {
        if let AsyncMessage::Notification(n) = message {
            hub.dispatch(Some(n.channel()), Some(n.payload()));
        }
    }
    *lock(&hub.client) = None;
}

/// Listens on every wanted channel on `client`, makes it the hub's client and calls
/// every subscriber with `None`; false when a `LISTEN` fails.
async fn listen_again(hub: &Hub, client: Arc<Client>) -> bool {
    let _commands = hub.commands.lock().await;
    let wanted: Vec<String> = lock(&hub.channels).keys().cloned().collect();
    for channel in &wanted {
        if crate::pool::listen(&client, channel).await.is_err() {
            return false;
        }
    }
    *lock(&hub.client) = Some(client);
    hub.dispatch(None, None);
    true
}

/// Drives the first connection, then reconnects whenever the current one ends.
async fn run(url: String, hub: Arc<Hub>, first: PgConnection) {
    drive(&hub, first).await;
    loop {
        tokio::time::sleep(RECONNECT_DELAY).await;
        let Ok((client, connection)) = tokio_postgres::connect(&url, NoTls).await else {
            continue;
        };
        let driving = drive(&hub, connection);
        tokio::pin!(driving);
        tokio::select! {
            () = &mut driving => continue,
            listening = listen_again(&hub, Arc::new(client)) => if !listening {
                continue;
            },
        }
        driving.await;
    }
}
