//! The outbox relay: what checkout writes (`sales.order_placed`) leaves the database
//! after its transaction commits.

use std::time::Duration;

use futures::future::BoxFuture;
use groundwork::outbox::{PublishError, Publisher, Relay, RelayConfig, RelayRound};
use groundwork::queries::messaging::outbox_messages::OutboxMessage;

/// Publishes each message as one JSON line on standard output, where a real service
/// would hand it to a broker.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogPublisher;

impl Publisher for LogPublisher {
    fn publish<'a>(
        &'a self,
        message: &'a OutboxMessage,
    ) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(async move {
            let line = serde_json::json!({
                "outbox": message.topic,
                "message_id": message.message_id,
                "organization_id": message.organization_id,
                "partition_key": message.partition_key,
                "payload": message.payload,
            });
            println!("{line}");
            Ok(())
        })
    }
}

/// Relays the outbox to `publisher` until `stop` resolves, looking every 200 ms when
/// there is nothing to do. `pool` connects as a login role in `groundwork_relay`, which
/// reads every tenant's outbox.
pub async fn run_relay(
    pool: deadpool_postgres::Pool,
    publisher: &dyn Publisher,
    stop: impl Future<Output = ()>,
) -> RelayRound {
    Relay::new(pool, RelayConfig::default())
        .run_until(publisher, Duration::from_millis(200), stop)
        .await
}
