//! Personal data encrypted at rest and erasable on request (crypto-shredding).
//!
//! Each person (a *subject*, a user id) has a data key; personal values are encrypted
//! with it in the database (pgcrypto), and data keys are wrapped by a master key that
//! the service holds and sets per transaction with [`set_master_key`]. The database
//! never stores the master key. [`forget_user`] deletes a user's data key: every value
//! encrypted with it, in tables and in event payloads, is unreadable from then on.
//!
//! - Users' phone and tax number: the generated queries `user_phone_set`,
//!   `user_tax_number_set` (which encrypt) and `user_personal_get` (which decrypts) in
//!   `groundwork::queries::identity::users`; `user_login_lookup_by_phone` finds a user
//!   by phone through a keyed blind index, without plaintext.
//! - Events: a [`Personal`] value inside an event's data is sealed when the event is
//!   written; [`reveal_events`] opens the sealed values of events read back, or marks
//!   them erased once their subject was forgotten.
//!
//! | rule | SQLSTATE | error |
//! |---|---|---|
//! | a master key is set where something is encrypted or decrypted | WI001 | [`PersonalDataError::MasterKeyMissing`] |
//! | the master key is 64 hexadecimal digits and the current one | WI002 | [`PersonalDataError::MasterKeyInvalid`] |
//! | an encrypted value is intact and belongs to its subject | WI003 | [`PersonalDataError::Tampered`] |
//! | nothing personal is written for a forgotten subject | WI004 | [`PersonalDataError::Forgotten`] |
//!
//! docs/SECURITY.md ("Personal data") describes the key model, what erasure guarantees
//! and what it cannot.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::Error;
use crate::client::async_::GenericClient;
use crate::error::{Violation, converts_from_driver_errors};
use crate::queries::eventstore::events::Event;

/// SQLSTATE raised when personal data is encrypted or decrypted without a master key
/// in the transaction.
pub const MASTER_KEY_MISSING: &str = "WI001";
/// SQLSTATE raised for a master key that is malformed or not the current one.
pub const MASTER_KEY_INVALID: &str = "WI002";
/// SQLSTATE raised for an encrypted value that fails its integrity check.
pub const TAMPERED: &str = "WI003";
/// SQLSTATE raised when personal data is written for a forgotten subject.
pub const FORGOTTEN: &str = "WI004";

/// The setting the database reads the transaction's master key from.
const MASTER_KEY_SETTING: &str = "groundwork.personal_data_key";

/// The service's master key: 32 bytes, never stored in the database. Its `Debug`
/// output does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey([u8; 32]);

impl MasterKey {
    /// A new random key.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)?;
        Ok(Self(key))
    }

    /// A key from its 64 hexadecimal digits (as kept in a secret store).
    pub fn from_hex(hex_digits: &str) -> Result<Self, hex::FromHexError> {
        let mut key = [0u8; 32];
        hex::decode_to_slice(hex_digits.trim(), &mut key)?;
        Ok(Self(key))
    }

    /// The key's 64 hexadecimal digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// Sets the master key for the rest of the current transaction (call it inside one,
/// for example first in [`crate::tenant::with_tenant`]). The key travels as a bind
/// parameter, so it appears in no statement text, and it is gone when the transaction
/// ends: other sessions and later transactions of a pooled connection never see it.
pub async fn set_master_key<C: GenericClient>(
    client: &C,
    key: &MasterKey,
) -> Result<(), PersonalDataError> {
    client
        .execute(
            "SELECT set_config($1, $2, true)",
            &[&MASTER_KEY_SETTING, &key.to_hex()],
        )
        .await?;
    Ok(())
}

/// A personal value about a subject, inside an event's data.
///
/// Serialized as `{"$personal": <value>, "$subject": "<uuid>"}`, which the database
/// seals (encrypts with the subject's data key) when the event is written. Read back
/// through [`reveal_events`], it is the value again, or `value: None` once the subject
/// was forgotten (`{"$erased": true, "$subject": ...}`): projections see the erasure
/// and rebuild without the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Personal<T> {
    /// Whose data it is.
    pub subject: Uuid,
    /// The value; `None` once the subject was forgotten.
    pub value: Option<T>,
}

impl<T> Personal<T> {
    /// `value` about `subject`.
    pub fn new(subject: Uuid, value: T) -> Self {
        Self {
            subject,
            value: Some(value),
        }
    }
}

impl<T: Serialize> Serialize for Personal<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(2))?;
        match &self.value {
            Some(value) => map.serialize_entry("$personal", value)?,
            None => map.serialize_entry("$erased", &true)?,
        }
        map.serialize_entry("$subject", &self.subject)?;
        map.end()
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Personal<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut map = Map::deserialize(deserializer)?;
        let subject = map
            .remove("$subject")
            .ok_or_else(|| D::Error::missing_field("$subject"))?;
        let subject = Uuid::deserialize(subject).map_err(D::Error::custom)?;
        if let Some(value) = map.remove("$personal") {
            let value = T::deserialize(value).map_err(D::Error::custom)?;
            Ok(Self::new(subject, value))
        } else if map.remove("$erased") == Some(Value::Bool(true)) {
            Ok(Self {
                subject,
                value: None,
            })
        } else if map.contains_key("$sealed") {
            Err(D::Error::custom(
                "a sealed personal value: reveal the events first (identity::reveal_events)",
            ))
        } else {
            Err(D::Error::missing_field("$personal"))
        }
    }
}

