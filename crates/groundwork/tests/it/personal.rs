//! Personal data: encrypted at rest with a per-user key, found through a blind index,
//! erased by destroying the key, in tables and in event payloads. Everything runs as
//! the application role (or the auth and privacy roles) with its context set; the
//! owner only scans and tampers.

use groundwork::Error;
use groundwork::eventstore::{self, NewEvent, Query};
use groundwork::identity::{
    MasterKey, Personal, PersonalDataError, forget_user, reveal_events, rotate_master_key,
    set_master_key,
};
use groundwork::queries::eventstore::events::Event;
use groundwork::queries::identity::users::{
    user_get, user_login_lookup, user_login_lookup_by_phone, user_personal_get, user_phone_set,
    user_tax_number_set,
};
use groundwork::tenant::Tenant;
use groundwork::types::identity::{TaxNumberKind, UserStatus};
use groundwork_provision::Binaries;
use groundwork_testing::fixtures::UserFixture;
use groundwork_testing::{DbRole, TestDb, TestTenant};
use serde_json::json;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

const PHONE: &str = "+905559876543";
const TAX_NUMBER: &str = "4840847211";
const NAME: &str = "Zeynep Personalvalue";

/// The database's refusal as a personal-data error.
fn personal_error<T: std::fmt::Debug>(result: Result<T, Error>) -> PersonalDataError {
    PersonalDataError::from(result.expect_err("refused"))
}

async fn set_phone(db: &TestDb, key: &MasterKey, user: Uuid, phone: &str) -> Result<(), Error> {
    db.with_tenant(DbRole::App, Tenant::user(user), async |tx| {
        set_master_key(tx, key).await?;
        user_phone_set().bind(tx, &user, &Some(phone)).one().await?;
        Ok(())
    })
    .await
}

async fn personal(
    db: &TestDb,
    key: Option<&MasterKey>,
    user: Uuid,
) -> Result<(Option<String>, Option<String>), Error> {
    db.with_tenant(DbRole::App, Tenant::user(user), async |tx| {
        if let Some(key) = key {
            set_master_key(tx, key).await?;
        }
        let row = user_personal_get().bind(tx, &user).one().await?;
        Ok((row.phone, row.tax_number))
    })
    .await
}

/// Appends one event naming `subject` through a personal value.
async fn append_named(
    db: &TestDb,
    key: &MasterKey,
    tenant: &TestTenant,
    subject: Uuid,
    name: &str,
) -> Result<i64, Error> {
    let event = NewEvent::new(
        "MemberRegistered",
        json!({"member": subject, "name": Personal::new(subject, name), "plan": "pro"}),
    )
    .tagged([format!("member:{subject}")]);
    db.with_tenant(DbRole::App, tenant.tenant(), async |tx| {
        set_master_key(tx, key).await?;
        Ok(eventstore::append(tx, &[event], None).await?)
    })
    .await
}

/// The tenant's events, revealed with `key`.
async fn revealed(db: &TestDb, key: &MasterKey, tenant: &TestTenant) -> Vec<Event> {
    db.with_tenant(DbRole::App, tenant.tenant(), async |tx| {
        set_master_key(tx, key).await?;
        let mut events = eventstore::read(tx, &Query::all(), 0, None).await?;
        reveal_events(tx, &mut events).await?;
        Ok(events)
    })
    .await
    .unwrap()
}

