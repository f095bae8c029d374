//! The identity schema's rules and domain operations, exercised through the generated
//! queries and `groundwork::identity` on a real server. Every rejected write is
//! checked for its typed error, its constraint name, and that nothing was written.

use std::time::Duration;

use groundwork::Error;
use groundwork::identity::{
    self, LoginOutcome, LoginPolicy, accept_invitation, authenticate_api_key, create_session,
    invite_member, issue_api_key, rotate_session,
};
use groundwork::queries::identity::{
    api_keys, organization_members, organizations, sessions, user_profiles, users,
};
use groundwork::testing::TestDb;
use groundwork::types::identity::{MemberRole, MemberStatus, UserStatus};
use serde_json::json;
use uuid::Uuid;

type Client = deadpool_postgres::Object;

async fn user(client: &Client, email: &str, username: &str) -> Result<users::User, Error> {
    user_with(client, email, username, None, None).await
}

async fn user_with(
    client: &Client,
    email: &str,
    username: &str,
    password_hash: Option<&str>,
    phone: Option<&str>,
) -> Result<users::User, Error> {
    users::user_create()
        .bind(
            client,
            &None::<Uuid>,
            &email,
            &username,
            &password_hash,
            &Some("Ada"),
            &None::<&str>,
            &phone,
        )
        .one()
        .await
        .map_err(Error::from)
}

async fn org(client: &Client, slug: &str) -> Result<organizations::Organization, Error> {
    organizations::organization_create()
        .bind(
            client,
            &None::<Uuid>,
            &"Acme",
            &slug,
            &json!({}),
            &json!({}),
            &None::<Uuid>,
        )
        .one()
        .await
        .map_err(Error::from)
}

async fn count(client: &Client, table: &str) -> i64 {
    client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

fn hash32(seed: u8) -> Vec<u8> {
    vec![seed; 32]
}

#[tokio::test]
async fn a_malformed_email_is_rejected_by_its_check() {
    let db = TestDb::new().await;
    let client = db.pool().get().await.unwrap();
    for email in [
        "not-an-email",
        "a@b",
        "two@@example.com",
        "spaces in@example.com",
    ] {
        let err = user(&client, email, "ada").await.unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{email}: {err:?}");
        assert_eq!(err.constraint(), Some("users_email_format"), "{email}");
    }
    assert_eq!(count(&client, "identity.users").await, 0);
}

#[tokio::test]
async fn usernames_must_be_3_to_50_characters() {
    let db = TestDb::new().await;
    let client = db.pool().get().await.unwrap();
    for username in ["ab".to_owned(), "x".repeat(51)] {
        let err = user(&client, "ada@example.com", &username)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err:?}");
        assert_eq!(err.constraint(), Some("users_username_length"));
    }
    assert_eq!(count(&client, "identity.users").await, 0);
    user(&client, "ada@example.com", "abc").await.unwrap();
    user(&client, "bob@example.com", &"y".repeat(50))
        .await
        .unwrap();
}

#[tokio::test]
async fn email_is_unique_regardless_of_case_and_username_and_phone_are_unique() {
    let db = TestDb::new().await;
    let client = db.pool().get().await.unwrap();
    let ada = user_with(
        &client,
        "Ada@Example.com",
        "ada",
        None,
        Some("+905551112233"),
    )
    .await
    .unwrap();
    let err = user(&client, "ada@example.COM", "ada2").await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert_eq!(err.constraint(), Some("users_email_key"));
    let err = user(&client, "other@example.com", "ada").await.unwrap_err();
    assert_eq!(err.constraint(), Some("users_username_key"));
    let err = user_with(
        &client,
        "p@example.com",
        "phoney",
        None,
        Some("+905551112233"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)));
    assert_eq!(err.constraint(), Some("users_phone_key"));
    let err = user_with(&client, "q@example.com", "badphone", None, Some("0555 111"))
        .await
        .unwrap_err();
    assert_eq!(err.constraint(), Some("users_phone_format"));
    assert_eq!(count(&client, "identity.users").await, 1);
    let found = users::user_get_by_email()
        .bind(&client, &"ADA@example.com")
        .one()
        .await
        .unwrap();
    assert_eq!(found.id, ada.id);
    assert_eq!(found.status, UserStatus::Active);
}

