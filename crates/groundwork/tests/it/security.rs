//! Attacks on tenant isolation, run the way a service connects: a login role in
//! `groundwork_app` (or `groundwork_readonly`) with a tenant set per transaction.
//! Each test performs one attack and checks the exact outcome and that nothing was
//! written; the catalog tests at the end hold every future migration to the same
//! rules.

use std::time::Duration;

use futures::StreamExt;
use groundwork::Error;
use groundwork::eventstore::{
    AppendCondition, EventStoreError, NewEvent, Query, StreamAppend, append, append_to_stream,
    read, read_stream,
};
use groundwork::identity::{authenticate_api_key, hash_password, rotate_session, token_hash};
use groundwork::outbox::{NewMessage, NotifyPublisher, Relay, RelayConfig, enqueue};
use groundwork::queries::eventstore::subscriptions::subscription_channel;
use groundwork::queries::identity::{member_directory, organization_members, users};
use groundwork::tenant::{Tenant, begin};
use groundwork::types::identity::{MemberRole, MemberStatus};
use groundwork::types::messaging::OutboxStatus;
use groundwork_testing::fixtures::{ApiKeyFixture, InvitationFixture, SessionFixture, UserFixture};
use groundwork_testing::{DbRole, TestDb, TestTenant};
use serde_json::json;
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, NoTls, Notification};
use uuid::Uuid;

use crate::common;

/// Runs `sql` as `role` acting for `tenant`; the error, if any.
async fn run_sql(db: &TestDb, role: DbRole, tenant: Tenant, sql: &str) -> Result<(), Error> {
    db.with_tenant(role, tenant, async |tx| Ok(tx.batch_execute(sql).await?))
        .await
}

fn assert_denied(result: Result<(), Error>, what: &str) {
    let err = result.expect_err(what);
    assert!(matches!(err, Error::PermissionDenied(_)), "{what}: {err:?}");
}

/// Signs a user up through the application role; returns its id.
async fn sign_up(db: &TestDb, email: &str, password_hash: Option<&str>) -> Uuid {
    let user = UserFixture::default().email(email);
    let user = match password_hash {
        Some(hash) => user.password_hash(hash),
        None => user,
    };
    db.insert(user).await.id
}

/// The owner sets up a state the test needs (a lock, a suspension, an archive).
async fn owner_sql(db: &TestDb, sql: &str, id: Uuid) {
    db.pool(DbRole::Owner)
        .get()
        .await
        .unwrap()
        .execute(sql, &[&id])
        .await
        .unwrap();
}

#[tokio::test]
async fn the_application_and_readonly_roles_read_events_of_their_tenant_only() {
    let db = TestDb::new().await;
    let [a, b] = db.tenants().await;
    db.with_tenant(DbRole::App, a.tenant(), async |tx| {
        Ok(append(
            tx,
            &[NewEvent::new("Opened", json!({})).tagged(["x"])],
            None,
        )
        .await?)
    })
    .await
    .unwrap();
    for role in [DbRole::App, DbRole::Readonly] {
        let events = db
            .with_tenant(role, a.tenant(), async |tx| {
                Ok(read(tx, &Query::all(), 0, None).await?)
            })
            .await
            .unwrap();
        assert_eq!(events.len(), 1, "{role:?}");
        let theirs = db
            .with_tenant(role, b.tenant(), async |tx| {
                Ok(read(tx, &Query::all(), 0, None).await?)
            })
            .await
            .unwrap();
        assert!(theirs.is_empty(), "{role:?} of another tenant");
        let nobodys = db
            .with_tenant(role, Tenant::default(), async |tx| {
                Ok(read(tx, &Query::all(), 0, None).await?)
            })
            .await
            .unwrap();
        assert!(nobodys.is_empty(), "{role:?} without a tenant");
    }
}

#[tokio::test]
async fn streams_are_per_tenant() {
    let db = TestDb::new().await;
    let [a, b] = db.tenants().await;
    let stream = Uuid::new_v4();
    let append_as = |t: TestTenant, aggregate: &'static str, expected: i32| {
        let db = &db;
        async move {
            let mut client = db.pool(DbRole::App).get().await.unwrap();
            let tx = begin(&mut client, t.tenant()).await.unwrap();
            let outcome = append_to_stream(
                &tx,
                &StreamAppend {
                    aggregate_type: aggregate,
                    aggregate_id: stream,
                    expected_version: expected,
                    events: &[NewEvent::new("ItemAdded", json!({}))],
                },
            )
            .await;
            if outcome.is_ok() {
                tx.commit().await.unwrap();
            }
            outcome
        }
    };
    append_as(a, "cart", 0).await.unwrap();
    append_as(a, "cart", 1).await.unwrap();
    // B learns nothing of A's stream: its own is empty.
    let err = append_as(b, "cart", 2).await.unwrap_err();
    assert!(
        matches!(
            err,
            EventStoreError::VersionConflict {
                expected: 2,
                actual: 0,
                ..
            }
        ),
        "{err}"
    );
    // B's first event is its own stream's version 1, and A's stream goes on at 3.
    append_as(b, "cart", 0).await.unwrap();
    append_as(a, "cart", 2).await.unwrap();
    for (t, versions) in [(a, vec![1, 2, 3]), (b, vec![1])] {
        let events = db
            .with_tenant(DbRole::App, t.tenant(), async |tx| {
                Ok(read_stream(tx, stream, 0).await?)
            })
            .await
            .unwrap();
        assert!(
            events
                .iter()
                .all(|e| e.organization_id == t.organization_id)
        );
        let seen: Vec<i32> = events.iter().filter_map(|e| e.aggregate_version).collect();
        assert_eq!(seen, versions);
    }
    // A stream keeps its aggregate type.
    let err = append_as(a, "order", 3).await.unwrap_err();
    let EventStoreError::Database(err) = err else {
        panic!("{err}")
    };
    assert_eq!(err.code(), Some(&SqlState::INVALID_PARAMETER_VALUE));
    assert_eq!(db.count("eventstore.events").await, 4);
}