/// A projection: member id -> name, rebuilt from the events.
fn names(events: &[Event]) -> Vec<(Uuid, Option<String>)> {
    let mut names: Vec<(Uuid, Option<String>)> = events
        .iter()
        .map(|e| {
            let name: Personal<String> = serde_json::from_value(e.data["name"].clone()).unwrap();
            (name.subject, name.value)
        })
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn phone_and_tax_number_are_encrypted_unique_and_found_by_their_blind_index() {
    let db = TestDb::new().await;
    let key = MasterKey::generate().unwrap();
    let ada = db.insert(UserFixture::default()).await.id;
    let bob = db.insert(UserFixture::default()).await.id;
    set_phone(&db, &key, ada, PHONE).await.unwrap();
    db.with_tenant(DbRole::App, Tenant::user(ada), async |tx| {
        set_master_key(tx, &key).await?;
        user_tax_number_set()
            .bind(tx, &ada, &Some(TaxNumberKind::Vkn), &Some(TAX_NUMBER))
            .one()
            .await?;
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(
        personal(&db, Some(&key), ada).await.unwrap(),
        (Some(PHONE.to_owned()), Some(TAX_NUMBER.to_owned()))
    );

    // Unique through the blind index; malformed refused; nothing written.
    let err = set_phone(&db, &key, bob, PHONE).await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNIQUE_VIOLATION));
    assert_eq!(err.constraint(), Some("users_phone_blind_key"));
    let err = set_phone(&db, &key, bob, "0555 111").await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::CHECK_VIOLATION));
    assert_eq!(err.constraint(), Some("users_phone_format"));
    assert_eq!(personal(&db, Some(&key), bob).await.unwrap(), (None, None));
    // Only one's own phone.
    let err = db
        .with_tenant(DbRole::App, Tenant::user(bob), async |tx| {
            set_master_key(tx, &key).await?;
            user_phone_set().bind(tx, &ada, &None::<&str>).one().await?;
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PermissionDenied(_)), "{err:?}");

    // Login by phone, before authentication, without plaintext in the database.
    let found = db
        .with_tenant(DbRole::Auth, Tenant::default(), async |tx| {
            set_master_key(tx, &key).await?;
            Ok(user_login_lookup_by_phone().bind(tx, &PHONE).opt().await?)
        })
        .await
        .unwrap()
        .expect("found by phone");
    assert_eq!(found.user_id, ada);
    let err = db
        .with_tenant(DbRole::Auth, Tenant::default(), async |tx| {
            Ok(user_login_lookup_by_phone().bind(tx, &PHONE).opt().await?)
        })
        .await;
    assert!(matches!(
        personal_error(err),
        PersonalDataError::MasterKeyMissing(_)
    ));

    // Without the key, or with another, nothing is read.
    assert!(matches!(
        personal_error(personal(&db, None, ada).await),
        PersonalDataError::MasterKeyMissing(_)
    ));
    let other = MasterKey::generate().unwrap();
    assert!(matches!(
        personal_error(personal(&db, Some(&other), ada).await),
        PersonalDataError::MasterKeyInvalid(_)
    ));
    let malformed = db
        .with_tenant(DbRole::App, Tenant::user(ada), async |tx| {
            tx.execute(
                "SELECT set_config('groundwork.personal_data_key', 'not a key', true)",
                &[],
            )
            .await?;
            Ok(user_personal_get().bind(tx, &ada).one().await?)
        })
        .await;
    assert!(matches!(
        personal_error(malformed),
        PersonalDataError::MasterKeyInvalid(_)
    ));
    // Users without personal data need no key.
    assert_eq!(personal(&db, None, bob).await.unwrap(), (None, None));
}