#[tokio::test]
async fn a_password_column_only_takes_argon2id_hashes() {
    let db = TestDb::new().await;
    let client = db.pool().get().await.unwrap();
    let err = user_with(&client, "ada@example.com", "ada", Some("hunter2"), None)
        .await
        .unwrap_err();
    assert_eq!(err.constraint(), Some("users_password_hash_format"));
    let hash = identity::hash_password("correct horse").unwrap();
    assert!(hash.starts_with("$argon2id$"));
    let ada = user_with(&client, "ada@example.com", "ada", Some(&hash), None)
        .await
        .unwrap();
    assert!(ada.password_changed_at.is_some());
    assert!(identity::verify_password(&hash, "correct horse").unwrap());
    assert!(!identity::verify_password(&hash, "wrong").unwrap());
}

#[tokio::test]
async fn updates_keep_unset_fields_and_stamp_updated_at() {
    let db = TestDb::new().await;
    let client = db.pool().get().await.unwrap();
    let ada = user(&client, "ada@example.com", "ada").await.unwrap();
    let updated = users::user_update()
        .bind(
            &client,
            &None::<&str>,
            &Some("Lovelace"),
            &None::<&str>,
            &Some(UserStatus::Suspended),
            &None::<serde_json::Value>,
            &Some("tr-TR"),
            &None::<&str>,
            &None::<Uuid>,
            &ada.id,
        )
        .one()
        .await
        .unwrap();
    assert_eq!(updated.first_name.as_deref(), Some("Ada"));
    assert_eq!(updated.last_name.as_deref(), Some("Lovelace"));
    assert_eq!(updated.status, UserStatus::Suspended);
    assert_eq!(updated.locale, "tr-TR");
    assert!(updated.updated_at >= ada.updated_at);
    assert_eq!(updated.created_at, ada.created_at);
}

#[tokio::test]
async fn organizations_list_by_keyset_without_gaps_or_repeats() {
    let db = TestDb::new().await;
    let client = db.pool().get().await.unwrap();
    for i in 0..25 {
        org(&client, &format!("org-{i}")).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor: Option<(chrono::DateTime<chrono::FixedOffset>, Uuid)> = None;
    loop {
        let page = organizations::organization_list()
            .bind(&client, &cursor.map(|c| c.0), &cursor.map(|c| c.1), &10)
            .all()
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        cursor = Some((last.created_at, last.id));
        seen.extend(page.into_iter().map(|o| o.slug));
    }
    assert_eq!(seen.len(), 25);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 25);
}

#[tokio::test]
async fn organization_slugs_are_unique_and_well_formed() {
    let db = TestDb::new().await;
    let client = db.pool().get().await.unwrap();
    org(&client, "acme").await.unwrap();
    let err = org(&client, "acme").await.unwrap_err();
    assert_eq!(err.constraint(), Some("organizations_slug_key"));
    let err = org(&client, "Not A Slug").await.unwrap_err();
    assert_eq!(err.constraint(), Some("organizations_slug_format"));
    assert_eq!(count(&client, "identity.organizations").await, 1);
}

#[tokio::test]
async fn memberships_are_unique_per_pair_and_need_real_rows() {
    let db = TestDb::new().await;
    let client = db.pool().get().await.unwrap();
    let acme = org(&client, "acme").await.unwrap();
    let ada = user(&client, "ada@example.com", "ada").await.unwrap();
    let add = |organization_id: Uuid, user_id: Uuid| {
        let client = &client;
        async move {
            organization_members::organization_member_add()
                .bind(
                    client,
                    &organization_id,
                    &user_id,
                    &MemberRole::Admin,
                    &json!({"billing": true}),
                )
                .one()
                .await
                .map_err(Error::from)
        }
    };
    let member = add(acme.id, ada.id).await.unwrap();
    assert_eq!(member.status, MemberStatus::Active);
    let err = add(acme.id, ada.id).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)));
    assert_eq!(
        err.constraint(),
        Some("organization_members_organization_id_user_id_key")
    );
    let err = add(Uuid::new_v4(), ada.id).await.unwrap_err();
    assert!(matches!(err, Error::MissingReference(_)), "{err:?}");
    assert_eq!(
        err.constraint(),
        Some("organization_members_organization_id_fkey")
    );
    let err = add(acme.id, Uuid::new_v4()).await.unwrap_err();
    assert_eq!(err.constraint(), Some("organization_members_user_id_fkey"));
    // An invitation must carry its hashed token and expiry.
    let err = client
        .execute(
            "INSERT INTO identity.organization_members (organization_id, status, invitation_email) \
             VALUES ($1, 'invited', 'x@example.com')",
            &[&acme.id],
        )
        .await
        .map_err(Error::from)
        .unwrap_err();
    assert_eq!(err.constraint(), Some("organization_members_state"));
    assert_eq!(count(&client, "identity.organization_members").await, 1);
}