#[tokio::test]
async fn a_tenant_cannot_attach_another_tenants_user_or_read_user_secrets() {
    let db = TestDb::new().await;
    let [a, b] = db.tenants().await;
    let ada = a.user_id;
    let before = db.count("identity.organization_members").await;

    // B attaching A's user to its organization is refused.
    let err = db
        .with_tenant(DbRole::App, b.tenant(), async |tx| {
            Ok(organization_members::organization_member_add()
                .bind(tx, &ada, &MemberRole::Member, &json!({}))
                .one()
                .await?)
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PermissionDenied(_)), "{err:?}");
    assert!(
        err.violation()
            .unwrap()
            .message
            .contains("row-level security")
    );
    for status in ["active", "suspended"] {
        assert_denied(
            run_sql(
                &db,
                DbRole::App,
                b.tenant(),
                &format!(
                    "INSERT INTO identity.organization_members (organization_id, user_id, status) \
                     VALUES ('{}', '{ada}', '{status}')",
                    b.organization_id
                ),
            )
            .await,
            status,
        );
    }
    assert_eq!(db.count("identity.organization_members").await, before);

    // B may invite A's user by id; the invitation shows nothing of her, and B cannot
    // turn it into a membership or re-point its own membership at her.
    run_sql(
        &db,
        DbRole::App,
        b.tenant(),
        &format!(
            "INSERT INTO identity.organization_members \
                 (organization_id, user_id, status, invitation_token_hash, invitation_expires_at) \
             VALUES ('{}', '{ada}', 'invited', decode(repeat('ab', 32), 'hex'), now() + interval '1 day')",
            b.organization_id
        ),
    )
    .await
    .unwrap();
    let (seen, directory) = db
        .with_tenant(DbRole::App, b.tenant(), async |tx| {
            let seen = users::user_get().bind(tx, &ada).opt().await?;
            let directory = member_directory::member_directory_list()
                .bind(tx, &None::<Uuid>, &100)
                .all()
                .await?;
            Ok((seen, directory))
        })
        .await
        .unwrap();
    assert!(seen.is_none());
    assert_eq!(
        directory.iter().map(|m| m.user_id).collect::<Vec<_>>(),
        [b.user_id]
    );
    for attack in [
        "UPDATE identity.organization_members SET status = 'active' WHERE status = 'invited'",
        "UPDATE identity.organization_members SET user_id = (SELECT user_id FROM identity.organization_members WHERE status = 'invited')",
        "SELECT password_hash, phone_blind, tax_number_blind FROM identity.users",
    ] {
        assert_denied(run_sql(&db, DbRole::App, b.tenant(), attack).await, attack);
    }

    // Nobody reads a password hash through the application roles, not even their own.
    for role in [DbRole::App, DbRole::Readonly] {
        assert_denied(
            run_sql(
                &db,
                role,
                a.tenant(),
                "SELECT password_hash FROM identity.users",
            )
            .await,
            "own password hash",
        );
    }

    // A fellow member, joined by invitation, is seen through the directory: names and
    // email, never phone, tax number or hash; the users table shows only oneself.
    let carol = sign_up(&db, "carol@example.com", None).await;
    let invitation = db
        .insert(
            InvitationFixture::new(a.tenant())
                .email("carol@example.com")
                .invited_by(a.user_id),
        )
        .await;
    db.with_tenant(DbRole::App, Tenant::user(carol), async |tx| {
        groundwork::identity::accept_invitation(tx, &invitation.token)
            .await
            .map_err(common::database)
    })
    .await
    .unwrap()
    .expect("carol accepts");
    let (directory, carol_row) = db
        .with_tenant(DbRole::App, a.tenant(), async |tx| {
            let directory = member_directory::member_directory_list()
                .bind(tx, &None::<Uuid>, &100)
                .all()
                .await?;
            Ok((directory, users::user_get().bind(tx, &carol).opt().await?))
        })
        .await
        .unwrap();
    let mut emails: Vec<&str> = directory.iter().map(|m| m.email.as_str()).collect();
    emails.sort();
    assert_eq!(emails.len(), 2);
    assert!(emails.contains(&"carol@example.com"));
    assert!(carol_row.is_none());
    let err = run_sql(
        &db,
        DbRole::App,
        a.tenant(),
        "SELECT phone FROM identity.member_directory",
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_COLUMN));
}