#[tokio::test]
async fn no_plaintext_of_a_personal_value_in_any_table_index_or_dump() {
    let db = TestDb::new().await;
    let key = MasterKey::generate().unwrap();
    let [tenant] = db.tenants().await;
    let user = tenant.user_id;
    set_phone(&db, &key, user, PHONE).await.unwrap();
    db.with_tenant(DbRole::App, Tenant::user(user), async |tx| {
        set_master_key(tx, &key).await?;
        user_tax_number_set()
            .bind(tx, &user, &Some(TaxNumberKind::Vkn), &Some(TAX_NUMBER))
            .one()
            .await?;
        Ok(())
    })
    .await
    .unwrap();
    append_named(&db, &key, &tenant, user, NAME).await.unwrap();
    assert_eq!(
        names(&revealed(&db, &key, &tenant).await),
        [(user, Some(NAME.to_owned()))]
    );

    let needles = [&PHONE[1..], TAX_NUMBER, NAME];
    // Every row of every table (what the indexes hold is in them).
    let owner = db.client(DbRole::Owner).await;
    let tables = owner
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg_toast%'",
            &[],
        )
        .await
        .unwrap();
    assert!(tables.len() > 20);
    for table in tables {
        let table: String = table.get(0);
        let rows = owner
            .query(&format!("SELECT t::text FROM {table} t"), &[])
            .await
            .unwrap();
        for row in rows {
            let text: String = row.get(0);
            for needle in needles {
                assert!(!text.contains(needle), "{table} holds {needle}: {text}");
            }
        }
    }
    // And a dump of the whole database.
    let pg_dump = Binaries::find_program("pg_dump").unwrap();
    let url = db.url(DbRole::Owner).to_owned();
    let dump = tokio::task::spawn_blocking(move || {
        std::process::Command::new(pg_dump)
            .args(["--no-owner", "--dbname", &url])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let dump = String::from_utf8(dump.stdout).unwrap();
    assert!(dump.contains("phone_encrypted"));
    for needle in needles {
        assert!(!dump.contains(needle), "the dump holds {needle}");
    }
}

#[tokio::test]
async fn forgetting_a_user_erases_their_values_everywhere_and_no_one_elses() {
    let db = TestDb::new().await;
    let key = MasterKey::generate().unwrap();
    let [tenant, other_tenant] = db.tenants().await;
    let (ada, bob) = (tenant.user_id, other_tenant.user_id);
    set_phone(&db, &key, ada, PHONE).await.unwrap();
    set_phone(&db, &key, bob, "+905550000001").await.unwrap();
    append_named(&db, &key, &tenant, ada, "Ada").await.unwrap();
    append_named(&db, &key, &tenant, bob, "Bob").await.unwrap();
    append_named(&db, &key, &other_tenant, bob, "Bob")
        .await
        .unwrap();
    // Another tenant reads none of them.
    assert_eq!(revealed(&db, &key, &other_tenant).await.len(), 1);

    // Only the privacy role erases.
    let err = db
        .with_tenant(DbRole::App, Tenant::user(ada), async |tx| {
            Ok(forget_user(tx, ada, "asked by the user").await?)
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PermissionDenied(_)), "{err:?}");
    let erase = async || {
        db.with_tenant(DbRole::Privacy, Tenant::default(), async |tx| {
            Ok(forget_user(tx, ada, "KVKK article 7 request #42").await?)
        })
        .await
        .unwrap()
    };
    let erasure = erase().await;
    assert_eq!(erase().await, erasure, "a second erasure returns the first");
    let record = db
        .client(DbRole::Owner)
        .await
        .query_one(
            "SELECT user_id, erased_by, reason FROM identity.erasures WHERE id = $1",
            &[&erasure],
        )
        .await
        .unwrap();
    assert_eq!(record.get::<_, Uuid>(0), ada);
    assert_eq!(record.get::<_, String>(1), "groundwork_test_privacy");
    assert_eq!(record.get::<_, String>(2), "KVKK article 7 request #42");

    // Ada's values are gone from her row and from every event; the row stays,
    // anonymised, and her membership with it.
    assert_eq!(personal(&db, Some(&key), ada).await.unwrap(), (None, None));
    let row = db
        .with_tenant(DbRole::App, Tenant::user(ada), async |tx| {
            Ok(user_get().bind(tx, &ada).one().await?)
        })
        .await
        .unwrap();
    assert_eq!(row.status, UserStatus::Deleted);
    assert!(row.email.ends_with("@erased.invalid"), "{}", row.email);
    assert_eq!((row.first_name, row.company_name), (None, None));
    assert_eq!(
        db.count(&format!(
            "identity.organization_members WHERE user_id = '{ada}'"
        ))
        .await,
        1
    );
    let events = revealed(&db, &key, &tenant).await;
    assert_eq!(
        events[0].data["name"],
        json!({"$erased": true, "$subject": ada})
    );
    assert_eq!(events[0].data["plan"], "pro", "the rest of the event stays");
    assert_eq!(
        names(&events),
        {
            let mut expected = vec![(ada, None), (bob, Some("Bob".to_owned()))];
            expected.sort();
            expected
        },
        "the projection rebuilds without her name"
    );
    assert_eq!(
        names(&revealed(&db, &key, &other_tenant).await),
        [(bob, Some("Bob".to_owned()))]
    );
    assert_eq!(
        personal(&db, Some(&key), bob).await.unwrap().0.as_deref(),
        Some("+905550000001")
    );

    // Nothing personal is written for her again.
    let err = append_named(&db, &key, &tenant, ada, "Ada again")
        .await
        .unwrap_err();
    assert!(matches!(
        PersonalDataError::from(err),
        PersonalDataError::Forgotten(_)
    ));
    assert_eq!(revealed(&db, &key, &tenant).await.len(), 2);
}

#[tokio::test]
async fn a_rotated_master_key_keeps_everything_readable_and_retires_the_old_one() {
    let db = TestDb::new().await;
    let old = MasterKey::generate().unwrap();
    let new = MasterKey::generate().unwrap();
    let [tenant] = db.tenants().await;
    let user = tenant.user_id;
    set_phone(&db, &old, user, PHONE).await.unwrap();
    append_named(&db, &old, &tenant, user, NAME).await.unwrap();

    // Rotation needs the current key and the privacy role.
    let err = db
        .with_tenant(DbRole::App, tenant.tenant(), async |tx| {
            set_master_key(tx, &old).await?;
            Ok(rotate_master_key(tx, &new).await?)
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PermissionDenied(_)), "{err:?}");
    let version = db
        .with_tenant(DbRole::Privacy, Tenant::default(), async |tx| {
            set_master_key(tx, &old).await?;
            Ok(rotate_master_key(tx, &new).await?)
        })
        .await
        .unwrap();
    assert_eq!(version, 2);

    assert!(matches!(
        personal_error(personal(&db, Some(&old), user).await),
        PersonalDataError::MasterKeyInvalid(_)
    ));
    assert_eq!(
        personal(&db, Some(&new), user).await.unwrap().0.as_deref(),
        Some(PHONE)
    );
    assert_eq!(
        names(&revealed(&db, &new, &tenant).await),
        [(user, Some(NAME.to_owned()))]
    );
    let found = db
        .with_tenant(DbRole::Auth, Tenant::default(), async |tx| {
            set_master_key(tx, &new).await?;
            Ok(user_login_lookup_by_phone().bind(tx, &PHONE).opt().await?)
        })
        .await
        .unwrap();
    assert_eq!(found.map(|f| f.user_id), Some(user));
    // New data under the new key.
    append_named(&db, &new, &tenant, user, "second")
        .await
        .unwrap();
    assert_eq!(revealed(&db, &new, &tenant).await.len(), 2);
}

#[tokio::test]
async fn tampered_or_forged_values_are_refused() {
    let db = TestDb::new().await;
    let key = MasterKey::generate().unwrap();
    let [tenant] = db.tenants().await;
    let ada = tenant.user_id;
    let bob = db.insert(UserFixture::default()).await.id;
    set_phone(&db, &key, ada, PHONE).await.unwrap();
    set_phone(&db, &key, bob, "+905550000002").await.unwrap();
    // A ciphertext moved to another subject fails its check.
    db.client(DbRole::Owner)
        .await
        .execute(
            "UPDATE identity.users SET phone_encrypted = (SELECT phone_encrypted FROM identity.users WHERE id = $1) WHERE id = $2",
            &[&ada, &bob],
        )
        .await
        .unwrap();
    assert!(matches!(
        personal_error(personal(&db, Some(&key), bob).await),
        PersonalDataError::Tampered(_)
    ));

    // Only the database seals; personal values have one shape.
    for data in [
        json!({"name": {"$sealed": "AQ==", "$subject": ada}}),
        json!({"name": {"$personal": "x"}}),
        json!({"name": {"$personal": "x", "$subject": "not a uuid"}}),
        json!({"name": {"$personal": "x", "$subject": ada, "extra": 1}}),
        json!([{"deep": [{"$personal": "x", "$subject": 7}]}]),
    ] {
        let err = db
            .with_tenant(DbRole::App, tenant.tenant(), async |tx| {
                set_master_key(tx, &key).await?;
                Ok(eventstore::append(tx, &[NewEvent::new("Forged", data.clone())], None).await?)
            })
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Some(&SqlState::INVALID_PARAMETER_VALUE),
            "{data}"
        );
    }
    // Sealing needs the key; nothing is written without it.
    let err = db
        .with_tenant(DbRole::App, tenant.tenant(), async |tx| {
            let event = NewEvent::new("Named", json!({"name": Personal::new(ada, "Ada")}));
            Ok(eventstore::append(tx, &[event], None).await?)
        })
        .await;
    assert!(matches!(
        personal_error(err),
        PersonalDataError::MasterKeyMissing(_)
    ));
    assert_eq!(db.count("eventstore.events").await, 0);
}

