//! The identity schema's rules and domain operations, exercised through the generated
//! queries and `groundwork::identity` on a real server, as services connect: the
//! application role with the tenant (and user) a request acts for, the auth role for
//! logins. Every rejected write is checked for its typed error, its constraint name,
//! and that nothing was written.

use std::time::Duration;

use groundwork::Error;
use groundwork::identity::{
    self, LoginOutcome, accept_invitation, authenticate_api_key, rotate_session,
};
use groundwork::queries::identity::{
    api_keys, organization_members, organizations, sessions, user_profiles, users,
};
use groundwork::tenant::Tenant;
use groundwork::types::identity::{MemberRole, MemberStatus, UserStatus};
use groundwork_testing::fixtures::{
    ApiKeyFixture, InvitationFixture, OrganizationFixture, SessionFixture, UserFixture,
};
use groundwork_testing::{DbRole, TestDb};
use serde_json::json;
use uuid::Uuid;

use crate::common;

/// A user signing itself up.
async fn user(db: &TestDb, email: &str, username: &str) -> Result<users::User, Error> {
    db.try_insert(UserFixture::default().email(email).username(username))
        .await
}

/// An organization created under its own context.
async fn org(db: &TestDb, slug: &str) -> Result<organizations::Organization, Error> {
    db.try_insert(OrganizationFixture::default().slug(slug))
        .await
}

fn hash32(seed: u8) -> Vec<u8> {
    vec![seed; 32]
}

#[tokio::test]
async fn a_malformed_email_is_rejected_by_its_check() {
    let db = TestDb::new().await;
    for email in [
        "not-an-email",
        "a@b",
        "two@@example.com",
        "spaces in@example.com",
    ] {
        let err = user(&db, email, "ada").await.unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{email}: {err:?}");
        assert_eq!(err.constraint(), Some("users_email_format"), "{email}");
    }
    assert_eq!(db.count("identity.users").await, 0);
}

#[tokio::test]
async fn usernames_must_be_3_to_50_characters() {
    let db = TestDb::new().await;
    for username in ["ab".to_owned(), "x".repeat(51)] {
        let err = user(&db, "ada@example.com", &username).await.unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err:?}");
        assert_eq!(err.constraint(), Some("users_username_length"));
    }
    assert_eq!(db.count("identity.users").await, 0);
    user(&db, "ada@example.com", "abc").await.unwrap();
    user(&db, "bob@example.com", &"y".repeat(50)).await.unwrap();
}

#[tokio::test]
async fn email_is_unique_regardless_of_case_and_username_is_unique() {
    let db = TestDb::new().await;
    let ada = db
        .try_insert(
            UserFixture::default()
                .email("Ada@Example.com")
                .username("ada"),
        )
        .await
        .unwrap();
    let err = user(&db, "ada@example.COM", "ada2").await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert_eq!(err.constraint(), Some("users_email_key"));
    let err = user(&db, "other@example.com", "ada").await.unwrap_err();
    assert_eq!(err.constraint(), Some("users_username_key"));
    assert_eq!(db.count("identity.users").await, 1);
    let found = db
        .with_tenant(DbRole::App, Tenant::user(ada.id), async |tx| {
            Ok(users::user_get_by_email()
                .bind(tx, &"ADA@example.com")
                .one()
                .await?)
        })
        .await
        .unwrap();
    assert_eq!(found.id, ada.id);
    assert_eq!(found.status, UserStatus::Active);
}