#[tokio::test]
async fn login_functions_belong_to_the_auth_role_and_apply_the_database_policy() {
    let db = TestDb::new().await;
    let hash = hash_password("correct horse").unwrap();
    let ada = sign_up(&db, "ada@example.com", Some(&hash)).await;
    let nobody = Tenant::default();
    for (role, sql) in [
        (
            DbRole::App,
            "SELECT * FROM identity.user_login_lookup('ada@example.com')",
        ),
        (
            DbRole::Readonly,
            "SELECT * FROM identity.user_login_lookup('ada@example.com')",
        ),
        (
            DbRole::App,
            &format!("SELECT * FROM identity.user_login_failed('{ada}')"),
        ),
        (
            DbRole::App,
            &format!("SELECT identity.user_login_succeeded('{ada}', NULL)"),
        ),
    ] {
        assert_denied(run_sql(&db, role, nobody, sql).await, sql);
    }
    // The caller no longer chooses the lock-out rules.
    let err = run_sql(
        &db,
        DbRole::Auth,
        nobody,
        &format!("SELECT * FROM identity.user_login_failed('{ada}', 1000000, interval '0')"),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_FUNCTION));

    let auth = db.pool(DbRole::Auth).get().await.unwrap();
    let lookup = || async {
        users::user_login_lookup()
            .bind(&auth, &"ada@example.com")
            .one()
            .await
            .unwrap()
    };
    assert_eq!(lookup().await.password_hash.as_deref(), Some(hash.as_str()));
    // The database's policy: the fifth failure locks for 15 minutes.
    let mut last = None;
    for _ in 0..5 {
        last = users::user_login_failed()
            .bind(&auth, &ada)
            .opt()
            .await
            .unwrap();
    }
    let locked = last.unwrap();
    assert_eq!(locked.failed_login_attempts, 5);
    let until = locked.locked_until.expect("locked");
    // A locked account: no hash to check, and a "success" neither counts nor unlocks.
    assert_eq!(lookup().await.password_hash, None);
    let recorded = users::user_login_succeeded()
        .bind(&auth, &ada, &None::<std::net::IpAddr>)
        .one()
        .await
        .unwrap();
    assert!(!recorded);
    let still = users::user_login_failed()
        .bind(&auth, &ada)
        .one()
        .await
        .unwrap();
    assert_eq!(
        (still.failed_login_attempts, still.locked_until),
        (5, Some(until))
    );
    // A suspended account is treated the same way.
    owner_sql(
        &db,
        "UPDATE identity.users SET locked_until = NULL, status = 'suspended' WHERE id = $1",
        ada,
    )
    .await;
    assert_eq!(lookup().await.password_hash, None);
    assert!(
        !users::user_login_succeeded()
            .bind(&auth, &ada, &None::<std::net::IpAddr>)
            .one()
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn definer_functions_check_user_and_organization_state_and_clamp_expiries() {
    let db = TestDb::new().await;
    let [a] = db.tenants().await;
    let ada = a.user_id;
    let month = chrono::Duration::days(30) + chrono::Duration::minutes(1);
    let issue_session = || {
        db.insert(SessionFixture::new(ada).valid_for(Duration::from_secs(100 * 365 * 24 * 3600)))
    };
    // A century-long session is clamped to the policy's 30 days.
    let session = issue_session().await;
    assert!(session.session.expires_at - chrono::Utc::now().fixed_offset() < month);
    // So is a rotation asking for 'infinity'.
    let anonymous = db.pool(DbRole::App).get().await.unwrap();
    let row = anonymous
        .query_one(
            "SELECT expires_at FROM identity.session_rotate($1, $2, 'infinity')",
            &[&token_hash(&session.refresh_token), &vec![7u8; 32]],
        )
        .await
        .unwrap();
    let expires: chrono::DateTime<chrono::FixedOffset> = row.get(0);
    assert!(expires - chrono::Utc::now().fixed_offset() < month);
    // A locked or suspended user's session does not rotate.
    for (setup, undo) in [
        (
            "UPDATE identity.users SET locked_until = now() + interval '1 hour' WHERE id = $1",
            "UPDATE identity.users SET locked_until = NULL WHERE id = $1",
        ),
        (
            "UPDATE identity.users SET status = 'suspended' WHERE id = $1",
            "UPDATE identity.users SET status = 'active' WHERE id = $1",
        ),
    ] {
        let session = issue_session().await;
        owner_sql(&db, setup, ada).await;
        let rotated = rotate_session(&anonymous, &session.refresh_token, Duration::from_secs(60))
            .await
            .unwrap();
        assert!(rotated.is_none(), "{setup}");
        owner_sql(&db, undo, ada).await;
        assert!(
            rotate_session(&anonymous, &session.refresh_token, Duration::from_secs(60))
                .await
                .unwrap()
                .is_some()
        );
    }

    // An invitation for ten years lasts the policy's 14 days.
    let invite = |email: &'static str| {
        db.insert(
            InvitationFixture::new(a.tenant())
                .email(email)
                .valid_for(Duration::from_secs(10 * 365 * 24 * 3600))
                .invited_by(ada),
        )
    };
    let invitation = invite("bob@example.com").await;
    let lasts =
        invitation.member.invitation_expires_at.unwrap() - chrono::Utc::now().fixed_offset();
    assert!(lasts < chrono::Duration::days(14) + chrono::Duration::minutes(1));
    // Without a signed-in user nobody accepts it.
    let accepted = anonymous
        .query_opt(
            "SELECT * FROM identity.invitation_accept($1)",
            &[&token_hash(&invitation.token)],
        )
        .await
        .unwrap();
    assert!(accepted.is_none());

    // An archived organization's keys and invitations stop working.
    let org = a.organization_id;
    let key = db
        .insert(ApiKeyFixture::new(Tenant::organization(org)).scopes(["read"]))
        .await;
    assert!(
        authenticate_api_key(&anonymous, &key.plaintext)
            .await
            .unwrap()
            .is_some()
    );
    let bob = sign_up(&db, "bob@example.com", None).await;
    owner_sql(
        &db,
        "UPDATE identity.organizations SET status = 'archived' WHERE id = $1",
        org,
    )
    .await;
    assert!(
        authenticate_api_key(&anonymous, &key.plaintext)
            .await
            .unwrap()
            .is_none()
    );
    let accepted = db
        .with_tenant(DbRole::App, Tenant::user(bob), async |tx| {
            groundwork::identity::accept_invitation(tx, &invitation.token)
                .await
                .map_err(common::database)
        })
        .await
        .unwrap();
    assert!(accepted.is_none());
    let member = db
        .with_tenant(DbRole::App, a.tenant(), async |tx| {
            Ok(organization_members::organization_member_get()
                .bind(tx, &invitation.member.id)
                .one()
                .await?)
        })
        .await
        .unwrap();
    assert_eq!(member.status, MemberStatus::Invited);
}