#[tokio::test]
async fn concurrent_first_writes_of_one_subject_share_one_data_key() {
    let db = TestDb::new().await;
    let key = MasterKey::generate().unwrap();
    let [tenant] = db.tenants().await;
    let subject = Uuid::new_v4();
    let writes = (0..8).map(|i| {
        let (db, key, tenant) = (&db, &key, &tenant);
        async move { append_named(db, key, tenant, subject, &format!("name {i}")).await }
    });
    for result in futures::future::join_all(writes).await {
        result.unwrap();
    }
    assert_eq!(
        db.count(&format!(
            "identity.personal_data_keys WHERE subject_id = '{subject}'"
        ))
        .await,
        1
    );
    let events = revealed(&db, &key, &tenant).await;
    assert_eq!(events.len(), 8);
    assert!(
        names(&events)
            .iter()
            .all(|(s, v)| *s == subject && v.is_some())
    );
}

#[tokio::test]
async fn plaintext_of_an_earlier_release_is_encrypted_by_the_migration_given_the_key() {
    use groundwork_migrate::{DownOptions, DownTarget, Migration, Migrator, UpOptions};
    const BEFORE: i64 = 20261206200300;
    let db = TestDb::builder().empty().build().await;
    let owner = db.client(DbRole::Owner).await;
    let migrator = Migrator::new(
        Migration::load_dir(std::path::Path::new(groundwork_testing::DEFAULT_MIGRATIONS)).unwrap(),
    );
    let up_to = |to| UpOptions {
        to,
        ..UpOptions::default()
    };
    migrator.up(&owner, up_to(Some(BEFORE))).await.unwrap();
    let user = Uuid::new_v4();
    owner
        .execute(
            "INSERT INTO identity.users (id, email, username, phone, tax_number, tax_number_kind)
             VALUES ($1, 'old@example.com', 'oldtimer', $2, $3, 'vkn')",
            &[&user, &PHONE, &TAX_NUMBER],
        )
        .await
        .unwrap();

    // Without the master key the migration stops before touching the rows.
    let err = migrator.up(&owner, up_to(None)).await.unwrap_err();
    assert!(err.to_string().contains("WI001"), "{err}");
    let plain: Option<String> = owner
        .query_one("SELECT phone FROM identity.users WHERE id = $1", &[&user])
        .await
        .unwrap()
        .get(0);
    assert_eq!(plain.as_deref(), Some(PHONE));

    // With it (as PGOPTIONS would set it), the values are encrypted, the plaintext gone.
    let key = MasterKey::generate().unwrap();
    owner
        .execute(
            "SELECT set_config('groundwork.personal_data_key', $1, false)",
            &[&key.to_hex()],
        )
        .await
        .unwrap();
    migrator.up(&owner, up_to(None)).await.unwrap();
    let row = owner
        .query_one(
            "SELECT phone, tax_number, identity.personal_decrypt(id, phone_encrypted),
                    identity.personal_decrypt(id, tax_number_encrypted)
             FROM identity.users WHERE id = $1",
            &[&user],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0), None);
    assert_eq!(row.get::<_, Option<String>>(1), None);
    assert_eq!(row.get::<_, Option<String>>(2).as_deref(), Some(PHONE));
    assert_eq!(row.get::<_, Option<String>>(3).as_deref(), Some(TAX_NUMBER));

    // And back down, decrypted.
    migrator
        .down(
            &owner,
            DownOptions {
                target: DownTarget::To(BEFORE),
                dry_run: false,
                production: false,
                allow_production: false,
            },
        )
        .await
        .unwrap();
    let row = owner
        .query_one(
            "SELECT phone, tax_number FROM identity.users WHERE id = $1",
            &[&user],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some(PHONE));
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some(TAX_NUMBER));
}