#[tokio::test]
async fn profiles_are_one_per_user_and_cascade_with_it() {
    let db = TestDb::new().await;
    let client = db.pool().get().await.unwrap();
    let ada = user(&client, "ada@example.com", "ada").await.unwrap();
    let upsert = |bio: &'static str, url: &'static str| {
        let client = &client;
        async move {
            user_profiles::user_profile_upsert()
                .bind(
                    client,
                    &ada.id,
                    &Some(bio),
                    &None::<&str>,
                    &Some(url),
                    &json!({}),
                    &json!({"theme": "dark"}),
                )
                .one()
                .await
                .map_err(Error::from)
        }
    };
    let first = upsert("first", "https://ada.dev").await.unwrap();
    let second = upsert("second", "https://ada.dev").await.unwrap();
    assert_eq!(first.id, second.id, "one profile per user");
    assert_eq!(second.bio.as_deref(), Some("second"));
    let err = upsert("third", "javascript:alert(1)").await.unwrap_err();
    assert_eq!(err.constraint(), Some("user_profiles_website_url_format"));
    client
        .execute("DELETE FROM identity.users WHERE id = $1", &[&ada.id])
        .await
        .unwrap();
    assert_eq!(count(&client, "identity.user_profiles").await, 0);
}

#[tokio::test]
async fn token_hashes_are_unique_and_sha256_sized() {
    let db = TestDb::new().await;
    let client = db.pool().get().await.unwrap();
    let acme = org(&client, "acme").await.unwrap();
    let ada = user(&client, "ada@example.com", "ada").await.unwrap();
    let session = |hash: Vec<u8>| {
        let client = &client;
        async move {
            sessions::session_create()
                .bind(
                    client,
                    &ada.id,
                    &hash,
                    &None::<&str>,
                    &None::<std::net::IpAddr>,
                    &None::<&str>,
                    &3600.0,
                )
                .one()
                .await
                .map_err(Error::from)
        }
    };
    session(hash32(1)).await.unwrap();
    assert_eq!(
        session(hash32(1)).await.unwrap_err().constraint(),
        Some("sessions_refresh_token_hash_key")
    );
    assert_eq!(
        session(vec![1; 8]).await.unwrap_err().constraint(),
        Some("sessions_refresh_token_hash_length")
    );
    let key = |prefix: &'static str, hash: Vec<u8>| {
        let client = &client;
        async move {
            api_keys::api_key_create()
                .bind(
                    client,
                    &acme.id,
                    &None::<Uuid>,
                    &"ci",
                    &prefix,
                    &hash,
                    &&["read"][..],
                    &None::<i32>,
                    &None::<chrono::DateTime<chrono::FixedOffset>>,
                )
                .one()
                .await
                .map_err(Error::from)
        }
    };
    key("gw_abcdefgh", hash32(2)).await.unwrap();
    assert_eq!(
        key("gw_zzzzzzzz", hash32(2))
            .await
            .unwrap_err()
            .constraint(),
        Some("api_keys_key_hash_key")
    );
    assert_eq!(
        key("live_abc", hash32(3)).await.unwrap_err().constraint(),
        Some("api_keys_key_prefix_format")
    );
    assert_eq!(count(&client, "identity.sessions").await, 1);
    assert_eq!(count(&client, "identity.api_keys").await, 1);
}

