//! `db create`, `db drop` and `db reset`: the application database itself, on the
//! embedded cluster (`groundwork`) or on the `--database-url` server (the database
//! its URL names).

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::process::ExitCode;

use groundwork_migrate::{Migrator, UpOptions};
use groundwork_provision::{Origin, Postgres, Settings, ensure_dev_roles};
use groundwork_support::connect::{connect, describe};

use super::DropArgs;
use super::inspect::{address, admin, database_name, quote_ident};
use crate::cli::Source;

/// Databases a server needs for itself, which a URL may name but `db drop` never drops.
const MAINTENANCE_DATABASES: [&str; 3] = ["postgres", "template0", "template1"];

/// Whether `GROUNDWORK_ENV=production`, as `migrate down` reads it.
pub(super) fn production() -> bool {
    std::env::var("GROUNDWORK_ENV").is_ok_and(|v| v.eq_ignore_ascii_case("production"))
}

pub(super) async fn create(settings: &Settings) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let server = server(settings).await?;
    let name = database_name(server.url())?;
    let admin = admin(server.url()).await?;
    if create_database(&admin, &name).await? {
        say!("created database {name}");
    } else {
        say!("database {name} already exists");
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn drop(
    settings: &Settings,
    args: &DropArgs,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    refuse_unconfirmed("drop", args)?;
    let server = server(settings).await?;
    let name = database_name(server.url())?;
    let admin = admin(server.url()).await?;
    if !confirmed(args, &name, server.url())? {
        say!("not dropped");
        return Ok(ExitCode::FAILURE);
    }
    drop_database(&admin, &name).await?;
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn reset(
    settings: &Settings,
    args: &DropArgs,
    source: &Source,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    refuse_unconfirmed("reset", args)?;
    // Unreadable migrations fail here, before anything is dropped.
    let migrator = Migrator::from_dir(&source.source)?;
    let server = server(settings).await?;
    let name = database_name(server.url())?;
    let admin = admin(server.url()).await?;
    if !confirmed(args, &name, server.url())? {
        say!("not reset");
        return Ok(ExitCode::FAILURE);
    }
    drop_database(&admin, &name).await?;
    create_database(&admin, &name).await?;
    say!("created database {name}");
    let client = connect(server.url())
        .await
        .map_err(|e| format!("connecting to {}: {}", address(server.url()), describe(&e)))?;
    let steps = migrator.up(&client, UpOptions::default()).await?;
    for step in &steps {
        say!(
            "applied {} {} in {} ms",
            step.version,
            step.name,
            step.duration.as_millis()
        );
    }
    if server.origin() == Origin::Local {
        ensure_dev_roles(&client).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The embedded cluster without its database made for the command (`create` would
/// find it made), or the `--database-url` server.
async fn server(settings: &Settings) -> Result<Postgres, Box<dyn std::error::Error>> {
    let server = Postgres::persistent_server(settings).await?;
    if let Some(notice) = server.notice() {
        eprintln!("groundwork: {notice}");
    }
    Ok(server)
}

/// Refuses what `command` would do in production without `--allow-production`, and
/// without `--yes` when nobody is there to ask.
fn refuse_unconfirmed(command: &str, args: &DropArgs) -> Result<(), Box<dyn std::error::Error>> {
    if production() && !args.allow_production {
        return Err(format!(
            "refusing to {command} the database with GROUNDWORK_ENV=production; pass \
             --allow-production if you mean it"
        )
        .into());
    }
    if !args.yes && !std::io::stdin().is_terminal() {
        return Err(format!(
            "refusing to {command} the database without asking, and stdin is not a \
             terminal; pass --yes if you mean it"
        )
        .into());
    }
    Ok(())
}

/// `--yes`, or the answer to a question on the terminal; never for a database the
/// server needs for itself.
fn confirmed(args: &DropArgs, name: &str, url: &str) -> Result<bool, Box<dyn std::error::Error>> {
    if MAINTENANCE_DATABASES.contains(&name) {
        return Err(format!(
            "refusing to drop {name}, which the server needs for itself; name the \
             application's database in the URL"
        )
        .into());
    }
    if args.yes {
        return Ok(true);
    }
    eprint!(
        "Drop database {name} on {} with all its data? [y/N] ",
        address(url)
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// Creates the database `name` unless it exists; returns whether it did.
async fn create_database(
    admin: &tokio_postgres::Client,
    name: &str,
) -> Result<bool, Box<dyn std::error::Error>> {
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .map_err(|e| format!("looking for database {name}: {}", describe(&e)))?
        .is_some();
    if exists {
        return Ok(false);
    }
    admin
        .batch_execute(&format!("CREATE DATABASE {}", quote_ident(name)))
        .await
        .map_err(|e| format!("creating database {name}: {}", describe(&e)))?;
    Ok(true)
}

/// Drops the database `name` if it exists, ending its sessions, and says so. Only after
/// [`confirmed`].
async fn drop_database(
    admin: &tokio_postgres::Client,
    name: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .map_err(|e| format!("looking for database {name}: {}", describe(&e)))?
        .is_some();
    if !exists {
        say!("database {name} does not exist");
        return Ok(());
    }
    admin
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(name)
        ))
        .await
        .map_err(|e| format!("dropping database {name}: {}", describe(&e)))?;
    say!("dropped database {name}");
    Ok(())
}