#[tokio::test]
async fn an_erasure_racing_first_writes_leaves_no_readable_value() {
    let db = TestDb::new().await;
    let key = MasterKey::generate().unwrap();
    let [tenant] = db.tenants().await;
    for round in 0..5 {
        // A user with nothing personal yet: the writes below race to make their key.
        let user = db.insert(UserFixture::default()).await.id;
        let writes =
            (0..6).map(|i| {
                let (db, key, tenant) = (&db, &key, &tenant);
                async move {
                    append_named(db, key, tenant, user, &format!("round {round} name {i}")).await
                }
            });
        let erase = db.with_tenant(DbRole::Privacy, Tenant::default(), async |tx| {
            Ok(forget_user(tx, user, "racing erasure").await?)
        });
        let (written, erased) = tokio::join!(futures::future::join_all(writes), erase);
        erased.unwrap();
        for result in written {
            if let Err(err) = result {
                assert!(
                    matches!(
                        PersonalDataError::from(err),
                        PersonalDataError::Forgotten(_)
                    ),
                    "round {round}"
                );
            }
        }
        assert_eq!(
            db.count(&format!(
                "identity.personal_data_keys WHERE subject_id = '{user}'"
            ))
            .await,
            0,
            "round {round}: a key outlived the erasure"
        );
        for (subject, value) in names(&revealed(&db, &key, &tenant).await) {
            assert!(
                subject != user || value.is_none(),
                "round {round}: {value:?}"
            );
        }
    }
}