#[tokio::test]
async fn the_outbox_takes_only_business_columns_within_bounds() {
    let db = TestDb::new().await;
    let [a] = db.tenants().await;
    for attack in [
        "INSERT INTO messaging.outbox_messages (id, topic, payload) OVERRIDING SYSTEM VALUE \
         VALUES (1, 't', '{}')",
        "INSERT INTO messaging.outbox_messages (message_id, topic, payload) \
         VALUES (gen_random_uuid(), 't', '{}')",
        "INSERT INTO messaging.outbox_messages (topic, payload, status, delivered_at) \
         VALUES ('t', '{}', 'delivered', now())",
        "INSERT INTO messaging.outbox_messages (topic, payload, attempts) VALUES ('t', '{}', 99)",
        "UPDATE messaging.outbox_messages SET status = 'dead', dead_at = now()",
        "DELETE FROM messaging.outbox_messages",
    ] {
        assert_denied(run_sql(&db, DbRole::App, a.tenant(), attack).await, attack);
    }
    let big = json!({"blob": "x".repeat(300 * 1024)});
    let cases = [
        (
            NewMessage::new("t", json!({})).max_attempts(26),
            "outbox_messages_max_attempts_range",
        ),
        (
            NewMessage::new("t", json!({})).max_attempts(i32::MAX),
            "outbox_messages_max_attempts_range",
        ),
        (
            NewMessage::new("t", json!({})).max_attempts(0),
            "outbox_messages_max_attempts_range",
        ),
        (NewMessage::new("t", big), "outbox_messages_payload_size"),
        (
            NewMessage {
                headers: json!([]),
                ..NewMessage::new("t", json!({}))
            },
            "outbox_messages_headers_object",
        ),
        (
            NewMessage::new("t", json!({})).partition(""),
            "outbox_messages_partition_key_length",
        ),
    ];
    for (message, constraint) in cases {
        let err = db
            .with_tenant(DbRole::App, a.tenant(), async |tx| {
                enqueue(tx, &message).await
            })
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{constraint}: {err:?}");
        assert_eq!(err.constraint(), Some(constraint));
    }
    assert_eq!(db.count("messaging.outbox_messages").await, 0);
}

#[tokio::test]
async fn an_undeliverable_message_holds_only_its_own_tenants_partition() {
    let db = TestDb::new().await;
    let [a, b] = db.tenants().await;
    // A's first message is over NOTIFY's 8000-byte limit: the publisher fails on it.
    let too_big = json!({"blob": "x".repeat(9000)});
    for (t, message) in [
        (
            a,
            NewMessage::new("orders", too_big)
                .partition("p")
                .max_attempts(2),
        ),
        (
            a,
            NewMessage::new("orders", json!({"n": "a2"})).partition("p"),
        ),
        (
            b,
            NewMessage::new("orders", json!({"n": "b1"})).partition("p"),
        ),
    ] {
        db.with_tenant(DbRole::App, t.tenant(), async |tx| {
            enqueue(tx, &message).await
        })
        .await
        .unwrap();
    }
    let relay_pool = db.pool(DbRole::Relay).clone();
    let publisher = NotifyPublisher::new(relay_pool.clone(), "orders");
    let relay = Relay::new(
        relay_pool.clone(),
        RelayConfig {
            base_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(10),
            ..RelayConfig::default()
        },
    );
    let statuses = || async {
        let client = relay_pool.get().await.unwrap();
        client
            .query(
                "SELECT organization_id, status::text FROM messaging.outbox_messages ORDER BY id",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get::<_, Uuid>(0), r.get::<_, String>(1)))
            .collect::<Vec<_>>()
    };
    // The first round delivers B's message; A's partition waits behind its first.
    let round = relay.run_once(&publisher).await.unwrap();
    assert_eq!((round.claimed, round.delivered, round.retried), (2, 1, 1));
    assert_eq!(
        statuses().await,
        [
            (a.organization_id, "pending".to_owned()),
            (a.organization_id, "pending".to_owned()),
            (b.organization_id, "delivered".to_owned()),
        ]
    );
    // After its last attempt the message is a dead letter, and A's partition moves on.
    for _ in 0..100 {
        relay.run_once(&publisher).await.unwrap();
        if statuses().await.iter().all(|(_, s)| s != "pending") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        statuses().await,
        [
            (a.organization_id, "dead".to_owned()),
            (a.organization_id, "delivered".to_owned()),
            (b.organization_id, "delivered".to_owned()),
        ]
    );
    let last_error: String = relay_pool
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT last_error FROM messaging.outbox_messages WHERE status = $1",
            &[&OutboxStatus::Dead],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        last_error.contains("payload string too long"),
        "{last_error}"
    );
}

/// The error of appending `events` (raw JSON) as `tenant`.
async fn append_error(db: &TestDb, tenant: Tenant, events: serde_json::Value) -> Error {
    db.with_tenant(DbRole::App, tenant, async |tx| {
        Ok(groundwork::queries::eventstore::events::event_append()
            .bind(tx, &events, &None::<serde_json::Value>)
            .one()
            .await?)
    })
    .await
    .unwrap_err()
}