#[tokio::test]
async fn a_password_column_only_takes_argon2id_hashes() {
    let db = TestDb::new().await;
    let err = db
        .try_insert(
            UserFixture::default()
                .email("ada@example.com")
                .username("ada")
                .password_hash("hunter2"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.constraint(), Some("users_password_hash_format"));
    let hash = identity::hash_password("correct horse").unwrap();
    assert!(hash.starts_with("$argon2id$"));
    let ada = db
        .try_insert(
            UserFixture::default()
                .email("ada@example.com")
                .username("ada")
                .password_hash(hash.as_str()),
        )
        .await
        .unwrap();
    assert!(ada.password_changed_at.is_some());
    assert!(identity::verify_password(&hash, "correct horse").unwrap());
    assert!(!identity::verify_password(&hash, "wrong").unwrap());
}

#[tokio::test]
async fn updates_keep_unset_fields_and_stamp_updated_at() {
    let db = TestDb::new().await;
    let ada = user(&db, "ada@example.com", "ada").await.unwrap();
    let updated = db
        .with_tenant(DbRole::App, Tenant::user(ada.id), async |tx| {
            Ok(users::user_update()
                .bind(
                    tx,
                    &None::<&str>,
                    &Some("Lovelace"),
                    &None::<&str>,
                    &None::<serde_json::Value>,
                    &Some(groundwork::types::identity::Locale::Tr),
                    &None::<&str>,
                    &None::<&str>,
                    &None::<&str>,
                    &None::<Uuid>,
                    &ada.id,
                )
                .one()
                .await?)
        })
        .await
        .unwrap();
    assert_eq!(updated.first_name.as_deref(), Some("Test"));
    assert_eq!(updated.last_name.as_deref(), Some("Lovelace"));
    assert_eq!(updated.locale, groundwork::types::identity::Locale::Tr);
    assert!(updated.updated_at >= ada.updated_at);
    assert_eq!(updated.created_at, ada.created_at);
    // A user cannot change its own status; administration (the owner) can.
    let err = db
        .with_tenant(DbRole::App, Tenant::user(ada.id), async |tx| {
            Ok(users::user_status_set()
                .bind(tx, &UserStatus::Active, &ada.id)
                .one()
                .await?)
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PermissionDenied(_)), "{err:?}");
    let owner = db.pool(DbRole::Owner).get().await.unwrap();
    let suspended = users::user_status_set()
        .bind(&owner, &UserStatus::Suspended, &ada.id)
        .one()
        .await
        .unwrap();
    assert_eq!(suspended.status, UserStatus::Suspended);
}

#[tokio::test]
async fn api_keys_list_by_keyset_without_gaps_or_repeats() {
    let db = TestDb::new().await;
    let [acme] = db.tenants().await;
    let org = acme.organization_id;
    for i in 0..25 {
        db.insert(
            ApiKeyFixture::new(Tenant::organization(org))
                .name(format!("key-{i}"))
                .scopes(["read"]),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<Uuid> = None;
    loop {
        let page = db
            .with_tenant(DbRole::App, acme.tenant(), async |tx| {
                Ok(api_keys::api_key_list()
                    .bind(tx, &cursor, &10)
                    .all()
                    .await?)
            })
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        cursor = Some(last.id);
        seen.extend(page.into_iter().map(|k| k.name));
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
    org(&db, "acme").await.unwrap();
    let err = org(&db, "acme").await.unwrap_err();
    assert_eq!(err.constraint(), Some("organizations_slug_key"));
    let err = org(&db, "Not A Slug").await.unwrap_err();
    assert_eq!(err.constraint(), Some("organizations_slug_format"));
    assert_eq!(db.count("identity.organizations").await, 1);
}

#[tokio::test]
async fn memberships_are_unique_per_pair_and_need_real_rows() {
    let db = TestDb::new().await;
    let acme = org(&db, "acme").await.unwrap();
    let ada = user(&db, "ada@example.com", "ada").await.unwrap();
    // Acting for (organization, user), the application adds that user.
    let add = |organization_id: Uuid, user_id: Uuid| {
        let db = &db;
        async move {
            db.with_tenant(
                DbRole::App,
                Tenant::new(organization_id, user_id),
                async |tx| {
                    Ok(organization_members::organization_member_add()
                        .bind(tx, &user_id, &MemberRole::Admin, &json!({"billing": true}))
                        .one()
                        .await?)
                },
            )
            .await
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
    let err = db
        .with_tenant(DbRole::App, Tenant::new(acme.id, ada.id), async |tx| {
            tx.execute(
                "INSERT INTO identity.organization_members (organization_id, status, invitation_email) \
                 VALUES ($1, 'invited', 'x@example.com')",
                &[&acme.id],
            )
            .await?;
            Ok(())
        })
        .await
        .unwrap_err();
    assert_eq!(err.constraint(), Some("organization_members_state"));
    assert_eq!(db.count("identity.organization_members").await, 1);
}

#[tokio::test]
async fn profiles_are_one_per_user_and_cascade_with_it() {
    let db = TestDb::new().await;
    let ada = user(&db, "ada@example.com", "ada").await.unwrap();
    let upsert = |bio: &'static str, url: &'static str| {
        let db = &db;
        async move {
            db.with_tenant(DbRole::App, Tenant::user(ada.id), async |tx| {
                Ok(user_profiles::user_profile_upsert()
                    .bind(
                        tx,
                        &ada.id,
                        &Some(bio),
                        &None::<&str>,
                        &Some(url),
                        &json!({}),
                        &json!({"theme": "dark"}),
                    )
                    .one()
                    .await?)
            })
            .await
        }
    };
    let first = upsert("first", "https://ada.dev").await.unwrap();
    let second = upsert("second", "https://ada.dev").await.unwrap();
    assert_eq!(first.id, second.id, "one profile per user");
    assert_eq!(second.bio.as_deref(), Some("second"));
    let err = upsert("third", "javascript:alert(1)").await.unwrap_err();
    assert_eq!(err.constraint(), Some("user_profiles_website_url_format"));
    // A user deletes its own account; the profile goes with it.
    db.with_tenant(DbRole::App, Tenant::user(ada.id), async |tx| {
        tx.execute("DELETE FROM identity.users WHERE id = $1", &[&ada.id])
            .await?;
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(db.count("identity.user_profiles").await, 0);
}

#[tokio::test]
async fn token_hashes_are_unique_and_sha256_sized() {
    let db = TestDb::new().await;
    let [acme] = db.tenants().await;
    let ada = user(&db, "ada@example.com", "ada").await.unwrap();
    let session = |hash: Vec<u8>| {
        let db = &db;
        async move {
            db.with_tenant(DbRole::App, Tenant::user(ada.id), async |tx| {
                Ok(sessions::session_create()
                    .bind(
                        tx,
                        &ada.id,
                        &hash,
                        &None::<&str>,
                        &None::<std::net::IpAddr>,
                        &None::<&str>,
                        &3600.0,
                    )
                    .one()
                    .await?)
            })
            .await
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
        let db = &db;
        async move {
            db.with_tenant(DbRole::App, acme.tenant(), async |tx| {
                Ok(api_keys::api_key_create()
                    .bind(
                        tx,
                        &None::<Uuid>,
                        &"ci",
                        &prefix,
                        &hash,
                        &&["read"][..],
                        &None::<i32>,
                        &None::<chrono::DateTime<chrono::FixedOffset>>,
                    )
                    .one()
                    .await?)
            })
            .await
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
    assert_eq!(db.count("identity.sessions").await, 1);
    assert_eq!(db.count("identity.api_keys").await, 1);
}

/// Invites `email` to `tenant`'s organization as its owner user.
async fn invite(
    db: &TestDb,
    tenant: groundwork_testing::TestTenant,
    email: &str,
    role: MemberRole,
    ttl: Duration,
) -> identity::Invitation {
    db.insert(
        InvitationFixture::new(tenant.tenant())
            .email(email)
            .role(role)
            .valid_for(ttl)
            .invited_by(tenant.user_id),
    )
    .await
}

/// Accepts `token` as the signed-in user `user_id`.
async fn accept(db: &TestDb, user_id: Uuid, token: &str) -> Option<identity::AcceptedInvitation> {
    db.with_tenant(DbRole::App, Tenant::user(user_id), async |tx| {
        accept_invitation(tx, token).await.map_err(common::database)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn an_invitation_is_accepted_once_by_its_token() {
    let db = TestDb::new().await;
    let [acme] = db.tenants().await;
    let ada = user(&db, "ada@example.com", "ada").await.unwrap();
    let invitation = invite(
        &db,
        acme,
        "ada@example.com",
        MemberRole::Member,
        Duration::from_secs(3600),
    )
    .await;
    assert_eq!(invitation.member.status, MemberStatus::Invited);
    assert!(accept(&db, ada.id, "not-the-token").await.is_none());
    let accepted = accept(&db, ada.id, &invitation.token)
        .await
        .expect("the token is valid");
    assert_eq!(accepted.organization_id, acme.organization_id);
    assert_eq!(accepted.role, MemberRole::Member);
    let member = db
        .with_tenant(DbRole::App, acme.tenant(), async |tx| {
            Ok(organization_members::organization_member_get()
                .bind(tx, &accepted.member_id)
                .one()
                .await?)
        })
        .await
        .unwrap();
    assert_eq!(
        (member.status, member.user_id),
        (MemberStatus::Active, Some(ada.id))
    );
    assert!(
        accept(&db, ada.id, &invitation.token).await.is_none(),
        "a used token does not work again"
    );
    // An expired invitation cannot be accepted.
    let bob = user(&db, "bob@example.com", "bob").await.unwrap();
    let late = invite(
        &db,
        acme,
        "bob@example.com",
        MemberRole::Viewer,
        Duration::from_millis(1),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(accept(&db, bob.id, &late.token).await.is_none());
}

#[tokio::test]
async fn sessions_rotate_revoke_and_expire() {
    let db = TestDb::new().await;
    let ada = user(&db, "ada@example.com", "ada").await.unwrap();
    let hour = Duration::from_secs(3600);
    let create = |ttl: Duration| {
        db.insert(
            SessionFixture::new(ada.id)
                .valid_for(ttl)
                .device("device-1")
                .ip("10.1.2.3".parse().unwrap())
                .user_agent("test"),
        )
    };
    // Rotation happens before the user is known: no tenant context.
    let anonymous = db.pool(DbRole::App).get().await.unwrap();
    let issued = create(hour).await;
    let rotated = rotate_session(&anonymous, &issued.refresh_token, hour)
        .await
        .unwrap()
        .expect("a fresh token rotates");
    assert_eq!(rotated.session_id, issued.session.id);
    assert_ne!(rotated.refresh_token, issued.refresh_token);
    assert!(
        rotate_session(&anonymous, &issued.refresh_token, hour)
            .await
            .unwrap()
            .is_none(),
        "the old token stopped working"
    );
    let again = rotate_session(&anonymous, &rotated.refresh_token, hour)
        .await
        .unwrap()
        .unwrap();

    // Revoking one session ends its token.
    db.with_tenant(DbRole::App, Tenant::user(ada.id), async |tx| {
        Ok(sessions::session_revoke()
            .bind(tx, &issued.session.id)
            .await?)
    })
    .await
    .unwrap();
    assert!(
        rotate_session(&anonymous, &again.refresh_token, hour)
            .await
            .unwrap()
            .is_none()
    );

    // Revoking all of a user's sessions.
    let a = create(hour).await;
    let b = create(hour).await;
    let active = db
        .with_tenant(DbRole::App, Tenant::user(ada.id), async |tx| {
            Ok(sessions::session_list_active_by_user()
                .bind(tx, &ada.id)
                .all()
                .await?)
        })
        .await
        .unwrap();
    assert_eq!(active.len(), 2);
    let revoked = db
        .with_tenant(DbRole::App, Tenant::user(ada.id), async |tx| {
            Ok(sessions::session_revoke_all_for_user()
                .bind(tx, &ada.id)
                .await?)
        })
        .await
        .unwrap();
    assert_eq!(revoked, 2);
    for token in [a.refresh_token, b.refresh_token] {
        assert!(
            rotate_session(&anonymous, &token, hour)
                .await
                .unwrap()
                .is_none()
        );
    }

    // Expired sessions cannot rotate and are cleaned up (maintenance, as the owner).
    let short = create(Duration::from_millis(1)).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        rotate_session(&anonymous, &short.refresh_token, hour)
            .await
            .unwrap()
            .is_none()
    );
    let owner = db.pool(DbRole::Owner).get().await.unwrap();
    let deleted = sessions::session_delete_expired()
        .bind(&owner, &0.0)
        .await
        .unwrap();
    assert_eq!(deleted, 4, "three revoked and one expired");
    assert_eq!(db.count("identity.sessions").await, 0);
}

#[tokio::test]
async fn api_keys_authenticate_only_while_live() {
    let db = TestDb::new().await;
    let [acme] = db.tenants().await;
    let org = acme.organization_id;
    let issue = |name: &'static str, expires: Option<chrono::DateTime<chrono::FixedOffset>>| {
        let key = ApiKeyFixture::new(Tenant::organization(org))
            .name(name)
            .scopes(["read", "write"]);
        db.insert(match expires {
            Some(at) => key.expires_at(at),
            None => key,
        })
    };
    // Authentication happens before the tenant is known: no context.
    let anonymous = db.pool(DbRole::App).get().await.unwrap();
    let issued = issue("ci", None).await;
    assert!(issued.plaintext.starts_with(&issued.key.key_prefix));
    assert_eq!(issued.key.key_prefix.len(), 11);
    for _ in 0..2 {
        let principal = authenticate_api_key(&anonymous, &issued.plaintext)
            .await
            .unwrap()
            .expect("a live key authenticates");
        assert_eq!(principal.organization_id, org);
        assert_eq!(principal.scopes, ["read", "write"]);
    }
    let key = db
        .with_tenant(DbRole::App, acme.tenant(), async |tx| {
            Ok(api_keys::api_key_get()
                .bind(tx, &issued.key.id)
                .one()
                .await?)
        })
        .await
        .unwrap();
    assert_eq!(key.usage_count, 2);
    assert!(key.last_used_at.is_some());

    // Wrong keys: same prefix with another secret, a malformed string, nothing.
    let mut wrong = issued.plaintext.clone();
    wrong.replace_range(70.., "000000");
    for presented in [wrong.as_str(), "gw_nope", ""] {
        assert!(
            authenticate_api_key(&anonymous, presented)
                .await
                .unwrap()
                .is_none()
        );
    }

    // Revoked.
    db.with_tenant(DbRole::App, acme.tenant(), async |tx| {
        Ok(api_keys::api_key_revoke().bind(tx, &issued.key.id).await?)
    })
    .await
    .unwrap();
    assert!(
        authenticate_api_key(&anonymous, &issued.plaintext)
            .await
            .unwrap()
            .is_none()
    );

    // Expired.
    let soon = chrono::Utc::now().fixed_offset() + chrono::Duration::milliseconds(50);
    let expiring = issue("short", Some(soon)).await;
    assert!(
        authenticate_api_key(&anonymous, &expiring.plaintext)
            .await
            .unwrap()
            .is_some()
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        authenticate_api_key(&anonymous, &expiring.plaintext)
            .await
            .unwrap()
            .is_none()
    );
}

/// The lock-out policy is the database's (5 failures, 15 minutes by default); the
/// auth role logs in.
#[tokio::test]
async fn repeated_failed_logins_lock_the_account_until_the_window_ends() {
    let db = TestDb::new().await;
    let hash = identity::hash_password("correct horse").unwrap();
    let ada = db
        .try_insert(
            UserFixture::default()
                .email("ada@example.com")
                .username("ada")
                .password_hash(hash.as_str()),
        )
        .await
        .unwrap();
    let auth = db.pool(DbRole::Auth).get().await.unwrap();
    let attempt = |password: &'static str| {
        let auth = &auth;
        async move {
            identity::login(auth, "ADA@example.com", password, None)
                .await
                .unwrap()
        }
    };
    for _ in 0..4 {
        assert_eq!(attempt("wrong").await, LoginOutcome::InvalidCredentials);
    }
    let LoginOutcome::Locked { until } = attempt("wrong").await else {
        panic!("the fifth failure locks");
    };
    let lockout = until - chrono::Utc::now().fixed_offset();
    assert!(
        lockout > chrono::Duration::minutes(14) && lockout <= chrono::Duration::minutes(15),
        "{lockout}"
    );
    assert!(
        matches!(attempt("correct horse").await, LoginOutcome::Locked { .. }),
        "the right password does not open a locked account"
    );
    // The lock ends (set-up: the owner moves it into the past).
    let owner = db.pool(DbRole::Owner).get().await.unwrap();
    owner
        .execute(
            "UPDATE identity.users SET locked_until = now() - interval '1 second' WHERE id = $1",
            &[&ada.id],
        )
        .await
        .unwrap();
    // The first failure after a lock starts a new count, and does not lock again.
    assert_eq!(attempt("wrong").await, LoginOutcome::InvalidCredentials);
    assert_eq!(
        attempt("correct horse").await,
        LoginOutcome::Authenticated { user_id: ada.id }
    );
    let after = db
        .with_tenant(DbRole::App, Tenant::user(ada.id), async |tx| {
            Ok(users::user_get().bind(tx, &ada.id).one().await?)
        })
        .await
        .unwrap();
    assert_eq!(after.failed_login_attempts, 0);
    assert!(after.locked_until.is_none());
    assert!(after.last_login_at.is_some());
    assert_eq!(
        identity::login(&auth, "nobody@example.com", "x", None)
            .await
            .unwrap(),
        LoginOutcome::InvalidCredentials
    );
}

#[tokio::test]
async fn no_column_or_row_holds_a_plaintext_secret() {
    let db = TestDb::new().await;
    let owner = db.pool(DbRole::Owner).get().await.unwrap();
    // The catalog: every secret-looking column is a hash (or the key's display prefix).
    let columns: Vec<(String, String, String)> = owner
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
        // Not credentials: a key's display prefix, client-chosen idempotency keys and
        // an outbox ordering key.
        let identifier = matches!(
            (table.as_str(), column.as_str()),
            ("identity.api_keys", "key_prefix")
                | ("messaging.idempotency_keys", "key")
                | ("messaging.jobs", "idempotency_key")
                | ("sales.orders", "idempotency_key")
                // A payment provider's reference to a stored method: it charges
                // nothing without the merchant's own provider credentials.
                | ("payments.payment_methods", "token")
                | ("messaging.outbox_messages", "partition_key")
                // A JWT's id claim: public, the signature is the credential.
                | ("identity.sessions", "access_token_jti")
                // Where a file is in object storage.
                | ("cad.models", "thumbnail_key")
                | ("cad.model_versions", "storage_key")
        );
        assert!(
            hashed || identifier,
            "{table}.{column} ({data_type}) may hold a secret"
        );
    }

    // The rows: issue one of each secret through the application and look for it
    // anywhere in the schema.
    let [acme] = db.tenants().await;
    let hash = identity::hash_password("correct horse battery").unwrap();
    let ada = db
        .try_insert(
            UserFixture::default()
                .email("ada@example.com")
                .username("ada")
                .password_hash(hash.as_str()),
        )
        .await
        .unwrap();
    let org = acme.organization_id;
    let key = db
        .insert(ApiKeyFixture::new(Tenant::organization(org)).scopes(["read"]))
        .await;
    let session = db
        .insert(SessionFixture::new(ada.id).valid_for(Duration::from_secs(60)))
        .await;
    let invitation = invite(
        &db,
        acme,
        "bob@example.com",
        MemberRole::Member,
        Duration::from_secs(60),
    )
    .await;
    let dump: String = owner
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
