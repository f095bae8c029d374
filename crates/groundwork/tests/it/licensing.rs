//! Seed 001's identity fields and licensing, as the application role acting for a
//! tenant and user: tax numbers by their check digits, locales and time zones with
//! per-organization defaults, access-token JTIs; licences, seats under concurrency, the
//! entitlement check, status moves, renewal and expiry, and isolation between tenants.

use std::sync::Arc;

use chrono::{DateTime, Duration, FixedOffset, Utc};
use groundwork::Error;
use groundwork::client::Params;
use groundwork::identity::{MasterKey, set_master_key};
use groundwork::licensing::{self, LicensingError, NewLicense};
use groundwork::queries::identity::organizations::{
    OrganizationCreateCadPlatformParams, organization_create_cad_platform,
};
use groundwork::queries::identity::sessions::{
    session_access_token_is_live, session_access_token_jti_set, session_create, session_revoke,
};
use groundwork::queries::identity::users::{
    UserCreateParams, user_create, user_personal_get, user_role_set, user_tax_number_set,
    user_update,
};
use groundwork::queries::licensing::license_assignments::{
    license_assignment_list, license_assignment_remove,
};
use groundwork::queries::licensing::licenses::{
    License, license_get, license_process_expirations, license_status_set, license_update,
};
use groundwork::tenant::Tenant;
use groundwork::types::identity::{Locale, PlatformRole, TaxNumberKind};
use groundwork::types::licensing::LicenseStatus;
use groundwork_testing::fixtures::{MemberFixture, UserFixture};
use groundwork_testing::{DbRole, TestDb, TestTenant};
use uuid::Uuid;

/// The SQLSTATE and constraint of a refusal.
fn refusal<T: std::fmt::Debug, E: Into<Error>>(result: Result<T, E>) -> (String, String) {
    let error: Error = result.expect_err("refused").into();
    let code = error
        .code()
        .map(|c| c.code().to_owned())
        .unwrap_or_else(|| format!("no SQLSTATE: {error:?}"));
    (code, error.constraint().unwrap_or_default().to_owned())
}

fn days(n: i64) -> DateTime<FixedOffset> {
    (Utc::now() + Duration::days(n)).fixed_offset()
}

/// A new user who is an active member of `tenant`'s organization.
async fn member(db: &TestDb, tenant: &TestTenant) -> Uuid {
    let user = db.insert(UserFixture::default()).await;
    db.insert(MemberFixture::new(tenant.organization_id, user.id))
        .await;
    user.id
}

/// Issues `license` in `tenant`, as the application role.
async fn issue(
    db: &TestDb,
    tenant: &TestTenant,
    license: NewLicense,
) -> Result<License, LicensingError> {
    let mut client = db.pool(DbRole::App).get().await?;
    groundwork::tenant::with_tenant(&mut client, tenant.tenant(), async |tx| {
        Ok(licensing::issue(tx, &license).await?)
    })
    .await
    .map_err(LicensingError::from)
}

async fn assign(
    db: &TestDb,
    tenant: &TestTenant,
    license: Uuid,
    user: Uuid,
) -> Result<(), LicensingError> {
    db.with_tenant(DbRole::App, tenant.tenant(), async |tx| {
        licensing::assign_seat(tx, license, user).await?;
        Ok(())
    })
    .await
    .map_err(LicensingError::from)
}

async fn entitled(db: &TestDb, tenant: &TestTenant, user: Uuid, feature: &str) -> bool {
    db.with_tenant(DbRole::App, tenant.tenant(), async |tx| {
        licensing::has_entitlement(tx, user, feature).await
    })
    .await
    .unwrap()
}

