//! The development login roles: what local work connects as, so that it meets
//! row-level security the way a service does instead of bypassing it as the superuser.

use groundwork_support::connect::with_credentials;
use tokio_postgres::Client;

use super::ProvisionError;

/// The password of every [`DevRole`]. It is public on purpose: the roles are for a
/// developer's own cluster, whose server trusts local connections anyway. Never make
/// them on a server that anyone else can reach.
pub const DEV_ROLE_PASSWORD: &str = "groundwork_dev";

/// A login role made for local work once the migrations have made its group.
///
/// The embedded cluster makes them by itself ([`Postgres::persistent`]); any other
/// server only when asked ([`ensure_dev_roles`]).
///
/// [`Postgres::persistent`]: crate::Postgres::persistent
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DevRole {
    /// `groundwork_dev_app`, a member of `groundwork_app`: reads and writes under
    /// row-level security, as a service does.
    App,
    /// `groundwork_dev_readonly`, a member of `groundwork_readonly`.
    Readonly,
}

impl DevRole {
    /// Every development role.
    pub const ALL: [Self; 2] = [Self::App, Self::Readonly];

    /// The login role's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::App => "groundwork_dev_app",
            Self::Readonly => "groundwork_dev_readonly",
        }
    }

    /// The group role it is a member of, made by the migrations.
    pub fn group(self) -> &'static str {
        match self {
            Self::App => "groundwork_app",
            Self::Readonly => "groundwork_readonly",
        }
    }

    /// `server_url` (any database on the server) connecting as this role.
    pub fn url(self, server_url: &str) -> String {
        with_credentials(server_url, self.name(), DEV_ROLE_PASSWORD)
    }
}

/// Whether a server has the development roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DevRoleState {
    /// Their groups do not exist: no database on the server has been migrated.
    NoGroups,
    /// The groups exist, but a development role does not, cannot log in or is not a
    /// member of its group.
    Missing,
    /// Every development role can log in and inherits its group's privileges.
    Ready,
}

/// Whether the server `client` is connected to has the development roles.
pub async fn dev_role_state(client: &Client) -> Result<DevRoleState, ProvisionError> {
    let logins: Vec<&str> = DevRole::ALL.iter().map(|r| r.name()).collect();
    let groups: Vec<&str> = DevRole::ALL.iter().map(|r| r.group()).collect();
    let row = client
        .query_one(
            "SELECT count(g.oid) = cardinality($2::text[]),
                    count(*) FILTER (WHERE r.rolcanlogin AND pg_has_role(r.oid, g.oid, 'USAGE'))
                        = cardinality($2::text[])
             FROM unnest($1::text[], $2::text[]) AS d(login, grp)
             LEFT JOIN pg_roles g ON g.rolname = d.grp
             LEFT JOIN pg_roles r ON r.rolname = d.login",
            &[&logins, &groups],
        )
        .await
        .map_err(ProvisionError::DevRoles)?;
    Ok(match (row.get(0), row.get(1)) {
        (false, _) => DevRoleState::NoGroups,
        (true, false) => DevRoleState::Missing,
        (true, true) => DevRoleState::Ready,
    })
}

/// Makes the development roles on the server `client` is connected to, if their groups
/// exist, with the password [`DEV_ROLE_PASSWORD`]; returns the state afterwards
/// ([`DevRoleState::NoGroups`] or [`DevRoleState::Ready`]). Idempotent: a server that
/// has them is only read. Needs `CREATEROLE`.
pub async fn ensure_dev_roles(client: &Client) -> Result<DevRoleState, ProvisionError> {
    let state = dev_role_state(client).await?;
    if state != DevRoleState::Missing {
        return Ok(state);
    }
    let mut sql = String::new();
    for role in DevRole::ALL {
        let (login, group) = (role.name(), role.group());
        sql.push_str(&format!(
            "DO $$ BEGIN
                 IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{login}') THEN
                     CREATE ROLE {login} LOGIN PASSWORD '{DEV_ROLE_PASSWORD}';
                 END IF;
             END $$;
             ALTER ROLE {login} LOGIN INHERIT;
             GRANT {group} TO {login};\n"
        ));
    }
    match client.batch_execute(&sql).await {
        Ok(()) => Ok(DevRoleState::Ready),
        // Another command made them at the same time.
        Err(e) => match dev_role_state(client).await? {
            DevRoleState::Ready => Ok(DevRoleState::Ready),
            _ => Err(ProvisionError::DevRoles(e)),
        },
    }
}
