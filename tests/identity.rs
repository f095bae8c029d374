//! The identity schema: its rules, exercised through the generated queries.

use groundwork::Error;
use groundwork::queries::identity::{organizations, users};
use groundwork::testing::TestDb;
use groundwork::types::identity::UserStatus;
use serde_json::json;

type Client = deadpool_postgres::Object;

async fn user(client: &Client, email: &str, username: &str) -> Result<users::User, Error> {
    users::user_create()
        .bind(
            client,
            &email,
            &username,
            &None::<&str>,
            &Some("Ada"),
            &None::<&str>,
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
    user(&client, "ada@example.com", "abc").await.unwrap();
    user(&client, "bob@example.com", &"y".repeat(50))
        .await
        .unwrap();
}

#[tokio::test]
async fn email_is_unique_regardless_of_case_and_username_is_unique() {
    let db = TestDb::new().await;
    let client = db.pool().get().await.unwrap();
    let ada = user(&client, "Ada@Example.com", "ada").await.unwrap();
    let err = user(&client, "ada@example.COM", "ada2").await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert_eq!(err.constraint(), Some("users_email_key"));
    let err = user(&client, "other@example.com", "ada").await.unwrap_err();
    assert_eq!(err.constraint(), Some("users_username_key"));
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
            &ada.id,
        )
        .one()
        .await
        .unwrap();
    assert_eq!(updated.first_name.as_deref(), Some("Ada"));
    assert_eq!(updated.last_name.as_deref(), Some("Lovelace"));
    assert_eq!(updated.status, UserStatus::Suspended);
    assert!(updated.updated_at >= ada.updated_at);
    assert_eq!(updated.created_at, ada.created_at);
}

#[tokio::test]
async fn organizations_list_by_keyset_without_gaps_or_repeats() {
    let db = TestDb::new().await;
    let client = db.pool().get().await.unwrap();
    for i in 0..25 {
        organizations::organization_create()
            .bind(
                &client,
                &format!("Org {i}"),
                &format!("org-{i}"),
                &json!({}),
                &json!({"i": i}),
            )
            .one()
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor: Option<(chrono::DateTime<chrono::FixedOffset>, uuid::Uuid)> = None;
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
    let create = |slug: &'static str| {
        let client = &client;
        async move {
            organizations::organization_create()
                .bind(client, &"Acme", &slug, &json!({}), &json!({}))
                .one()
                .await
                .map_err(Error::from)
        }
    };
    create("acme").await.unwrap();
    assert_eq!(
        create("acme").await.unwrap_err().constraint(),
        Some("organizations_slug_key")
    );
    assert_eq!(
        create("Not A Slug").await.unwrap_err().constraint(),
        Some("organizations_slug_format")
    );
}
