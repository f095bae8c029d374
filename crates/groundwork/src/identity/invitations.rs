//! Inviting members by a single-use token.

use std::time::Duration;

use uuid::Uuid;

use super::IdentityError;
use super::secret::{new_token, token_hash};
use crate::client::async_::GenericClient;
use crate::queries::identity::organization_members::{
    OrganizationMember, organization_member_accept_invitation, organization_member_invite,
};
use crate::types::identity::MemberRole;

/// An open invitation and its token (shown once, stored as a hash).
#[derive(Clone, Debug)]
pub struct Invitation {
    /// The membership row, in state `invited`.
    pub member: OrganizationMember,
    /// The token to send to the invitee.
    pub token: String,
}

/// What accepting an invitation made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptedInvitation {
    /// The membership.
    pub member_id: Uuid,
    /// The organization joined.
    pub organization_id: Uuid,
    /// The role granted.
    pub role: MemberRole,
}

/// Invites `email` to the current organization with `role`, valid for `ttl`.
pub async fn invite_member<C: GenericClient>(
    client: &C,
    organization_id: Uuid,
    email: &str,
    role: MemberRole,
    ttl: Duration,
    invited_by: Option<Uuid>,
) -> Result<Invitation, IdentityError> {
    let (token, hash) = new_token()?;
    let member = organization_member_invite()
        .bind(
            client,
            &organization_id,
            &None::<Uuid>,
            &role,
            &serde_json::json!({}),
            &Some(email),
            &hash,
            &ttl.as_secs_f64(),
            &invited_by,
        )
        .one()
        .await?;
    Ok(Invitation { member, token })
}

/// Accepts an invitation for the user `client`'s transaction acts for (a
/// [`Tenant::user`](crate::tenant::Tenant::user) context): only the invitee, signed in,
/// can turn an invitation into a membership. `None` when the token is unknown, used
/// or expired, or the user or the organization is not active.
pub async fn accept_invitation<C: GenericClient>(
    client: &C,
    token: &str,
) -> Result<Option<AcceptedInvitation>, IdentityError> {
    let row = organization_member_accept_invitation()
        .bind(client, &token_hash(token))
        .opt()
        .await?;
    Ok(row.map(|row| AcceptedInvitation {
        member_id: row.member_id,
        organization_id: row.organization_id,
        role: row.role,
    }))
}