#[tokio::test]
async fn appends_are_limited_with_clear_errors() {
    let db = TestDb::new().await;
    let [a] = db.tenants().await;
    let tags =
        |n: usize, len: usize| -> Vec<String> { (0..n).map(|i| format!("{i:0>len$}")).collect() };
    let mib = 1024 * 1024;
    let cases = [
        (
            json!((0..1001).map(|_| json!({"type": "A"})).collect::<Vec<_>>()),
            SqlState::PROGRAM_LIMIT_EXCEEDED,
            "an append has 1001 events; an append has at most 1000".to_owned(),
        ),
        (
            json!([{"type": "A", "tags": tags(20_000, 6)}]),
            SqlState::PROGRAM_LIMIT_EXCEEDED,
            "event 1 has 20000 tags; an event has at most 64".to_owned(),
        ),
        (
            json!([{"type": "A"}, {"type": "A", "tags": ["x".repeat(3200)]}]),
            SqlState::PROGRAM_LIMIT_EXCEEDED,
            "event 2 has a tag of 3200 bytes; a tag is at most 256 bytes".to_owned(),
        ),
        (
            json!([{"type": "A", "tags": ["ok", ""]}]),
            SqlState::INVALID_PARAMETER_VALUE,
            "event 1 has an empty tag".to_owned(),
        ),
        // Bytes, not characters: 129 two-byte characters.
        (
            json!([{"type": "A", "tags": ["é".repeat(129)]}]),
            SqlState::PROGRAM_LIMIT_EXCEEDED,
            "event 1 has a tag of 258 bytes; a tag is at most 256 bytes".to_owned(),
        ),
        (
            json!([{"type": "A", "tags": tags(65, 1)}]),
            SqlState::PROGRAM_LIMIT_EXCEEDED,
            "event 1 has 65 tags; an event has at most 64".to_owned(),
        ),
        (
            json!([{"type": "A", "metadata": null}]),
            SqlState::INVALID_PARAMETER_VALUE,
            "event 1 has \"metadata\" that is not an object".to_owned(),
        ),
        (
            json!([{"type": "A", "data": "x".repeat(2 * mib)}]),
            SqlState::PROGRAM_LIMIT_EXCEEDED,
            "event 1 is ".to_owned(),
        ),
        (
            json!(
                (0..9)
                    .map(|_| json!({"type": "A", "data": "x".repeat(mib - 100)}))
                    .collect::<Vec<_>>()
            ),
            SqlState::PROGRAM_LIMIT_EXCEEDED,
            "an append is ".to_owned(),
        ),
    ];
    for (events, code, message) in cases {
        let err = append_error(&db, a.tenant(), events).await;
        assert!(
            matches!(err, Error::LimitExceeded(_) | Error::Invalid(_)),
            "{err:?}"
        );
        assert_eq!(err.code(), Some(&code), "{message}: {err:?}");
        assert!(
            err.violation().unwrap().message.starts_with(&message),
            "{message}: {err:?}"
        );
    }
    // Conditions and reads are limited too.
    let items: Vec<_> = (0..101)
        .map(|i| json!({"tags": [format!("t{i}")]}))
        .collect();
    let err = db
        .with_tenant(DbRole::App, a.tenant(), async |tx| {
            Ok(groundwork::queries::eventstore::events::event_read()
                .bind(tx, &json!({"items": items}), &0, &None::<i32>)
                .all()
                .await?)
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LimitExceeded(_)), "{err:?}");
    assert_eq!(db.count("eventstore.events").await, 0);
    // At the limits, an append goes through.
    let at_limits = [
        NewEvent::new("A", json!({})).tagged(["é".repeat(128), "x".repeat(256)]),
        NewEvent::new("A", json!({})).tagged(tags(64, 3)),
    ];
    db.with_tenant(DbRole::App, a.tenant(), async |tx| {
        Ok(append(tx, &at_limits, None).await?)
    })
    .await
    .unwrap();
    assert_eq!(db.count("eventstore.events").await, 2);
}

/// The advisory locks held by the backend behind `tx`.
async fn advisory_locks(db: &TestDb, tx: &deadpool_postgres::Transaction<'_>) -> i64 {
    let pid: i32 = tx
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    db.pool(DbRole::Owner)
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE pid = $1 AND locktype = 'advisory'",
            &[&pid],
        )
        .await
        .unwrap()
        .get(0)
}

