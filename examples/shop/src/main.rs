//! `cargo run -p shop`: the shop on the embedded cluster (or `DATABASE_URL`'s server),
//! migrated, with the development seed data and an API key to try it with.
//!
//! The address is the first argument or `SHOP_ADDR` (default `127.0.0.1:3000`).

use std::process::ExitCode;

use groundwork::identity::{NewApiKey, issue_api_key};
use groundwork::pool::PoolConfig;
use groundwork::tenant::{Tenant, begin};
use groundwork_provision::{DevRole, Postgres, Settings, ensure_dev_roles};
use shop::{LogPublisher, Shop, run_relay, serve};
use uuid::Uuid;

/// The development seed data, as `groundwork db seed` loads it.
const DEVELOPMENT_SEED: &str = include_str!("../../../seeds/development.sql");

/// The seeded organization and its owner, read back by the slug and email the seed
/// script writes.
const SEED_TENANT: &str = "SELECT o.id, u.id FROM identity.organizations o, identity.users u
WHERE o.slug = 'acme-development' AND u.email = 'dev@acme.test'";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("shop: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), BoxError> {
    let addr = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("SHOP_ADDR").ok())
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned());

    // The server the `groundwork` CLI uses: DATABASE_URL, or the embedded cluster in
    // the repository's `.groundwork/` (GROUNDWORK_DATA_DIR overrides), started if it is
    // not running and stopped when the shop exits if the shop started it.
    eprintln!("shop: starting the embedded cluster (created on first use)");
    let mut settings = Settings::from_env()?;
    let data_dir = std::env::var("GROUNDWORK_DATA_DIR").unwrap_or_default();
    if data_dir.trim().is_empty() {
        // The repository's cluster, the one `cargo run -- db start` runs, from any
        // directory.
        settings.data_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.groundwork").into();
    }
    let postgres = Postgres::persistent(&settings).await?;
    if let Some(notice) = postgres.notice() {
        eprintln!("shop: {notice}");
    }
    let (admin, connection) =
        tokio_postgres::connect(postgres.url(), tokio_postgres::NoTls).await?;
    tokio::spawn(connection);

    let applied = groundwork::migrate::migrator()?
        .up(&admin, groundwork::migrate::UpOptions::default())
        .await?;
    eprintln!("shop: {} migration(s) applied", applied.len());
    ensure_dev_roles(&admin).await?;
    admin
        .batch_execute(&format!("BEGIN;\n{DEVELOPMENT_SEED}\nCOMMIT;"))
        .await?;
    let row = admin.query_one(SEED_TENANT, &[]).await?;
    let (organization, user): (Uuid, Uuid) = (row.get(0), row.get(1));

    // Requests run as the development application role, under row-level security.
    let pool = PoolConfig::new(DevRole::App.url(postgres.url())).build()?;
    let key = {
        let mut client = pool.get().await?;
        let tx = begin(&mut client, Tenant::new(organization, user)).await?;
        let issued = issue_api_key(&tx, &NewApiKey::new("shop example").created_by(user)).await?;
        tx.commit().await?;
        issued.plaintext
    };

    // The embedded cluster has no login role in `groundwork_relay`; the relay connects
    // as the cluster's own superuser here. A deployment gives it a relay role.
    let relay_pool = PoolConfig::new(postgres.url()).build()?;
    let (stop_relay, relay_stopped) = tokio::sync::oneshot::channel::<()>();
    let relay = tokio::spawn(async move {
        run_relay(relay_pool, &LogPublisher, async {
            relay_stopped.await.ok();
        })
        .await
    });

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let url = format!("http://{}", listener.local_addr()?);
    println!("SHOP_URL={url}");
    println!("API_KEY={key}");
    println!("USER_ID={user}");
    println!("ORGANIZATION_ID={organization}");
    eprintln!("shop: listening on {url}; Ctrl-C stops it");

    let server = serve(listener, Shop::new(pool));
    tokio::select! {
        served = server => served?,
        _ = tokio::signal::ctrl_c() => eprintln!("shop: stopping"),
    }
    stop_relay.send(()).ok();
    let relayed = relay.await?;
    eprintln!("shop: relayed {} outbox message(s)", relayed.delivered);
    Ok(())
}
