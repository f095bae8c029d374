//! `db url` and `db psql`: the application database as the development application
//! role, the read-only role or the owner.

use std::ffi::OsString;
use std::process::ExitCode;

use groundwork_provision::{
    Binaries, DEV_ROLE_PASSWORD, DevRole, DevRoleState, Origin, Postgres, Settings, dev_role_state,
    ensure_dev_roles,
};
use groundwork_support::connect::{connect, describe, without_password};

use super::database::production;
use super::inspect::{DatabaseState, address, database_name, inspect};
use super::{Role, RoleArgs};
use crate::cli::server;

pub(super) async fn print(
    settings: &Settings,
    args: &RoleArgs,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let mut server = server(settings).await?;
    let url = role_url(&server, args).await?;
    // A URL is only worth printing while the server runs.
    server.keep_running();
    say!("{url}");
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn psql(
    settings: &Settings,
    args: &RoleArgs,
    psql_args: Vec<OsString>,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let server = server(settings).await?;
    let url = role_url(&server, args).await?;
    let program = tokio::task::spawn_blocking(|| Binaries::find_program("psql")).await??;
    // The password goes in the environment: a command line is readable by every user.
    let (url, password) = without_password(&url);
    let mut command = tokio::process::Command::new(&program);
    command.arg(format!("--dbname={url}")).args(psql_args);
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    // Ctrl-C is psql's (it cancels the running query); this process only waits, and
    // stops the embedded cluster afterwards if it started it.
    let _interrupts = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let status = command
        .status()
        .await
        .map_err(|e| format!("running {}: {e}", program.display()))?;
    drop(server);
    Ok(status
        .code()
        .and_then(|code| u8::try_from(code).ok())
        .map_or(ExitCode::FAILURE, ExitCode::from))
}

/// The URL of `server`'s application database as the role `args` asks for: the
/// server's own URL for the owner; for the development roles, once the database is
/// migrated and the server has them.
async fn role_url(
    server: &Postgres,
    args: &RoleArgs,
) -> Result<String, Box<dyn std::error::Error>> {
    let owner = server.url();
    let role = match args.role {
        Role::Owner => return Ok(owner.to_owned()),
        Role::App => DevRole::App,
        Role::Readonly => DevRole::Readonly,
    };
    match inspect(owner).await {
        state if state.is_migrated() => {}
        DatabaseState::Unreachable(reason) | DatabaseState::Refused(reason) => {
            return Err(format!("connecting to {}: {reason}", address(owner)).into());
        }
        _ => {
            return Err(format!(
                "the database {} is not migrated yet, so there is no {} role ({}) to \
                 connect as: run `groundwork migrate up` first (`--role owner` connects as \
                 the superuser)",
                database_name(owner)?,
                match role {
                    DevRole::Readonly => "read-only",
                    _ => "application",
                },
                role.group()
            )
            .into());
        }
    }
    let client = connect(owner)
        .await
        .map_err(|e| format!("connecting to {}: {}", address(owner), describe(&e)))?;
    // The embedded cluster has them already; make sure, it is ours.
    let state = if server.origin() == Origin::Local {
        ensure_dev_roles(&client).await?
    } else if args.create_dev_roles {
        if production() {
            return Err(
                "refusing to make the development roles, whose password is public, \
                        with GROUNDWORK_ENV=production"
                    .into(),
            );
        }
        ensure_dev_roles(&client).await?
    } else {
        dev_role_state(&client).await?
    };
    if state != DevRoleState::Ready {
        return Err(format!(
            "{} has no development roles ({}, {}): pass --create-dev-roles to make them \
             (password {DEV_ROLE_PASSWORD}; for a development server only), or connect as \
             a login role of your own in {}",
            address(owner),
            DevRole::App.name(),
            DevRole::Readonly.name(),
            role.group()
        )
        .into());
    }
    Ok(role.url(owner))
}
