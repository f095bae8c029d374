//! A first program, as a service runs: connected as a login role in `groundwork_app`,
//! every transaction acting for a tenant. It signs a user up, creates an organization
//! with that user as its owner, and lists the organization's members.
//!
//! ```sh
//! cargo run -- migrate up
//! DATABASE_URL=$(cargo run -q -- db url) cargo run -p groundwork --example first_program
//! ```
//!
//! `groundwork db url` prints the embedded cluster's development application role;
//! row-level security applies to it as to a service.

use groundwork::client::Params;
use groundwork::queries::identity::member_directory::member_directory_list;
use groundwork::queries::identity::organization_members::{
    OrganizationMemberAddParams, organization_member_add,
};
use groundwork::queries::identity::organizations::{OrganizationCreateParams, organization_create};
use groundwork::queries::identity::users::{UserCreateParams, user_create};
use groundwork::tenant::{Tenant, with_tenant};
use groundwork::types::identity::MemberRole;
use serde_json::json;
use uuid::Uuid;

#[tokio::main]
async fn main() -> Result<(), groundwork::Error> {
    let pool = groundwork::pool::from_env()?;
    let mut client = pool.get().await?;
    let user_id = Uuid::new_v4();
    let organization_id = Uuid::new_v4();
    let label = user_id.simple().to_string()[..8].to_owned();

    // A user signs itself up: the transaction acts for that user.
    let email = format!("ada-{label}@example.com");
    let username = format!("ada-{label}");
    with_tenant(&mut client, Tenant::user(user_id), async |tx| {
        user_create()
            .params(
                tx,
                &UserCreateParams {
                    id: Some(user_id),
                    email: email.as_str(),
                    username: username.as_str(),
                    password_hash: None::<&str>,
                    first_name: Some("Ada"),
                    last_name: None::<&str>,
                },
            )
            .one()
            .await?;
        Ok(())
    })
    .await?;

    // The user creates an organization and joins it as its owner: the transaction
    // acts for both, so row-level security lets exactly these rows in.
    let tenant = Tenant::new(organization_id, user_id);
    let slug = format!("acme-{label}");
    with_tenant(&mut client, tenant, async |tx| {
        organization_create()
            .params(
                tx,
                &OrganizationCreateParams {
                    id: Some(organization_id),
                    name: "Acme",
                    slug: slug.as_str(),
                    settings: json!({}),
                    metadata: json!({}),
                    created_by: Some(user_id),
                },
            )
            .one()
            .await?;
        organization_member_add()
            .params(
                tx,
                &OrganizationMemberAddParams {
                    user_id,
                    role: MemberRole::Owner,
                    permissions: json!({}),
                },
            )
            .one()
            .await?;
        Ok(())
    })
    .await?;

    // Any member reads the organization's directory in a transaction of its tenant.
    let members = with_tenant(&mut client, tenant, async |tx| {
        Ok(member_directory_list()
            .bind(tx, &None::<Uuid>, &10)
            .all()
            .await?)
    })
    .await?;
    println!("organization {organization_id} (acme-{label})");
    for member in &members {
        println!(
            "member {} <{}> {:?}",
            member.username, member.email, member.role
        );
    }
    Ok(())
}