async fn seats_assigned(db: &TestDb, tenant: &TestTenant, license: Uuid) -> i32 {
    db.with_tenant(DbRole::App, tenant.tenant(), async |tx| {
        Ok(license_get().bind(tx, &license).one().await?.seats_assigned)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn tax_numbers_are_checked_by_their_official_check_digits() {
    let db = TestDb::new().await;
    let user = db.insert(UserFixture::default()).await;
    let key = MasterKey::generate().unwrap();
    let set = |number: Option<&'static str>, kind: Option<TaxNumberKind>| {
        let (db, key) = (&db, &key);
        async move {
            db.with_tenant(DbRole::App, Tenant::user(user.id), async |tx| {
                set_master_key(tx, key).await?;
                user_tax_number_set()
                    .bind(tx, &user.id, &kind, &number)
                    .one()
                    .await?;
                Ok(user_personal_get().bind(tx, &user.id).one().await?)
            })
            .await
        }
    };
    // Valid VKNs (10 digits) and TCKNs (11 digits, no leading zero).
    for vkn in ["1234567890", "0010001121", "4840847211", "7310602531"] {
        let row = set(Some(vkn), Some(TaxNumberKind::Vkn)).await.unwrap();
        assert_eq!(row.tax_number.as_deref(), Some(vkn));
    }
    for tckn in ["10000000146", "12345678950", "11111111110", "98765432150"] {
        let row = set(Some(tckn), Some(TaxNumberKind::Tckn)).await.unwrap();
        assert_eq!(row.tax_number_kind, Some(TaxNumberKind::Tckn));
    }
    set(None, None).await.unwrap();
    let refused = [
        (Some("1234567891"), Some(TaxNumberKind::Vkn)),
        (Some("0010001126"), Some(TaxNumberKind::Vkn)),
        (Some("123456789"), Some(TaxNumberKind::Vkn)),
        (Some("12345678950"), Some(TaxNumberKind::Vkn)),
        (Some("12345678A0"), Some(TaxNumberKind::Vkn)),
        (Some("12345678951"), Some(TaxNumberKind::Tckn)),
        (Some("12345678940"), Some(TaxNumberKind::Tckn)),
        (Some("02345678950"), Some(TaxNumberKind::Tckn)),
        (Some("1234567890"), Some(TaxNumberKind::Tckn)),
        (Some("1234567890"), None),
        (None, Some(TaxNumberKind::Vkn)),
    ];
    for (number, kind) in refused {
        assert_eq!(
            refusal(set(number, kind).await),
            ("23514".to_owned(), "users_tax_number_valid".to_owned()),
            "{number:?} as {kind:?}"
        );
    }
    let row = db
        .with_tenant(DbRole::App, Tenant::user(user.id), async |tx| {
            set_master_key(tx, &key).await?;
            Ok(user_personal_get().bind(tx, &user.id).one().await?)
        })
        .await
        .unwrap();
    assert_eq!((row.tax_number, row.tax_number_kind), (None, None));
}

#[tokio::test]
async fn locales_and_time_zones_exist_and_default_per_organization() {
    let db = TestDb::new().await;
    // Without a tenant: 'en' and UTC.
    let plain = db.insert(UserFixture::default()).await;
    assert_eq!((plain.locale, plain.timezone.as_str()), (Locale::En, "UTC"));
    // A CAD platform organization's new users: seed 001's Turkish defaults.
    let (org_id, founder) = (Uuid::new_v4(), plain.id);
    db.with_tenant(DbRole::App, Tenant::new(org_id, founder), async |tx| {
        organization_create_cad_platform()
            .params(
                tx,
                &OrganizationCreateCadPlatformParams {
                    id: Some(org_id),
                    name: "Atölye",
                    slug: "atolye",
                    settings: serde_json::json!({}),
                    metadata: serde_json::json!({}),
                    created_by: Some(founder),
                },
            )
            .one()
            .await?;
        Ok(())
    })
    .await
    .unwrap();
    let turk = Uuid::new_v4();
    let created = db
        .with_tenant(DbRole::App, Tenant::new(org_id, turk), async |tx| {
            Ok(user_create()
                .params(
                    tx,
                    &UserCreateParams {
                        id: Some(turk),
                        email: "ayse@example.com",
                        username: "ayse",
                        password_hash: None::<&str>,
                        first_name: Some("Ayşe"),
                        last_name: None::<&str>,
                    },
                )
                .one()
                .await?)
        })
        .await
        .unwrap();
    assert_eq!(
        (created.locale, created.timezone.as_str()),
        (Locale::Tr, "Europe/Istanbul")
    );
    // Time zones are the server's names; anything else is refused and nothing changes.
    let update = |zone: &'static str| {
        let db = &db;
        async move {
            db.with_tenant(DbRole::App, Tenant::user(plain.id), async |tx| {
                Ok(user_update()
                    .bind(
                        tx,
                        &None::<&str>,
                        &None::<&str>,
                        &None::<&str>,
                        &None::<serde_json::Value>,
                        &None::<Locale>,
                        &Some(zone),
                        &Some("Atölye A.Ş."),
                        &None::<&str>,
                        &None::<Uuid>,
                        &plain.id,
                    )
                    .one()
                    .await?)
            })
            .await
        }
    };
    let moved = update("America/Argentina/Buenos_Aires").await.unwrap();
    assert_eq!(moved.company_name.as_deref(), Some("Atölye A.Ş."));
    for zone in ["Mars/Olympus", "UTC+3", ""] {
        assert_eq!(
            refusal(update(zone).await),
            ("23503".to_owned(), "users_timezone_fkey".to_owned())
        );
    }
    // An unknown locale does not parse as one (22P02).
    let owner = db.client(DbRole::Owner).await;
    let err = owner
        .execute("SELECT 'xx'::identity.locale", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "22P02");
    // The platform role is the operators' to set, not the application's.
    assert_eq!(
        refusal(
            db.with_tenant(DbRole::App, Tenant::user(plain.id), async |tx| {
                Ok(user_role_set()
                    .bind(tx, &PlatformRole::Admin, &plain.id)
                    .one()
                    .await?)
            })
            .await
        )
        .0,
        "42501"
    );
    let by_owner = user_role_set()
        .bind(&owner, &PlatformRole::Support, &plain.id)
        .one()
        .await
        .unwrap();
    assert_eq!(by_owner.role, PlatformRole::Support);
    assert_eq!(moved.timezone, "America/Argentina/Buenos_Aires");
}

#[tokio::test]
async fn an_access_token_jti_names_one_session_and_dies_with_it() {
    let db = TestDb::new().await;
    let user = db.insert(UserFixture::default()).await;
    let jti = format!("jti-{}", Uuid::new_v4());
    let (first, second) = db
        .with_tenant(DbRole::App, Tenant::user(user.id), async |tx| {
            let mut ids = Vec::new();
            for n in 0..2u8 {
                let session = session_create()
                    .bind(
                        tx,
                        &user.id,
                        &vec![n; 32],
                        &None::<&str>,
                        &None::<std::net::IpAddr>,
                        &None::<&str>,
                        &3600.0,
                    )
                    .one()
                    .await?;
                ids.push(session.id);
            }
            session_access_token_jti_set()
                .bind(tx, &jti.as_str(), &ids[0])
                .await?;
            Ok((ids[0], ids[1]))
        })
        .await
        .unwrap();
    let live = |jti: String| {
        let db = &db;
        async move {
            db.with_tenant(DbRole::App, Tenant::user(user.id), async |tx| {
                Ok(session_access_token_is_live()
                    .bind(tx, &jti.as_str())
                    .one()
                    .await?)
            })
            .await
            .unwrap()
        }
    };
    assert!(live(jti.clone()).await);
    assert!(!live("unknown".to_owned()).await);
    // Unique: a second session cannot claim the JTI.
    assert_eq!(
        refusal(
            db.with_tenant(DbRole::App, Tenant::user(user.id), async |tx| {
                Ok(session_access_token_jti_set()
                    .bind(tx, &jti.as_str(), &second)
                    .await?)
            })
            .await
        ),
        (
            "23505".to_owned(),
            "sessions_access_token_jti_key".to_owned()
        )
    );
    db.with_tenant(DbRole::App, Tenant::user(user.id), async |tx| {
        Ok(session_revoke().bind(tx, &first).await?)
    })
    .await
    .unwrap();
    assert!(!live(jti).await);
}

#[tokio::test]
async fn licence_rules_are_refused_with_their_errors_and_write_nothing() {
    let db = TestDb::new().await;
    let [a] = db.tenants().await;
    let stranger = db.insert(UserFixture::default()).await.id;
    let refusals: Vec<(NewLicense, &str, &str)> = vec![
        (
            NewLicense::new(a.user_id, "standard", 0, days(30)),
            "23514",
            "licenses_seats_range",
        ),
        (
            NewLicense::new(a.user_id, "standard", 100_001, days(30)),
            "23514",
            "licenses_seats_range",
        ),
        (
            NewLicense::new(a.user_id, "standard", 5, days(-1)),
            "23514",
            "licenses_period",
        ),
        (
            NewLicense::new(a.user_id, "gold", 5, days(30)),
            "23503",
            "licenses_plan_fkey",
        ),
        (
            NewLicense {
                features: serde_json::json!(["cam"]),
                ..NewLicense::new(a.user_id, "standard", 5, days(30))
            },
            "23514",
            "licenses_features_object",
        ),
    ];
    for (license, code, constraint) in refusals {
        assert_eq!(
            refusal(issue(&db, &a, license.clone()).await),
            (code.to_owned(), constraint.to_owned()),
            "{license:?}"
        );
    }
    assert_eq!(db.count("licensing.licenses").await, 0);

    let license = issue(&db, &a, NewLicense::new(a.user_id, "standard", 2, days(30)))
        .await
        .unwrap();
    // Seats: members only, on usable licences; never more than the licence has.
    assert!(matches!(
        assign(&db, &a, license.id, stranger).await,
        Err(LicensingError::NotAMember(_))
    ));
    let (m1, m2, m3) = (
        member(&db, &a).await,
        member(&db, &a).await,
        member(&db, &a).await,
    );
    assign(&db, &a, license.id, m1).await.unwrap();
    assert_eq!(
        refusal(assign(&db, &a, license.id, m1).await),
        ("23505".to_owned(), "license_assignments_pkey".to_owned())
    );
    assign(&db, &a, license.id, m2).await.unwrap();
    match assign(&db, &a, license.id, m3).await {
        Err(LicensingError::SeatsExhausted { seats, .. }) => assert_eq!(seats, 2),
        other => panic!("{other:?}"),
    }
    // Fewer seats than assigned.
    let shrink = db
        .with_tenant(DbRole::App, a.tenant(), async |tx| {
            Ok(license_update()
                .bind(
                    tx,
                    &Some(1),
                    &None::<DateTime<FixedOffset>>,
                    &None::<serde_json::Value>,
                    &None::<bool>,
                    &license.id,
                )
                .one()
                .await?)
        })
        .await;
    assert_eq!(
        refusal(shrink),
        ("23514".to_owned(), "licenses_seats_in_use".to_owned())
    );
    // The seat counter is the database's.
    let app = db.client(DbRole::App).await;
    let forged = groundwork::tenant::with_tenant(
        &mut db.pool(DbRole::App).get().await.unwrap(),
        a.tenant(),
        async |tx| {
            Ok(tx
                .execute(
                    "UPDATE licensing.licenses SET seats_assigned = 0 WHERE id = $1",
                    &[&license.id],
                )
                .await?)
        },
    )
    .await;
    assert_eq!(refusal(forged).0, "42501");
    drop(app);
    assert_eq!(seats_assigned(&db, &a, license.id).await, 2);
    // A freed seat is taken again.
    db.with_tenant(DbRole::App, a.tenant(), async |tx| {
        Ok(license_assignment_remove()
            .bind(tx, &license.id, &m2)
            .await?)
    })
    .await
    .unwrap();
    assign(&db, &a, license.id, m3).await.unwrap();
    assert_eq!(seats_assigned(&db, &a, license.id).await, 2);
    // A member who leaves gives the seat back.
    db.pool(DbRole::Owner)
        .get()
        .await
        .unwrap()
        .execute(
            "UPDATE identity.organization_members SET status = 'suspended'
             WHERE organization_id = $1 AND user_id = $2",
            &[&a.organization_id, &m3],
        )
        .await
        .unwrap();
    assert_eq!(seats_assigned(&db, &a, license.id).await, 1);

    // Status moves; a cancelled licence stays cancelled and grants no seat.
    let set_status = |status: LicenseStatus| {
        let db = &db;
        async move {
            db.with_tenant(DbRole::App, a.tenant(), async |tx| {
                Ok(license_status_set()
                    .bind(tx, &status, &license.id)
                    .one()
                    .await?)
            })
            .await
            .map_err(LicensingError::from)
        }
    };
    set_status(LicenseStatus::Suspended).await.unwrap();
    assert!(matches!(
        assign(&db, &a, license.id, m2).await,
        Err(LicensingError::NotUsable(_))
    ));
    assert!(matches!(
        set_status(LicenseStatus::Trial).await,
        Err(LicensingError::InvalidTransition(_))
    ));
    set_status(LicenseStatus::Active).await.unwrap();
    set_status(LicenseStatus::Cancelled).await.unwrap();
    assert!(matches!(
        set_status(LicenseStatus::Active).await,
        Err(LicensingError::InvalidTransition(_))
    ));
    assert!(matches!(
        assign(&db, &a, license.id, m2).await,
        Err(LicensingError::NotUsable(_))
    ));
    assert_eq!(seats_assigned(&db, &a, license.id).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_assignments_take_exactly_five_seats() {
    let db = Arc::new(TestDb::builder().pool_size(21).build().await);
    let [a] = db.tenants().await;
    let license = issue(&db, &a, NewLicense::new(a.user_id, "standard", 5, days(30)))
        .await
        .unwrap();
    let mut members = Vec::new();
    for _ in 0..20 {
        members.push(member(&db, &a).await);
    }
    // Each transaction holds its connection until every one has been given its seat or
    // refused: the assignments really run at the same time.
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let tasks: Vec<_> = members
        .into_iter()
        .map(|user| {
            let (db, barrier) = (db.clone(), barrier.clone());
            tokio::spawn(async move {
                let mut client = db.pool(DbRole::App).get().await.unwrap();
                groundwork::tenant::with_tenant(&mut client, a.tenant(), async |tx| {
                    barrier.wait().await;
                    licensing::assign_seat(tx, license.id, user).await?;
                    Ok(())
                })
                .await
                .map_err(LicensingError::from)
            })
        })
        .collect();
    let mut taken = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => taken += 1,
            Err(LicensingError::SeatsExhausted { seats: 5, .. }) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(taken, 5);
    assert_eq!(seats_assigned(&db, &a, license.id).await, 5);
    let listed = db
        .with_tenant(DbRole::App, a.tenant(), async |tx| {
            Ok(license_assignment_list()
                .bind(tx, &license.id)
                .all()
                .await?)
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 5);
}

#[tokio::test]
async fn only_a_usable_assigned_licence_granting_the_feature_entitles() {
    let db = TestDb::new().await;
    let [a, b] = db.tenants().await;
    let user = member(&db, &a).await;
    let owner = db.client(DbRole::Owner).await;
    // Licences in every state, each with a seat for `user` (set up by the owner, who may
    // write the past).
    let make = async |plan: &str,
                      status: &str,
                      starts: i64,
                      ends: i64,
                      auto_renew: bool,
                      features: serde_json::Value|
           -> Uuid {
        let id: Uuid = owner
            .query_one(
                "INSERT INTO licensing.licenses (organization_id, user_id, plan, status, seats,
                                                 starts_at, ends_at, auto_renew, features)
                 VALUES ($1, $2, $3, $4::text::licensing.license_status, 5,
                         now() + make_interval(days => $5), now() + make_interval(days => $6), $7, $8)
                 RETURNING id",
                &[&a.organization_id, &a.user_id, &plan, &status, &(starts as i32), &(ends as i32), &auto_renew, &features],
            )
            .await
            .unwrap()
            .get(0);
        id
    };
    let seat = async |license: Uuid| {
        owner
            .execute(
                "INSERT INTO licensing.license_assignments (organization_id, license_id, user_id)
                 VALUES ($1, $2, $3)",
                &[&a.organization_id, &license, &user],
            )
            .await
    };
    assert!(
        !entitled(&db, &a, user, "thumbnail").await,
        "no seat, no entitlement"
    );
    let standard = make("standard", "active", -1, 30, false, serde_json::json!({})).await;
    assert!(
        !entitled(&db, &a, user, "mesh_analysis").await,
        "unassigned"
    );
    seat(standard).await.unwrap();
    assert!(entitled(&db, &a, user, "mesh_analysis").await);
    assert!(!entitled(&db, &a, user, "cam").await, "not in the plan");
    assert!(
        !entitled(&db, &a, a.user_id, "mesh_analysis").await,
        "the holder has no seat"
    );
    // Another tenant's context sees nothing of it.
    assert!(!entitled(&db, &b, user, "mesh_analysis").await);
    owner
        .execute(
            "UPDATE licensing.licenses SET status = 'suspended' WHERE id = $1",
            &[&standard],
        )
        .await
        .unwrap();
    assert!(!entitled(&db, &a, user, "mesh_analysis").await, "suspended");
    owner
        .execute("UPDATE licensing.licenses SET status = 'active', features = '{\"cam\": true, \"mesh_analysis\": false}' WHERE id = $1", &[&standard])
        .await
        .unwrap();
    assert!(
        entitled(&db, &a, user, "cam").await,
        "granted by the licence"
    );
    assert!(
        !entitled(&db, &a, user, "mesh_analysis").await,
        "withheld by the licence"
    );
    owner
        .execute(
            "UPDATE licensing.licenses SET status = 'expired' WHERE id = $1",
            &[&standard],
        )
        .await
        .unwrap();
    assert!(!entitled(&db, &a, user, "cam").await, "expired");

    // Periods: not started, and the auto-renewal grace of 3 days.
    let later = make(
        "professional",
        "active",
        -1,
        30,
        false,
        serde_json::json!({}),
    )
    .await;
    seat(later).await.unwrap();
    assert!(entitled(&db, &a, user, "cam").await);
    owner
        .execute(
            "UPDATE licensing.licenses SET starts_at = now() + interval '1 day' WHERE id = $1",
            &[&later],
        )
        .await
        .unwrap();
    assert!(!entitled(&db, &a, user, "cam").await, "not started");
    let grace = make("professional", "trial", -40, 1, true, serde_json::json!({})).await;
    seat(grace).await.unwrap();
    assert!(
        entitled(&db, &a, user, "cam").await,
        "a trial in its period"
    );
    owner
        .execute(
            "UPDATE licensing.licenses SET status = 'active', ends_at = now() - interval '2 days' WHERE id = $1",
            &[&grace],
        )
        .await
        .unwrap();
    assert!(
        entitled(&db, &a, user, "cam").await,
        "auto-renewing, 2 days into its grace"
    );
    owner
        .execute(
            "UPDATE licensing.licenses SET ends_at = now() - interval '4 days' WHERE id = $1",
            &[&grace],
        )
        .await
        .unwrap();
    assert!(!entitled(&db, &a, user, "cam").await, "past the grace");
    owner
        .execute(
            "UPDATE licensing.licenses SET auto_renew = false, ends_at = now() - interval '1 minute' WHERE id = $1",
            &[&grace],
        )
        .await
        .unwrap();
    assert!(
        !entitled(&db, &a, user, "cam").await,
        "no grace without auto-renewal"
    );
}

#[tokio::test]
async fn expirations_renew_what_auto_renews_and_expire_the_rest() {
    let db = TestDb::new().await;
    let [a, b] = db.tenants().await;
    let owner = db.client(DbRole::Owner).await;
    let make = async |org: Uuid, holder: Uuid, status: &str, auto_renew: bool| -> Uuid {
        owner
            .query_one(
                "INSERT INTO licensing.licenses (organization_id, user_id, plan, status, seats,
                                                 starts_at, ends_at, auto_renew)
                 VALUES ($1, $2, 'standard', $3::text::licensing.license_status, 1,
                         now() - interval '1 year 1 day', now() - interval '1 day', $4)
                 RETURNING id",
                &[&org, &holder, &status, &auto_renew],
            )
            .await
            .unwrap()
            .get(0)
    };
    let renews = make(a.organization_id, a.user_id, "active", true).await;
    let expires = make(a.organization_id, a.user_id, "active", false).await;
    let trial = make(a.organization_id, a.user_id, "trial", true).await;
    let other_tenant = make(b.organization_id, b.user_id, "active", false).await;
    let changed = db
        .with_tenant(DbRole::App, a.tenant(), async |tx| {
            Ok(license_process_expirations().bind(tx).one().await?)
        })
        .await
        .unwrap();
    assert_eq!(changed, 3);
    let state = async |id: Uuid| -> (String, bool) {
        let row = owner
            .query_one(
                "SELECT status::text, ends_at > now() FROM licensing.licenses WHERE id = $1",
                &[&id],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(state(renews).await, ("active".to_owned(), true));
    assert_eq!(state(expires).await, ("expired".to_owned(), false));
    assert_eq!(state(trial).await, ("expired".to_owned(), false));
    // Only the current tenant's; none without a tenant.
    assert_eq!(state(other_tenant).await, ("active".to_owned(), false));
    let app = db.client(DbRole::App).await;
    let err = app
        .query_one("SELECT licensing.process_expirations()", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "42501");
}

#[tokio::test]
async fn another_tenant_sees_and_changes_no_licence() {
    let db = TestDb::new().await;
    let [a, b] = db.tenants().await;
    let license = issue(&db, &a, NewLicense::new(a.user_id, "standard", 3, days(30)))
        .await
        .unwrap();
    let b_member = member(&db, &b).await;
    let seen = db
        .with_tenant(DbRole::App, b.tenant(), async |tx| {
            Ok(license_get().bind(tx, &license.id).opt().await?)
        })
        .await
        .unwrap();
    assert!(seen.is_none());
    // Its seats cannot be taken from another tenant: the licence is not there.
    assert_eq!(
        refusal(assign(&db, &b, license.id, b_member).await),
        (
            "23503".to_owned(),
            "license_assignments_license_id_fkey".to_owned()
        )
    );
    let changed = db
        .with_tenant(DbRole::App, b.tenant(), async |tx| {
            Ok(license_status_set()
                .bind(tx, &LicenseStatus::Cancelled, &license.id)
                .opt()
                .await?)
        })
        .await
        .unwrap();
    assert!(changed.is_none());
    // Nor can a licence be issued into it.
    let app = db.pool(DbRole::App).get().await.unwrap();
    let mut app = app;
    let forged = groundwork::tenant::with_tenant(&mut app, b.tenant(), async |tx| {
        Ok(tx
            .execute(
                "INSERT INTO licensing.licenses (organization_id, user_id, plan, seats, ends_at)
                 VALUES ($1, $2, 'standard', 1, now() + interval '1 day')",
                &[&a.organization_id, &b.user_id],
            )
            .await?)
    })
    .await;
    assert_eq!(refusal(forged).0, "42501");
    assert_eq!(seats_assigned(&db, &a, license.id).await, 0);
    assert_eq!(db.count("licensing.licenses").await, 1);
}

#[tokio::test]
async fn only_active_accounts_of_active_organizations_hold_licences_and_entitlements() {
    let db = TestDb::new().await;
    let [a, b] = db.tenants().await;
    let (m1, m2) = (member(&db, &a).await, member(&db, &a).await);
    // A licence's holder is an active member: another tenant's user or an unknown id
    // are refused alike.
    for holder in [b.user_id, Uuid::new_v4()] {
        assert!(matches!(
            issue(&db, &a, NewLicense::new(holder, "standard", 5, days(30))).await,
            Err(LicensingError::NotAMember(_))
        ));
    }
    let license = issue(
        &db,
        &a,
        NewLicense::new(a.user_id, "professional", 5, days(30)),
    )
    .await
    .unwrap();
    for user in [m1, m2] {
        assign(&db, &a, license.id, user).await.unwrap();
    }
    assert!(entitled(&db, &a, m1, "cam").await && entitled(&db, &a, m2, "cam").await);
    let owner = db.client(DbRole::Owner).await;
    // A deleted account and a locked-out one are entitled to nothing, and get no seat.
    owner
        .execute(
            "UPDATE identity.users SET status = 'deleted' WHERE id = $1",
            &[&m1],
        )
        .await
        .unwrap();
    owner
        .execute(
            "UPDATE identity.users SET locked_until = now() + interval '1 hour' WHERE id = $1",
            &[&m2],
        )
        .await
        .unwrap();
    assert!(!entitled(&db, &a, m1, "cam").await);
    assert!(!entitled(&db, &a, m2, "cam").await);
    let m3 = member(&db, &a).await;
    owner
        .execute(
            "UPDATE identity.users SET status = 'suspended' WHERE id = $1",
            &[&m3],
        )
        .await
        .unwrap();
    assert!(matches!(
        assign(&db, &a, license.id, m3).await,
        Err(LicensingError::NotAMember(_))
    ));
    // A suspended organization's members are entitled to nothing.
    owner
        .execute(
            "UPDATE identity.users SET locked_until = NULL WHERE id = $1",
            &[&m2],
        )
        .await
        .unwrap();
    assert!(entitled(&db, &a, m2, "cam").await);
    owner
        .execute(
            "UPDATE identity.organizations SET status = 'suspended' WHERE id = $1",
            &[&a.organization_id],
        )
        .await
        .unwrap();
    assert!(!entitled(&db, &a, m2, "cam").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspension_racing_with_an_assignment_waits_and_frees_the_seat() {
    let db = TestDb::new().await;
    let [a] = db.tenants().await;
    let user = member(&db, &a).await;
    let license = issue(&db, &a, NewLicense::new(a.user_id, "standard", 5, days(30)))
        .await
        .unwrap();
    let mut client = db.pool(DbRole::App).get().await.unwrap();
    let tx = groundwork::tenant::begin(&mut client, a.tenant())
        .await
        .unwrap();
    licensing::assign_seat(&tx, license.id, user).await.unwrap();
    // While the assignment is open, the member's suspension waits for it.
    let owner = db.client(DbRole::Owner).await;
    owner
        .batch_execute("SET lock_timeout = '300ms'")
        .await
        .unwrap();
    let suspend = "UPDATE identity.organization_members SET status = 'suspended'
                   WHERE organization_id = $1 AND user_id = $2";
    let err = owner
        .execute(suspend, &[&a.organization_id, &user])
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "55P03");
    tx.commit().await.unwrap();
    owner
        .execute(suspend, &[&a.organization_id, &user])
        .await
        .unwrap();
    assert_eq!(seats_assigned(&db, &a, license.id).await, 0);
    assert!(!entitled(&db, &a, user, "mesh_analysis").await);
}

#[tokio::test]
async fn a_late_renewal_run_renews_every_missed_period_and_trials_have_no_grace() {
    let db = TestDb::new().await;
    let [a] = db.tenants().await;
    let owner = db.client(DbRole::Owner).await;
    let make = async |status: &str, plan: &str, ends: &str| -> Uuid {
        owner
            .query_one(
                &format!(
                    "INSERT INTO licensing.licenses (organization_id, user_id, plan, status, seats,
                                                     starts_at, ends_at, auto_renew)
                     VALUES ($1, $2, '{plan}', '{status}', 1, now() - interval '5 years',
                             now() - interval '{ends}', true)
                     RETURNING id"
                ),
                &[&a.organization_id, &a.user_id],
            )
            .await
            .unwrap()
            .get(0)
    };
    let years_behind = make("active", "standard", "2 years 1 day").await;
    let trial = make("trial", "trial", "1 day").await;
    owner
        .execute(
            "INSERT INTO licensing.license_assignments (organization_id, license_id, user_id)
             SELECT $1, $2, $3 FROM (SELECT set_config('session_replication_role', 'replica', false)) s",
            &[&a.organization_id, &trial, &a.user_id],
        )
        .await
        .unwrap();
    owner
        .batch_execute("SET session_replication_role = origin")
        .await
        .unwrap();
    assert!(
        !entitled(&db, &a, a.user_id, "thumbnail").await,
        "an ended trial has no grace"
    );
    let changed = db
        .with_tenant(DbRole::App, a.tenant(), async |tx| {
            Ok(license_process_expirations().bind(tx).one().await?)
        })
        .await
        .unwrap();
    assert_eq!(changed, 2);
    let row = owner
        .query_one(
            "SELECT status::text, ends_at > now(), ends_at < now() + interval '1 year'
             FROM licensing.licenses WHERE id = $1",
            &[&years_behind],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<_, String>(0),
            row.get::<_, bool>(1),
            row.get::<_, bool>(2)
        ),
        ("active".to_owned(), true, true)
    );
}