/// A decision of tenant `t` about `course`, committed.
async fn decide(db: &TestDb, t: TestTenant, course: &str) -> Result<i64, Error> {
    db.with_tenant(DbRole::App, t.tenant(), async |tx| {
        let condition = AppendCondition {
            fail_if_events_match: Query::item(["Enrolled"], [format!("course:{course}")]),
            after: None,
        };
        let event = NewEvent::new("Enrolled", json!({})).tagged([format!("course:{course}")]);
        Ok(append(tx, &[event], Some(&condition)).await?)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_transaction_takes_few_locks_and_stalls_no_other_tenant() {
    let db = TestDb::builder().pool_size(4).build().await;
    let [a, b] = db.tenants().await;
    let mut client = db.pool(DbRole::App).get().await.unwrap();
    let tx = begin(&mut client, b.tenant()).await.unwrap();
    // The largest append there is: 1000 events with 64 distinct tags each.
    let events: Vec<NewEvent> = (0..1000)
        .map(|e| {
            NewEvent::new("Imported", json!({"e": e}))
                .tagged((0..64).map(|t| format!("tag:{e}:{t}")))
        })
        .collect();
    append(&tx, &events, None).await.unwrap();
    // It locked its tenant's space instead of 128,000 keys.
    assert!(advisory_locks(&db, &tx).await <= 2);
    // Hundreds of small appends in the same transaction add nothing.
    for i in 0..300 {
        let event = NewEvent::new("Imported", json!({})).tagged([format!("more:{i}")]);
        append(&tx, &[event], None).await.unwrap();
    }
    assert!(advisory_locks(&db, &tx).await <= 2);
    // Meanwhile another tenant decides and commits, unhindered.
    let other = tokio::time::timeout(Duration::from_secs(5), decide(&db, a, "42")).await;
    assert!(matches!(other, Ok(Ok(_))), "{other:?}");
    tx.commit().await.unwrap();

    // A transaction of many small appends escalates once it has taken 32 keys.
    let tx = begin(&mut client, b.tenant()).await.unwrap();
    for i in 0..100 {
        let event = NewEvent::new("Ticked", json!({})).tagged([format!("tick:{i}")]);
        append(&tx, &[event], None).await.unwrap();
        assert!(advisory_locks(&db, &tx).await <= 40, "after {i} appends");
    }
    tx.commit().await.unwrap();
    assert_eq!(db.count("eventstore.events").await, 1401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advisory_locks_are_out_of_reach_and_horizons_are_per_tenant() {
    let db = TestDb::builder().pool_size(4).build().await;
    let [a, b] = db.tenants().await;
    for role in [DbRole::App, DbRole::Readonly] {
        for sql in [
            "SELECT pg_advisory_lock(1)",
            "SELECT pg_advisory_xact_lock_shared(1, 2)",
            "SELECT pg_try_advisory_lock(4294967296)",
        ] {
            assert_denied(run_sql(&db, role, a.tenant(), sql).await, sql);
        }
    }
    // B's append stays open; A's own commits are readable at once.
    let mut client = db.pool(DbRole::App).get().await.unwrap();
    let held = begin(&mut client, b.tenant()).await.unwrap();
    append(&held, &[NewEvent::new("Pending", json!({}))], None)
        .await
        .unwrap();
    let position = decide(&db, a, "7").await.unwrap();
    let seen = db
        .with_tenant(DbRole::App, a.tenant(), async |tx| {
            Ok(read(tx, &Query::all(), 0, None).await?)
        })
        .await
        .unwrap();
    assert_eq!(
        seen.iter().map(|e| e.position).collect::<Vec<_>>(),
        [position]
    );
    held.commit().await.unwrap();
}

/// A read stops below an append in flight only when that append may write what the
/// read asks for: one about another tag does not hold it back, one with a matching
/// tag, type or no query at all does, and what it holds back appears once the append
/// commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_waits_only_for_appends_that_may_write_what_it_reads() {
    let db = TestDb::builder().pool_size(4).build().await;
    let [a] = db.tenants().await;
    let commit = |event: NewEvent| {
        let db = &db;
        async move {
            db.with_tenant(DbRole::App, a.tenant(), async |tx| {
                Ok(append(tx, &[event], None).await?)
            })
            .await
            .unwrap()
        }
    };
    let math = || NewEvent::new("Enrolled", json!({})).tagged(["course:math"]);
    let art = || NewEvent::new("Enrolled", json!({})).tagged(["course:art"]);
    let (math_1, art_1) = (commit(math()).await, commit(art()).await);
    let mut client = db.pool(DbRole::App).get().await.unwrap();
    let held = begin(&mut client, a.tenant()).await.unwrap();
    let pending = append(
        &held,
        &[NewEvent::new("Pending", json!({})).tagged(["course:math"])],
        None,
    )
    .await
    .unwrap();
    // Committed after the pending one drew its position.
    let (art_2, math_2) = (commit(art()).await, commit(math()).await);
    assert!(pending < art_2 && art_2 < math_2);
    let positions = |query: Query| {
        let db = &db;
        async move {
            db.with_tenant(DbRole::App, a.tenant(), async |tx| {
                Ok(read(tx, &query, 0, None).await?)
            })
            .await
            .unwrap()
            .iter()
            .map(|e| e.position)
            .collect::<Vec<_>>()
        }
    };
    let by_tag = |tag: &str| Query::item(Vec::<String>::new(), [tag.to_owned()]);
    assert_eq!(positions(by_tag("course:art")).await, [art_1, art_2]);
    assert_eq!(positions(by_tag("course:math")).await, [math_1]);
    let by_type = |t: &str| Query::item([t.to_owned()], Vec::<String>::new());
    assert_eq!(
        positions(by_type("Enrolled")).await,
        [math_1, art_1, art_2, math_2]
    );
    assert_eq!(positions(Query::all()).await, [math_1, art_1]);
    held.commit().await.unwrap();
    assert_eq!(
        positions(by_tag("course:math")).await,
        [math_1, pending, math_2]
    );
    assert_eq!(positions(by_type("Pending")).await, [pending]);
}

/// A read finds the tenant's space key free when no append of the tenant is in flight,
/// by taking it for an instant: the reading connection keeps no advisory lock, and an
/// append never waits for a reader's open transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_hold_no_lock_that_appends_would_wait_for() {
    let db = TestDb::builder().pool_size(4).build().await;
    let [a] = db.tenants().await;
    decide(&db, a, "1").await.unwrap();
    let mut client = db.pool(DbRole::App).get().await.unwrap();
    for _ in 0..20 {
        let tx = begin(&mut client, a.tenant()).await.unwrap();
        assert_eq!(read(&tx, &Query::all(), 0, None).await.unwrap().len(), 1);
        tx.commit().await.unwrap();
    }
    let reading = begin(&mut client, a.tenant()).await.unwrap();
    read(&reading, &Query::all(), 0, None).await.unwrap();
    assert_eq!(advisory_locks(&db, &reading).await, 0);
    // An append commits while the reader's transaction is still open.
    tokio::time::timeout(Duration::from_secs(30), decide(&db, a, "2"))
        .await
        .expect("the append waited for a reader")
        .unwrap();
    reading.commit().await.unwrap();
}

/// The read horizon survives positions past 2^32 (it encodes bounds modulo 2^32).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_horizon_holds_across_the_32_bit_wrap() {
    let db = TestDb::builder().pool_size(4).build().await;
    let [a] = db.tenants().await;
    db.pool(DbRole::Owner)
        .get()
        .await
        .unwrap()
        .batch_execute("SELECT setval('eventstore.events_position_seq', 4294967290)")
        .await
        .unwrap();
    let mut client = db.pool(DbRole::App).get().await.unwrap();
    let held = begin(&mut client, a.tenant()).await.unwrap();
    let first = append(&held, &[NewEvent::new("Early", json!({}))], None)
        .await
        .unwrap();
    // Later appends of the tenant cross 2^32 and commit first.
    for _ in 0..10 {
        db.with_tenant(DbRole::App, a.tenant(), async |tx| {
            Ok(append(tx, &[NewEvent::new("Late", json!({}))], None).await?)
        })
        .await
        .unwrap();
    }
    let read_all = || async {
        db.with_tenant(DbRole::App, a.tenant(), async |tx| {
            Ok(read(tx, &Query::all(), 0, None).await?)
        })
        .await
        .unwrap()
    };
    assert!(read_all().await.is_empty(), "nothing past the open append");
    held.commit().await.unwrap();
    let all = read_all().await;
    assert_eq!(all.len(), 11);
    assert_eq!(all[0].position, first);
    assert!(all[10].position > 1 << 32);
}

/// A LISTEN connection on `channels`, as `url`'s role; its notifications.
async fn listen(
    url: &str,
    channels: &[&str],
) -> (
    tokio_postgres::Client,
    tokio::sync::mpsc::UnboundedReceiver<Notification>,
) {
    let (client, mut connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(n) = message {
                let _ = sender.send(n);
            }
        }
    });
    for channel in channels {
        client
            .batch_execute(&format!("LISTEN \"{channel}\""))
            .await
            .unwrap();
    }
    (client, receiver)
}