#[tokio::test]
async fn an_invitation_is_accepted_once_by_its_token() {
    let db = TestDb::new().await;
    let client = db.pool().get().await.unwrap();
    let acme = org(&client, "acme").await.unwrap();
    let ada = user(&client, "ada@example.com", "ada").await.unwrap();
    let invitation = invite_member(
        &client,
        acme.id,
        "ada@example.com",
        MemberRole::Member,
        Duration::from_secs(3600),
        None,
    )
    .await
    .unwrap();
    assert_eq!(invitation.member.status, MemberStatus::Invited);
    assert!(
        accept_invitation(&client, "not-the-token", ada.id)
            .await
            .unwrap()
            .is_none()
    );
    let accepted = accept_invitation(&client, &invitation.token, ada.id)
        .await
        .unwrap()
        .expect("the token is valid");
    assert_eq!(accepted.organization_id, acme.id);
    assert_eq!(accepted.role, MemberRole::Member);
    let member = organization_members::organization_member_get()
        .bind(&client, &accepted.member_id)
        .one()
        .await
        .unwrap();
    assert_eq!(
        (member.status, member.user_id),
        (MemberStatus::Active, Some(ada.id))
    );
    assert!(
        accept_invitation(&client, &invitation.token, ada.id)
            .await
            .unwrap()
            .is_none(),
        "a used token does not work again"
    );
    // An expired invitation cannot be accepted.
    let bob = user(&client, "bob@example.com", "bob").await.unwrap();
    let late = invite_member(
        &client,
        acme.id,
        "bob@example.com",
        MemberRole::Viewer,
        Duration::from_millis(1),
        None,
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        accept_invitation(&client, &late.token, bob.id)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn sessions_rotate_revoke_and_expire() {
    let db = TestDb::new().await;
    let client = db.pool().get().await.unwrap();
    let ada = user(&client, "ada@example.com", "ada").await.unwrap();
    let hour = Duration::from_secs(3600);
    let issued = create_session(
        &client,
        ada.id,
        hour,
        Some("device-1"),
        Some("10.1.2.3".parse().unwrap()),
        Some("test"),
    )
    .await
    .unwrap();
    let rotated = rotate_session(&client, &issued.refresh_token, hour)
        .await
        .unwrap()
        .expect("a fresh token rotates");
    assert_eq!(rotated.session_id, issued.session.id);
    assert_ne!(rotated.refresh_token, issued.refresh_token);
    assert!(
        rotate_session(&client, &issued.refresh_token, hour)
            .await
            .unwrap()
            .is_none(),
        "the old token stopped working"
    );
    let again = rotate_session(&client, &rotated.refresh_token, hour)
        .await
        .unwrap()
        .unwrap();

    // Revoking one session ends its token.
    sessions::session_revoke()
        .bind(&client, &issued.session.id)
        .await
        .unwrap();
    assert!(
        rotate_session(&client, &again.refresh_token, hour)
            .await
            .unwrap()
            .is_none()
    );

    // Revoking all of a user's sessions.
    let a = create_session(&client, ada.id, hour, None, None, None)
        .await
        .unwrap();
    let b = create_session(&client, ada.id, hour, None, None, None)
        .await
        .unwrap();
    let active = sessions::session_list_active_by_user()
        .bind(&client, &ada.id)
        .all()
        .await
        .unwrap();
    assert_eq!(active.len(), 2);
    let revoked = sessions::session_revoke_all_for_user()
        .bind(&client, &ada.id)
        .await
        .unwrap();
    assert_eq!(revoked, 2);
    for token in [a.refresh_token, b.refresh_token] {
        assert!(
            rotate_session(&client, &token, hour)
                .await
                .unwrap()
                .is_none()
        );
    }

    // Expired sessions cannot rotate and are cleaned up.
    let short = create_session(&client, ada.id, Duration::from_millis(1), None, None, None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        rotate_session(&client, &short.refresh_token, hour)
            .await
            .unwrap()
            .is_none()
    );
    let deleted = sessions::session_delete_expired()
        .bind(&client, &0.0)
        .await
        .unwrap();
    assert_eq!(deleted, 4, "three revoked and one expired");
    assert_eq!(count(&client, "identity.sessions").await, 0);
}

#[tokio::test]
async fn api_keys_authenticate_only_while_live() {
    let db = TestDb::new().await;
    let client = db.pool().get().await.unwrap();
    let acme = org(&client, "acme").await.unwrap();
    let issued = issue_api_key(&client, acme.id, "ci", &["read", "write"], None, None)
        .await
        .unwrap();
    assert!(issued.plaintext.starts_with(&issued.key.key_prefix));
    assert_eq!(issued.key.key_prefix.len(), 11);
    for _ in 0..2 {
        let principal = authenticate_api_key(&client, &issued.plaintext)
            .await
            .unwrap()
            .expect("a live key authenticates");
        assert_eq!(principal.organization_id, acme.id);
        assert_eq!(principal.scopes, ["read", "write"]);
    }
    let key = api_keys::api_key_get()
        .bind(&client, &issued.key.id)
        .one()
        .await
        .unwrap();
    assert_eq!(key.usage_count, 2);
    assert!(key.last_used_at.is_some());

    // Wrong keys: same prefix with another secret, a malformed string, nothing.
    let mut wrong = issued.plaintext.clone();
    wrong.replace_range(70.., "000000");
    for presented in [wrong.as_str(), "gw_nope", ""] {
        assert!(
            authenticate_api_key(&client, presented)
                .await
                .unwrap()
                .is_none()
        );
    }

    // Revoked.
    api_keys::api_key_revoke()
        .bind(&client, &issued.key.id)
        .await
        .unwrap();
    assert!(
        authenticate_api_key(&client, &issued.plaintext)
            .await
            .unwrap()
            .is_none()
    );

    // Expired.
    let soon = chrono::Utc::now().fixed_offset() + chrono::Duration::milliseconds(50);
    let expiring = issue_api_key(&client, acme.id, "short", &["read"], Some(soon), None)
        .await
        .unwrap();
    assert!(
        authenticate_api_key(&client, &expiring.plaintext)
            .await
            .unwrap()
            .is_some()
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        authenticate_api_key(&client, &expiring.plaintext)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn repeated_failed_logins_lock_the_account_until_the_window_ends() {
    let db = TestDb::new().await;
    let client = db.pool().get().await.unwrap();
    let hash = identity::hash_password("correct horse").unwrap();
    let ada = user_with(&client, "ada@example.com", "ada", Some(&hash), None)
        .await
        .unwrap();
    let policy = LoginPolicy {
        max_attempts: 3,
        lockout: Duration::from_secs(1),
    };
    let attempt = |password: &'static str| {
        let client = &client;
        async move {
            identity::login(client, "ADA@example.com", password, None, policy)
                .await
                .unwrap()
        }
    };
    assert_eq!(attempt("wrong").await, LoginOutcome::InvalidCredentials);
    assert_eq!(attempt("wrong").await, LoginOutcome::InvalidCredentials);
    assert!(
        matches!(attempt("wrong").await, LoginOutcome::Locked { .. }),
        "third failure locks"
    );
    assert!(
        matches!(attempt("correct horse").await, LoginOutcome::Locked { .. }),
        "the right password does not open a locked account"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        attempt("correct horse").await,
        LoginOutcome::Authenticated { user_id: ada.id }
    );
    let after = users::user_get()
        .bind(&client, &ada.id)
        .one()
        .await
        .unwrap();
    assert_eq!(after.failed_login_attempts, 0);
    assert!(after.locked_until.is_none());
    assert!(after.last_login_at.is_some());
    assert_eq!(
        identity::login(&client, "nobody@example.com", "x", None, policy)
            .await
            .unwrap(),
        LoginOutcome::InvalidCredentials
    );
}

#[tokio::test]
async fn no_column_or_row_holds_a_plaintext_secret() {
    let db = TestDb::new().await;
    let client = db.pool().get().await.unwrap();
    // The catalog: every secret-looking column is a hash (or the key's display prefix).
    let columns: Vec<(String, String, String)> = client
        .query(
            "SELECT table_schema || '.' || table_name, column_name, data_type \
             FROM information_schema.columns \
             WHERE table_schema NOT IN ('pg_catalog', 'information_schema') \
               AND column_name ~ '(token|secret|password|key)' \
               AND data_type IN ('text', 'bytea', 'character varying', 'jsonb', 'ARRAY') \
               AND table_name <> 'schema_migrations'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert!(!columns.is_empty());
    for (table, column, data_type) in &columns {
        let hashed =
            column.ends_with("_hash") && (data_type == "bytea" || column == "password_hash");
        // Not credentials: a key's display prefix, a client-chosen idempotency key and
        // an outbox ordering key.
        let identifier = matches!(
            (table.as_str(), column.as_str()),
            ("identity.api_keys", "key_prefix")
                | ("messaging.idempotency_keys", "key")
                | ("messaging.outbox_messages", "partition_key")
        );
        assert!(
            hashed || identifier,
            "{table}.{column} ({data_type}) may hold a secret"
        );
    }

    // The rows: issue one of each secret and look for it anywhere in the schema.
    let acme = org(&client, "acme").await.unwrap();
    let hash = identity::hash_password("correct horse battery").unwrap();
    let ada = user_with(&client, "ada@example.com", "ada", Some(&hash), None)
        .await
        .unwrap();
    let key = issue_api_key(&client, acme.id, "ci", &["read"], None, None)
        .await
        .unwrap();
    let session = create_session(&client, ada.id, Duration::from_secs(60), None, None, None)
        .await
        .unwrap();
    let invitation = invite_member(
        &client,
        acme.id,
        "bob@example.com",
        MemberRole::Member,
        Duration::from_secs(60),
        None,
    )
    .await
    .unwrap();
    let dump: String = client
        .query_one(
            "SELECT concat_ws(' ', \
                (SELECT string_agg(t::text, ' ') FROM identity.users t), \
                (SELECT string_agg(t::text, ' ') FROM identity.api_keys t), \
                (SELECT string_agg(t::text, ' ') FROM identity.sessions t), \
                (SELECT string_agg(t::text, ' ') FROM identity.organization_members t))",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    for secret in [
        key.plaintext.as_str(),
        &key.plaintext[12..],
        session.refresh_token.as_str(),
        invitation.token.as_str(),
        "correct horse battery",
    ] {
        assert!(!dump.contains(secret), "a plaintext secret is stored");
    }
    assert!(
        dump.contains(&key.key.key_prefix),
        "the display prefix is stored"
    );
}