#[tokio::test]
async fn login_by_phone_answers_as_login_by_email_in_every_account_state() {
    let db = TestDb::new().await;
    let key = MasterKey::generate().unwrap();
    let hash = groundwork::identity::hash_password("correct horse").unwrap();
    let user = db
        .insert(
            UserFixture::default()
                .email("caller@example.com")
                .password_hash(&hash),
        )
        .await
        .id;
    set_phone(&db, &key, user, PHONE).await.unwrap();
    let owner = db.client(DbRole::Owner).await;
    for (state, sql) in [
        ("active", "SELECT $1::uuid"),
        (
            "locked out",
            "UPDATE identity.users SET locked_until = now() + interval '1 hour', failed_login_attempts = 5 WHERE id = $1",
        ),
        (
            "lock expired",
            "UPDATE identity.users SET locked_until = now() - interval '1 minute' WHERE id = $1",
        ),
        (
            "suspended",
            "UPDATE identity.users SET status = 'suspended' WHERE id = $1",
        ),
    ] {
        owner.execute(sql, &[&user]).await.unwrap();
        let (by_phone, by_email) = db
            .with_tenant(DbRole::Auth, Tenant::default(), async |tx| {
                set_master_key(tx, &key).await?;
                Ok((
                    user_login_lookup_by_phone().bind(tx, &PHONE).opt().await?,
                    user_login_lookup()
                        .bind(tx, &"caller@example.com")
                        .opt()
                        .await?,
                ))
            })
            .await
            .unwrap();
        assert!(by_email.is_some(), "{state}");
        assert_eq!(by_phone, by_email, "{state}");
        assert_eq!(
            by_phone.unwrap().password_hash.is_some(),
            state == "active" || state == "lock expired",
            "{state}"
        );
    }
}