#[tokio::test]
async fn notifications_reveal_nothing_across_tenants() {
    let db = TestDb::new().await;
    let [a, b] = db.tenants().await;
    let channel = |t: Tenant| {
        let db = &db;
        async move {
            db.with_tenant(DbRole::App, t, async |tx| {
                Ok(subscription_channel().bind(tx).one().await?)
            })
            .await
        }
    };
    let (channel_a, channel_b) = (
        channel(a.tenant()).await.unwrap(),
        channel(b.tenant()).await.unwrap(),
    );
    assert_ne!(channel_a, channel_b);
    for name in [&channel_a, &channel_b] {
        let suffix = name.strip_prefix("eventstore_").expect(name);
        assert!(suffix.len() == 32 && suffix.chars().all(|c| c.is_ascii_hexdigit()));
    }
    let err = channel(Tenant::default()).await.unwrap_err();
    assert!(matches!(err, Error::PermissionDenied(_)), "{err:?}");

    // A read-only connection without a tenant listens on the old shared channel and
    // on B's; A's subscriber listens on A's.
    let (_spy, mut spied) =
        listen(db.url(DbRole::Readonly), &["eventstore_events", &channel_b]).await;
    let (_subscriber, mut heard) = listen(db.url(DbRole::App), &[&channel_a]).await;
    decide(&db, a, "1").await.unwrap();
    let notification = tokio::time::timeout(Duration::from_secs(5), heard.recv())
        .await
        .expect("A's subscriber is notified")
        .unwrap();
    assert_eq!(notification.channel(), channel_a);
    assert_eq!(notification.payload(), "", "the payload says nothing");
    assert!(
        tokio::time::timeout(Duration::from_millis(500), spied.recv())
            .await
            .is_err(),
        "nobody else hears of A's commit"
    );
}

#[tokio::test]
async fn a_malformed_tenant_context_is_a_typed_error_and_shows_nothing() {
    let db = TestDb::new().await;
    let mut client = db.pool(DbRole::App).get().await.unwrap();
    for sql in [
        "SELECT count(*) FROM identity.organizations",
        "SELECT eventstore.append('[{\"type\": \"A\"}]')",
    ] {
        let tx = client.transaction().await.unwrap();
        tx.batch_execute("SELECT set_config('app.current_org_id', 'not-a-uuid', true)")
            .await
            .unwrap();
        let err = Error::from(tx.batch_execute(sql).await.unwrap_err());
        assert!(matches!(err, Error::Invalid(_)), "{sql}: {err:?}");
        assert_eq!(err.code(), Some(&SqlState::INVALID_TEXT_REPRESENTATION));
    }
    assert_eq!(db.count("eventstore.events").await, 0);
}

