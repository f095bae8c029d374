//! Inviting members by a single-use token.

use std::time::Duration;

use uuid::Uuid;

use super::IdentityError;
use super::secret::{new_token, token_hash};
use crate::client::async_::{GenericClient, Params};
use crate::queries::identity::organization_members::{
    OrganizationMember, OrganizationMemberInviteParams, organization_member_accept_invitation,
    organization_member_invite,
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

/// An invitation to send: [`NewInvitation::new`] and the setters for what differs
/// from the defaults (valid for 7 days, no inviter recorded). The database caps the
/// lifetime at `identity.auth_policy.invitation_lifetime`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewInvitation {
    /// Where the token is sent.
    pub email: String,
    /// The role the invitee gets.
    pub role: MemberRole,
    /// How long the token works.
    pub valid_for: Duration,
    /// The member who invites.
    pub invited_by: Option<Uuid>,
}

impl NewInvitation {
    /// An invitation of `email` as `role`.
    pub fn new(email: impl Into<String>, role: MemberRole) -> Self {
        Self {
            email: email.into(),
            role,
            valid_for: Duration::from_secs(7 * 24 * 3600),
            invited_by: None,
        }
    }

    /// Sets how long the token works.
    pub fn valid_for(mut self, ttl: Duration) -> Self {
        self.valid_for = ttl;
        self
    }

    /// Records who invites.
    pub fn invited_by(mut self, user_id: Uuid) -> Self {
        self.invited_by = Some(user_id);
        self
    }
}

/// Sends `invitation` to join the organization `client`'s transaction acts for.
pub async fn invite_member<C: GenericClient>(
    client: &C,
    invitation: &NewInvitation,
) -> Result<Invitation, IdentityError> {
    let (token, hash) = new_token()?;
    let member = organization_member_invite()
        .params(
            client,
            &OrganizationMemberInviteParams {
                user_id: None,
                role: invitation.role,
                permissions: serde_json::json!({}),
                invitation_email: Some(invitation.email.as_str()),
                invitation_token_hash: hash,
                valid_seconds: invitation.valid_for.as_secs_f64(),
                invited_by: invitation.invited_by,
            },
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