/// Opens the sealed personal values of events read back, in one statement for all of
/// them (none when no event holds one): each becomes `{"$personal": ..., "$subject":
/// ...}`, or `{"$erased": true, "$subject": ...}` when its subject was forgotten.
/// Needs the master key when something is sealed ([`set_master_key`]).
pub async fn reveal_events<C: GenericClient>(
    client: &C,
    events: &mut [Event],
) -> Result<(), PersonalDataError> {
    let sealed: Vec<usize> = (0..events.len())
        .filter(|&i| holds_sealed(&events[i].data))
        .collect();
    if sealed.is_empty() {
        return Ok(());
    }
    let data: Vec<&Value> = sealed.iter().map(|&i| &events[i].data).collect();
    let rows = client
        .query(
            "SELECT identity.personal_reveal(d) FROM unnest($1::jsonb[]) WITH ORDINALITY AS t(d, n) ORDER BY n",
            &[&data],
        )
        .await?;
    for (&i, row) in sealed.iter().zip(rows) {
        events[i].data = row.try_get(0)?;
    }
    Ok(())
}

/// Whether a JSON value holds a sealed personal value anywhere.
fn holds_sealed(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.contains_key("$sealed") || map.values().any(holds_sealed),
        Value::Array(items) => items.iter().any(holds_sealed),
        _ => false,
    }
}

/// Erases a user (`identity.forget_user`, for a login role in `groundwork_privacy`):
/// deletes their data key, clears or anonymises the personal columns of their row,
/// deletes their profile and sessions, and records the erasure with `reason`. Returns
/// the erasure's id (the first one's when called again).
pub async fn forget_user<C: GenericClient>(
    client: &C,
    user_id: Uuid,
    reason: &str,
) -> Result<Uuid, PersonalDataError> {
    let row = client
        .query_one("SELECT identity.forget_user($1, $2)", &[&user_id, &reason])
        .await?;
    Ok(row.try_get(0)?)
}

/// Rewraps every data key under `new_key` and makes it the current master key
/// (`identity.personal_rotate_master_key`, for `groundwork_privacy`). The transaction's
/// key must be the current one; no row holding personal values changes. Returns the new
/// key's version.
pub async fn rotate_master_key<C: GenericClient>(
    client: &C,
    new_key: &MasterKey,
) -> Result<i64, PersonalDataError> {
    let row = client
        .query_one(
            "SELECT identity.personal_rotate_master_key($1)",
            &[&new_key.to_hex()],
        )
        .await?;
    Ok(row.try_get(0)?)
}

/// Why an operation on personal data failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersonalDataError {
    /// No master key is set in the transaction (WI001).
    #[error("no master key: {0}")]
    MasterKeyMissing(Box<Violation>),
    /// The master key is malformed or not the current one (WI002).
    #[error("wrong master key: {0}")]
    MasterKeyInvalid(Box<Violation>),
    /// An encrypted value failed its integrity check (WI003).
    #[error("tampered personal data: {0}")]
    Tampered(Box<Violation>),
    /// The subject was forgotten (WI004).
    #[error("forgotten subject: {0}")]
    Forgotten(Box<Violation>),
    /// Anything else.
    #[error(transparent)]
    Database(Error),
}

impl PersonalDataError {
    /// The server's report, if there is one.
    pub fn violation(&self) -> Option<&Violation> {
        match self {
            Self::MasterKeyMissing(v)
            | Self::MasterKeyInvalid(v)
            | Self::Tampered(v)
            | Self::Forgotten(v) => Some(v),
            Self::Database(e) => e.violation(),
        }
    }
}

impl From<Error> for PersonalDataError {
    fn from(error: Error) -> Self {
        let boxed = |v: &Violation| Box::new(v.clone());
        if let Some(v) = error.raised(MASTER_KEY_MISSING) {
            Self::MasterKeyMissing(boxed(v))
        } else if let Some(v) = error.raised(MASTER_KEY_INVALID) {
            Self::MasterKeyInvalid(boxed(v))
        } else if let Some(v) = error.raised(TAMPERED) {
            Self::Tampered(boxed(v))
        } else if let Some(v) = error.raised(FORGOTTEN) {
            Self::Forgotten(boxed(v))
        } else {
            Self::Database(error)
        }
    }
}

converts_from_driver_errors!(PersonalDataError);

impl From<PersonalDataError> for Error {
    fn from(error: PersonalDataError) -> Self {
        match error {
            PersonalDataError::MasterKeyMissing(v)
            | PersonalDataError::MasterKeyInvalid(v)
            | PersonalDataError::Tampered(v)
            | PersonalDataError::Forgotten(v) => Error::Database(v),
            PersonalDataError::Database(e) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_values_serialize_as_the_database_expects_and_read_back_erased() {
        let subject = Uuid::nil();
        let value = serde_json::to_value(Personal::new(subject, "+905551112233")).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"$personal": "+905551112233", "$subject": subject})
        );
        let back: Personal<String> = serde_json::from_value(value).unwrap();
        assert_eq!(back.value.as_deref(), Some("+905551112233"));
        let erased: Personal<String> =
            serde_json::from_value(serde_json::json!({"$erased": true, "$subject": subject}))
                .unwrap();
        assert_eq!(erased.value, None);
        let sealed = serde_json::from_value::<Personal<String>>(
            serde_json::json!({"$sealed": "AQ==", "$subject": subject}),
        );
        assert!(sealed.unwrap_err().to_string().contains("reveal"));
    }

    #[test]
    fn master_keys_do_not_print() {
        let key = MasterKey::from_hex(&"ab".repeat(32)).unwrap();
        assert_eq!(format!("{key:?}"), "MasterKey(..)");
        assert_eq!(key.to_hex(), "ab".repeat(32));
        assert!(MasterKey::from_hex("abc").is_err());
    }
}