/// Lines of a catalog query (run as the owner) that name rule breakers.
async fn breakers(db: &TestDb, sql: &str) -> Vec<String> {
    db.pool(DbRole::Owner)
        .get()
        .await
        .unwrap()
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The schemas migrations create (everything but PostgreSQL's own).
const APPLICATION_SCHEMAS: &str =
    "n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'";

#[tokio::test]
async fn every_tenant_table_has_row_level_security_for_the_application_and_service_roles() {
    let db = TestDb::new().await;
    let tables = breakers(
        &db,
        &format!(
            "SELECT c.oid::regclass::text FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'organization_id'
                                AND NOT a.attisdropped
             WHERE c.relkind IN ('r', 'p') AND {APPLICATION_SCHEMAS}"
        ),
    )
    .await;
    assert!(tables.len() >= 8, "{tables:?}");
    let unprotected = breakers(
        &db,
        &format!(
            "SELECT c.oid::regclass::text || ' for ' || r.rolname FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'organization_id'
                                AND NOT a.attisdropped
             CROSS JOIN pg_roles r
             WHERE c.relkind IN ('r', 'p') AND {APPLICATION_SCHEMAS}
               AND r.rolname IN ('groundwork_app', 'groundwork_readonly', 'groundwork_service')
               AND NOT (c.relrowsecurity AND EXISTS (
                   SELECT FROM pg_policy p
                   WHERE p.polrelid = c.oid AND p.polpermissive
                     AND (r.oid = ANY (p.polroles) OR 0::oid = ANY (p.polroles))))"
        ),
    )
    .await;
    assert!(unprotected.is_empty(), "no tenant policy: {unprotected:?}");
}

#[tokio::test]
async fn security_definer_functions_pin_search_path_and_belong_to_the_owner_role() {
    let db = TestDb::new().await;
    let definers = breakers(
        &db,
        &format!(
            "SELECT p.oid::regprocedure::text FROM pg_proc p
             JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE p.prosecdef AND {APPLICATION_SCHEMAS}"
        ),
    )
    .await;
    assert!(definers.len() >= 10, "{definers:?}");
    let wrong = breakers(
        &db,
        &format!(
            "SELECT p.oid::regprocedure::text || ': owner ' || r.rolname
                    || ', superuser ' || r.rolsuper || ', ' || coalesce(c.setting, 'no search_path')
             FROM pg_proc p
             JOIN pg_namespace n ON n.oid = p.pronamespace
             JOIN pg_roles r ON r.oid = p.proowner
             LEFT JOIN LATERAL (SELECT s AS setting FROM unnest(p.proconfig) s
                                WHERE s LIKE 'search\\_path=%') c ON true
             WHERE p.prosecdef AND {APPLICATION_SCHEMAS}
               AND (r.rolname <> 'groundwork_owner' OR r.rolsuper OR r.rolcanlogin
                    OR c.setting IS NULL
                    OR c.setting NOT LIKE 'search\\_path=pg\\_catalog, %'
                    OR c.setting NOT LIKE '%, pg\\_temp')"
        ),
    )
    .await;
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test]
async fn nothing_is_granted_to_public_beyond_postgresql_defaults() {
    let db = TestDb::new().await;
    let public_grants = breakers(
        &db,
        &format!(
            "SELECT 'relation ' || c.oid::regclass || ' ' || a.privilege_type
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
                  aclexplode(c.relacl) a
             WHERE a.grantee = 0 AND {APPLICATION_SCHEMAS}
             UNION ALL
             SELECT 'column ' || c.oid::regclass || '.' || att.attname || ' ' || a.privilege_type
             FROM pg_attribute att JOIN pg_class c ON c.oid = att.attrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(att.attacl) a
             WHERE a.grantee = 0 AND {APPLICATION_SCHEMAS}
             UNION ALL
             -- PostgreSQL's default for a new database: USAGE on schema public only.
             SELECT 'schema ' || n.nspname || ' ' || a.privilege_type
             FROM pg_namespace n, aclexplode(n.nspacl) a
             WHERE a.grantee = 0 AND {APPLICATION_SCHEMAS}
               AND NOT (n.nspname = 'public' AND a.privilege_type = 'USAGE')
             UNION ALL
             SELECT 'definer function ' || p.oid::regprocedure
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace,
                  aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
             WHERE a.grantee = 0 AND p.prosecdef AND {APPLICATION_SCHEMAS}
             UNION ALL
             SELECT 'default privileges of ' || d.defaclrole::regrole || ' ' || a.privilege_type
             FROM pg_default_acl d, aclexplode(d.defaclacl) a
             WHERE a.grantee = 0
             UNION ALL
             SELECT 'advisory lock function ' || p.oid::regprocedure
             FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
             WHERE p.pronamespace = 'pg_catalog'::regnamespace
               AND p.proname LIKE 'pg\\_%advisory\\_%' AND a.grantee = 0"
        ),
    )
    .await;
    assert!(public_grants.is_empty(), "{public_grants:#?}");
}

#[tokio::test]
async fn the_application_roles_own_nothing_and_create_nothing() {
    let db = TestDb::new().await;
    let roles = "ARRAY['groundwork_app', 'groundwork_readonly', 'groundwork_auth',                  'groundwork_relay', 'groundwork_worker', 'groundwork_test_app',                  'groundwork_test_readonly', 'groundwork_test_auth', 'groundwork_test_relay',                  'groundwork_test_worker', 'groundwork_service', 'catalog_service',                  'inventory_service', 'projects_service', 'forms_service', 'sales_service',                  'payments_service', 'analytics_service', 'groundwork_test_catalog_service',                  'groundwork_test_inventory_service', 'groundwork_test_projects_service',                  'groundwork_test_forms_service', 'groundwork_test_sales_service',                  'groundwork_test_payments_service', 'groundwork_test_analytics_service']";
    let problems = breakers(
        &db,
        &format!(
            "WITH r AS (SELECT oid, rolname FROM pg_roles WHERE rolname = ANY ({roles}))
             SELECT r.rolname || ' owns relation ' || c.oid::regclass
             FROM pg_class c JOIN r ON r.oid = c.relowner
             UNION ALL
             SELECT r.rolname || ' owns function ' || p.oid::regprocedure
             FROM pg_proc p JOIN r ON r.oid = p.proowner
             UNION ALL
             SELECT r.rolname || ' owns type ' || t.oid::regtype
             FROM pg_type t JOIN r ON r.oid = t.typowner
             UNION ALL
             SELECT r.rolname || ' owns schema ' || n.nspname
             FROM pg_namespace n JOIN r ON r.oid = n.nspowner
             UNION ALL
             SELECT r.rolname || ' may create in schema ' || n.nspname
             FROM pg_namespace n CROSS JOIN r
             WHERE has_schema_privilege(r.oid, n.oid, 'CREATE')
             UNION ALL
             SELECT r.rolname || ' may create schemas in the database'
             FROM r WHERE has_database_privilege(r.oid, current_database(), 'CREATE')
             UNION ALL
             SELECT r.rolname || ' has attributes beyond login'
             FROM r JOIN pg_roles a ON a.oid = r.oid
             WHERE a.rolsuper OR a.rolcreaterole OR a.rolcreatedb OR a.rolbypassrls
                OR a.rolreplication"
        ),
    )
    .await;
    assert!(problems.is_empty(), "{problems:#?}");
    // The groups exist and their login roles are members.
    let members = breakers(
        &db,
        &format!(
            "SELECT m.rolname || ' in ' || g.rolname FROM pg_auth_members am
             JOIN pg_roles m ON m.oid = am.member JOIN pg_roles g ON g.oid = am.roleid
             WHERE m.rolname = ANY ({roles}) ORDER BY 1"
        ),
    )
    .await;
    // Five application logins, seven service logins in their service roles, and the
    // seven service roles in groundwork_service.
    assert_eq!(members.len(), 19, "{members:?}");
}
