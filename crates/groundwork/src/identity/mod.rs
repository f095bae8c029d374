//! Identity operations that need more than one query, hashing or random tokens.
//!
//! Secrets never reach the database: passwords are hashed here with argon2id, and
//! API keys, refresh tokens and invitation tokens are random strings of which only
//! the SHA-256 is stored (plus an 11-character display prefix for API keys). The
//! plaintext is returned once, to be handed to its owner.
//!
//! Personal data (phone and tax numbers, personal values in events) is encrypted with
//! a per-user key and erasable: see [`set_master_key`], [`Personal`] and [`forget_user`].

mod api_keys;
mod error;
mod invitations;
mod login;
mod password;
mod personal;
mod secret;
mod sessions;

pub use api_keys::{ApiKeyPrincipal, IssuedApiKey, NewApiKey, authenticate_api_key, issue_api_key};
pub use error::IdentityError;
pub use invitations::{
    AcceptedInvitation, Invitation, NewInvitation, accept_invitation, invite_member,
};
pub use login::{LoginOutcome, login};
pub use password::{hash_password, verify_password};
pub use personal::{
    FORGOTTEN, MASTER_KEY_INVALID, MASTER_KEY_MISSING, MasterKey, Personal, PersonalDataError,
    TAMPERED, forget_user, reveal_events, rotate_master_key, set_master_key,
};
pub use secret::token_hash;
pub use sessions::{IssuedSession, NewSession, RotatedSession, create_session, rotate_session};
