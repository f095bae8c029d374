//! The forms engine (docs/REQUIREMENTS.md) as services use it: every test acts through the
//! application role with a tenant and a user set. Every rule broken on purpose with
//! its exact error and nothing written, publishes under concurrency, events committed
//! with their rows, other tenants refused, and the validator against the official
//! JSON Schema Test Suite.

use std::path::Path;
use std::sync::Arc;

use groundwork::Error;
use groundwork::client::Params;
use groundwork::forms::{FormError, ValidationError};
use groundwork::queries::forms::form_definitions::{
    FormDefinition, FormDefinitionListParams, FormDefinitionUpdateParams, form_definition_archive,
    form_definition_get, form_definition_list, form_definition_new_version,
    form_definition_publish, form_definition_update,
};
use groundwork::queries::forms::form_submissions::{
    FormSubmission, FormSubmissionCreateByFormNameParams, FormSubmissionCreateParams,
    FormSubmissionListByFormParams, FormSubmissionListByPriorityParams,
    FormSubmissionTransitionParams, FormSubmissionUpdateDataParams, form_submission_create,
    form_submission_create_by_form_name, form_submission_get, form_submission_list_by_form,
    form_submission_list_by_priority, form_submission_submit, form_submission_transition,
    form_submission_update_data,
};
use groundwork::tenant::Tenant;
use groundwork_testing::fixtures::{FormFixture, SubmissionFixture};
use groundwork_testing::{DbRole, TestDb};
use serde_json::{Value, json};
use uuid::Uuid;

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/forms")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The service-request form of the shared fixtures, as a definition.
fn service_request() -> Value {
    json!({ "schema": fixture("typical.schema.json"), "ui": { "order": ["title", "priority"] } })
}

fn simple(schema: Value) -> Value {
    json!({ "schema": schema })
}

/// Runs `work` as the application role for `tenant`, committing when it succeeds.
async fn act<T, F>(db: &TestDb, tenant: Tenant, work: F) -> Result<T, Error>
where
    F: AsyncFnOnce(&deadpool_postgres::Transaction<'_>) -> Result<T, Error>,
{
    db.with_tenant(DbRole::App, tenant, work).await
}

async fn publish(db: &TestDb, tenant: Tenant, id: Uuid) -> Result<FormDefinition, Error> {
    act(db, tenant, async |tx| {
        Ok(form_definition_publish().bind(tx, &id).one().await?)
    })
    .await
}

async fn transition(
    db: &TestDb,
    tenant: Tenant,
    id: Uuid,
    status: &str,
) -> Result<FormSubmission, Error> {
    act(db, tenant, async |tx| {
        Ok(form_submission_transition()
            .params(tx, &FormSubmissionTransitionParams { status, id })
            .one()
            .await?)
    })
    .await
}

async fn submission(db: &TestDb, tenant: Tenant, id: Uuid) -> FormSubmission {
    act(db, tenant, async |tx| {
        Ok(form_submission_get().bind(tx, &id).one().await?)
    })
    .await
    .unwrap()
}

async fn new_version(db: &TestDb, tenant: Tenant, id: Uuid) -> Result<FormDefinition, Error> {
    act(db, tenant, async |tx| {
        Ok(form_definition_new_version().bind(tx, &id).one().await?)
    })
    .await
}

async fn update_data(
    db: &TestDb,
    tenant: Tenant,
    id: Uuid,
    data: Value,
) -> Result<FormSubmission, Error> {
    act(db, tenant, async |tx| {
        Ok(form_submission_update_data()
            .params(tx, &FormSubmissionUpdateDataParams { data: &data, id })
            .one()
            .await?)
    })
    .await
}

/// `sql` as the application role for `tenant`, its first column of every row.
async fn query_as_app<T>(db: &TestDb, tenant: Tenant, sql: &str, id: Uuid) -> Vec<T>
where
    T: for<'a> tokio_postgres::types::FromSql<'a> + Send + 'static,
{
    act(db, tenant, async |tx| {
        let rows = tx.query(sql, &[&id]).await?;
        Ok(rows.iter().map(|r| r.get::<_, T>(0)).collect())
    })
    .await
    .unwrap()
}

/// The event types of a stream, oldest first, as the application role sees them.
async fn stream(db: &TestDb, tenant: Tenant, id: Uuid) -> Vec<String> {
    query_as_app(
        db,
        tenant,
        "SELECT type FROM eventstore.events WHERE aggregate_id = $1 ORDER BY aggregate_version",
        id,
    )
    .await
}

fn sqlstate(error: &FormError) -> &str {
    error.code().map(|c| c.code()).unwrap_or("none")
}

/// The JSON pointer an [`FormError::InvalidSchema`] names.
fn schema_path(err: &FormError) -> Option<&str> {
    match err {
        FormError::InvalidSchema { schema_path, .. } => Some(schema_path),
        _ => None,
    }
}

/// The errors a [`FormError::ValidationFailed`] lists.
fn validation_errors(err: &FormError) -> Vec<ValidationError> {
    match err {
        FormError::ValidationFailed { errors, .. } => errors.clone(),
        _ => Vec::new(),
    }
}

/// An organization with its owner, and a second tenant.
async fn two_tenants() -> (Arc<TestDb>, Tenant, Tenant) {
    let db = TestDb::builder().pool_size(8).build().await;
    let [a, b] = db.tenants().await;
    (Arc::new(db), a.tenant(), b.tenant())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_definition_goes_draft_active_archived_and_only_a_draft_changes() {
    let (db, a, _) = two_tenants().await;
    let v1 = db
        .insert(
            FormFixture::new(a)
                .name("Service request")
                .definition(service_request()),
        )
        .await;
    assert_eq!(
        (v1.version, v1.status.as_str(), v1.revision),
        (1, "draft", 1)
    );
    assert_eq!(v1.created_by, a.user_id);

    // A draft is edited; its schema is checked again.
    let edited = simple(json!({"type": "object", "properties": {"title": {"type": "string"}}}));
    let v1 = act(&db, a, async |tx| {
        Ok(form_definition_update()
            .params(
                tx,
                &FormDefinitionUpdateParams {
                    definition: &edited,
                    assert_formats: true,
                    id: v1.id,
                },
            )
            .one()
            .await?)
    })
    .await
    .unwrap();
    assert_eq!(
        (v1.definition.clone(), v1.assert_formats, v1.revision),
        (edited.clone(), true, 2)
    );

    let v1 = publish(&db, a, v1.id).await.unwrap();
    assert_eq!(v1.status, "active");
    assert!(v1.published_at.is_some());

    // Active: no edits (WF004), no second publish (WF005), nothing written.
    let err = FormError::from(
        act(&db, a, async |tx| {
            Ok(form_definition_update()
                .params(
                    tx,
                    &FormDefinitionUpdateParams {
                        definition: &json!({"schema": true}),
                        assert_formats: false,
                        id: v1.id,
                    },
                )
                .one()
                .await?)
        })
        .await
        .unwrap_err(),
    );
    assert!(matches!(err, FormError::Immutable(_)), "{err}");
    let err = FormError::from(publish(&db, a, v1.id).await.unwrap_err());
    assert!(matches!(err, FormError::InvalidTransition(_)), "{err}");

    // A new version starts as a draft copy; publishing it archives version 1.
    let v2 = new_version(&db, a, v1.id).await.unwrap();
    assert_eq!(
        (v2.name.as_str(), v2.version, v2.status.as_str()),
        ("Service request", 2, "draft")
    );
    assert_eq!(v2.definition, edited);
    let v2 = publish(&db, a, v2.id).await.unwrap();
    assert_eq!(v2.status, "active");
    let v1 = act(&db, a, async |tx| {
        Ok(form_definition_get().bind(tx, &v1.id).one().await?)
    })
    .await
    .unwrap();
    assert_eq!(v1.status, "archived");
    assert!(v1.archived_at.is_some());

    // Archived: frozen, and it does not come back.
    for sql in [
        "UPDATE forms.form_definitions SET definition = '{\"schema\": true}' WHERE id = $1",
        "UPDATE forms.form_definitions SET assert_formats = false WHERE id = $1",
    ] {
        let err = FormError::from(exec(&db, a, sql, v1.id).await.unwrap_err());
        assert_eq!(sqlstate(&err), "WF004", "{sql}: {err}");
    }
    for (sql, id) in [
        (
            "UPDATE forms.form_definitions SET status = 'active' WHERE id = $1",
            v1.id,
        ),
        (
            "UPDATE forms.form_definitions SET status = 'draft' WHERE id = $1",
            v2.id,
        ),
    ] {
        let err = FormError::from(exec(&db, a, sql, id).await.unwrap_err());
        assert_eq!(sqlstate(&err), "WF005", "{sql}: {err}");
    }
    let err = FormError::from(
        exec(
            &db,
            a,
            "DELETE FROM forms.form_definitions WHERE id = $1",
            v2.id,
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(sqlstate(&err), "WF004", "{err}");

    // Archiving the active version leaves none active.
    let v2 = act(&db, a, async |tx| {
        Ok(form_definition_archive().bind(tx, &v2.id).one().await?)
    })
    .await
    .unwrap();
    assert_eq!(v2.status, "archived");

    // Each change is an event on the definition's stream, with the actor.
    assert_eq!(
        stream(&db, a, v1.id).await,
        [
            "form.created",
            "form.edited",
            "form.published",
            "form.archived"
        ]
    );
    assert_eq!(
        stream(&db, a, v2.id).await,
        ["form.created", "form.published", "form.archived"]
    );
    let actors: Vec<Value> = query_as_app(
        &db,
        a,
        "SELECT metadata -> 'actor_id' FROM eventstore.events WHERE aggregate_id = $1",
        v1.id,
    )
    .await;
    assert!(
        actors.iter().all(|m| *m == json!(a.user_id.unwrap())),
        "{actors:?}"
    );
    let kinds: Vec<String> = query_as_app(
        &db,
        a,
        "SELECT DISTINCT aggregate_type FROM eventstore.events WHERE aggregate_id = $1",
        v1.id,
    )
    .await;
    assert_eq!(kinds, ["form"]);
}

/// Runs one statement with one uuid parameter as the application role for `tenant`.
async fn exec(db: &TestDb, tenant: Tenant, sql: &str, id: Uuid) -> Result<u64, Error> {
    act(db, tenant, async |tx| Ok(tx.execute(sql, &[&id]).await?)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definitions_are_created_as_drafts_with_names_of_1_to_100_characters() {
    let (db, a, _) = two_tenants().await;
    let org = a.organization_id.unwrap();
    let cases: [(&str, &str, Option<&str>); 5] = [
        // A definition starts as a draft.
        (
            "INSERT INTO forms.form_definitions (name, definition, status) VALUES ('x', '{\"schema\": true}', 'active')",
            "WF005",
            None,
        ),
        (
            "INSERT INTO forms.form_definitions (name, definition) VALUES ('', '{\"schema\": true}')",
            "23514",
            Some("form_definitions_name_length"),
        ),
        (
            "INSERT INTO forms.form_definitions (name, definition) VALUES (repeat('é', 101), '{\"schema\": true}')",
            "23514",
            Some("form_definitions_name_length"),
        ),
        (
            "INSERT INTO forms.form_definitions (name, definition) VALUES ('x', '{\"ui\": {}}')",
            "WF001",
            None,
        ),
        (
            "INSERT INTO forms.form_definitions (name, definition) VALUES ('x', '{\"schema\": true}'); UPDATE forms.form_definitions SET status = 'published'",
            "WF005",
            None,
        ),
    ];
    for (sql, code, constraint) in cases {
        let err = FormError::from(
            act(&db, a, async |tx| Ok(tx.batch_execute(sql).await?))
                .await
                .unwrap_err(),
        );
        assert_eq!(sqlstate(&err), code, "{err}");
        assert_eq!(err.constraint(), constraint, "{err}");
    }
    // 100 characters (of any width) is fine; version 1 of a name is unique.
    db.insert(FormFixture::new(a).name("é".repeat(100))).await;
    let dup = format!(
        "INSERT INTO forms.form_definitions (name, version, definition) VALUES ('{}', 1, '{{\"schema\": true}}')",
        "é".repeat(100)
    );
    let err = FormError::from(
        act(&db, a, async |tx| Ok(tx.execute(dup.as_str(), &[]).await?))
            .await
            .unwrap_err(),
    );
    assert!(
        matches!(err, FormError::Database(Error::Conflict(_))),
        "{err}"
    );
    assert_eq!(
        err.constraint(),
        Some("form_definitions_organization_id_name_version_key")
    );
    // The application cannot set its own organization, revision or timestamps.
    for column in ["organization_id", "revision", "published_at", "created_by"] {
        let sql = format!(
            "UPDATE forms.form_definitions SET {column} = {column} WHERE organization_id = '{org}'"
        );
        let err = FormError::from(
            act(&db, a, async |tx| Ok(tx.execute(sql.as_str(), &[]).await?))
                .await
                .unwrap_err(),
        );
        assert_eq!(sqlstate(&err), "42501", "{column}: {err}");
    }
    // Oversized: refused before anything is parsed.
    let huge = simple(json!({"description": "x".repeat(600_000)}));
    let err = FormError::from(
        db.try_insert(FormFixture::new(a).definition(huge))
            .await
            .unwrap_err(),
    );
    assert!(
        matches!(err, FormError::Database(Error::Invalid(_))),
        "{err}"
    );
    assert_eq!(err.constraint(), Some("form_definitions_definition_size"));
    assert_eq!(db.count("forms.form_definitions").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_is_checked_when_saved_and_refused_with_the_path_of_the_problem() {
    let (db, a, _) = two_tenants().await;
    let cases = [
        (json!({"type": "strnig"}), "/type"),
        (json!({"type": []}), "/type"),
        (
            json!({"properties": {"a/b": {"minLength": -1}}}),
            "/properties/a~1b/minLength",
        ),
        (
            json!({"properties": {"x": {"maxItems": 1.5}}}),
            "/properties/x/maxItems",
        ),
        (json!({"required": ["a", "a"]}), "/required"),
        (json!({"items": {"pattern": "("}}), "/items/pattern"),
        (
            json!({"patternProperties": {"[": true}}),
            "/patternProperties/[",
        ),
        (json!({"allOf": []}), "/allOf"),
        (json!({"anyOf": [{"type": "string"}, 3]}), "/anyOf/1"),
        (json!({"multipleOf": 0}), "/multipleOf"),
        (json!({"$ref": "#/$defs/missing"}), "/$ref"),
        (json!({"$defs": {"a": {"enum": 1}}}), "/$defs/a/enum"),
        (
            json!({"properties": {"a": {"unevaluatedProperties": 3}}}),
            "/properties/a/unevaluatedProperties",
        ),
        (json!({"unevaluatedItems": []}), "/unevaluatedItems"),
        (
            json!({"properties": {"a": {"$id": "https://example.com/a#top"}}}),
            "/properties/a/$id",
        ),
        (
            json!({"$defs": {"a": {"$anchor": "1st"}}}),
            "/$defs/a/$anchor",
        ),
        (json!({"$dynamicAnchor": "a b"}), "/$dynamicAnchor"),
        // References go nowhere outside the document: remote ones are refused.
        (json!({"$ref": "https://example.com/schema"}), "/$ref"),
        (
            json!({"items": {"$ref": "other.json#/$defs/a"}}),
            "/items/$ref",
        ),
        (
            json!({"$id": "https://example.com/forms/a.json", "$defs": {"b": {"$id": "b.json"}}, "$ref": "c.json"}),
            "/$ref",
        ),
        (json!({"$ref": "#nowhere"}), "/$ref"),
        (json!({"$dynamicRef": "#meta"}), "/$dynamicRef"),
        // Unicode property escapes: the supported ones only.
        (json!({"pattern": "^\\p{Greek}+$"}), "/pattern"),
        (
            json!({"patternProperties": {"^\\p{Sc}": true}}),
            "/patternProperties/^\\p{Sc}",
        ),
        (json!({"pattern": "[\\P{L}x]"}), "/pattern"),
        (
            json!({"$schema": "http://json-schema.org/draft-07/schema#"}),
            "/$schema",
        ),
        (
            json!({"dependentRequired": {"a": [1]}}),
            "/dependentRequired/a",
        ),
        (json!({"propertie": {}}), "/propertie"),
        (json!(3), ""),
    ];
    for (schema, path) in cases {
        let err = FormError::from(
            db.try_insert(FormFixture::new(a).schema(schema.clone()))
                .await
                .unwrap_err(),
        );
        assert!(
            matches!(err, FormError::InvalidSchema { .. }),
            "{schema}: {err}"
        );
        assert_eq!(schema_path(&err), Some(path), "{schema}: {err}");
    }
    // A $ref loop that never reaches a value is refused too.
    let looping = json!({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"});
    let err = FormError::from(
        db.try_insert(FormFixture::new(a).schema(looping))
            .await
            .unwrap_err(),
    );
    assert!(matches!(err, FormError::InvalidSchema { .. }), "{err}");
    // Annotations, x- extensions, recursion through a value, resources, anchors,
    // dynamic references, unevaluated* and property escapes are fine.
    let fine = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://example.com/forms/tree",
        "title": "Tree", "description": "d", "$comment": "c", "x-widget": {"kind": "tree"},
        "type": "object",
        "$dynamicAnchor": "node",
        "properties": {
            "children": {"type": "array", "items": {"$dynamicRef": "#node"}},
            "when": {"format": "date", "default": "2026-01-01", "examples": ["2026-02-02"], "deprecated": false},
            "label": {"$ref": "label.json"},
            "owner": {"$ref": "#person"},
        },
        "unevaluatedProperties": false,
        "$defs": {
            "label": {"$id": "label.json", "type": "string", "pattern": "^\\p{Lu}\\p{Ll}*$"},
            "person": {"$anchor": "person", "type": "string"},
        },
    });
    db.insert(FormFixture::new(a).schema(fine)).await;
    assert_eq!(db.count("forms.form_definitions").await, 1);
    // An edit of a draft is checked the same way, and leaves the draft as it was.
    let tree = query_as_app::<Uuid>(
        &db,
        a,
        "SELECT id FROM forms.form_definitions WHERE id <> $1",
        Uuid::nil(),
    )
    .await[0];
    let err = FormError::from(exec(&db, a, "UPDATE forms.form_definitions SET definition = '{\"schema\": {\"minimum\": \"1\"}}' WHERE id = $1", tree)
        .await
        .unwrap_err());
    assert_eq!(schema_path(&err), Some("/minimum"), "{err}");
    let kept: Vec<Value> = query_as_app(
        &db,
        a,
        "SELECT definition -> 'schema' -> 'title' FROM forms.form_definitions WHERE id = $1",
        tree,
    )
    .await;
    assert_eq!(kept, [json!("Tree")]);
}

/// An active service-request form of the shared fixtures.
async fn active_form(db: &TestDb, tenant: Tenant) -> FormDefinition {
    db.insert(
        FormFixture::new(tenant)
            .definition(service_request())
            .published(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_are_validated_with_every_error_and_nothing_written() {
    let (db, a, _) = two_tenants().await;
    let form = active_form(&db, a).await;
    let ok = db
        .try_insert(
            SubmissionFixture::new(a, form.id)
                .data(fixture("typical.valid.json"))
                .status("submitted"),
        )
        .await
        .unwrap();
    assert_eq!(
        ok.title.as_deref(),
        fixture("typical.valid.json")["title"].as_str()
    );
    assert_eq!(
        ok.priority,
        fixture("typical.valid.json")["priority"]
            .as_i64()
            .map(|p| p as i32)
    );
    assert_eq!((ok.form_version, ok.status.as_str()), (1, "submitted"));
    assert!(ok.submitted_at.is_some());

    let before = db.count("eventstore.events").await;
    let err = FormError::from(
        db.try_insert(
            SubmissionFixture::new(a, form.id)
                .data(fixture("typical.invalid.json"))
                .status("submitted"),
        )
        .await
        .unwrap_err(),
    );
    assert!(matches!(err, FormError::ValidationFailed { .. }), "{err}");
    let errors = validation_errors(&err);
    let at = |path: &str, keyword: &str| {
        errors
            .iter()
            .any(|e: &ValidationError| e.instance_path == path && e.keyword == keyword)
    };
    assert!(at("/priority", "maximum"), "{errors:#?}");
    assert!(at("/requester/email", "pattern"), "{errors:#?}");
    assert!(at("/items/2/quantity", "minimum"), "{errors:#?}");
    assert!(at("/shipping", "required"), "{errors:#?}");
    assert!(at("/unexpected", "additionalProperties"), "{errors:#?}");
    assert!(errors.len() >= 5);
    assert!(
        errors
            .iter()
            .all(|e| e.schema_path.starts_with('/') && !e.message.is_empty())
    );
    assert_eq!(db.count("forms.form_submissions").await, 1);
    assert_eq!(db.count("eventstore.events").await, before);

    // Updates are validated too, and a failed one leaves the data as it was.
    let mut bad = fixture("typical.valid.json");
    bad["requester"]["name"] = json!("");
    let id = ok.id;
    let err = FormError::from(update_data(&db, a, id, bad).await.unwrap_err());
    assert_eq!(
        validation_errors(&err),
        [ValidationError {
            instance_path: "/requester/name".into(),
            schema_path: "/properties/requester/properties/name/minLength".into(),
            keyword: "minLength".into(),
            message: "the string is 0 characters long, shorter than the minimum of 1".into(),
        }]
    );
    let kept = submission(&db, a, id).await;
    assert_eq!(kept.data, fixture("typical.valid.json"));
    assert_eq!(kept.revision, 1);

    // Oversized data is refused before validation.
    let mut huge = fixture("typical.valid.json");
    huge["description"] = json!("x".repeat(600_000));
    let err = FormError::from(
        db.try_insert(SubmissionFixture::new(a, form.id).data(huge))
            .await
            .unwrap_err(),
    );
    assert!(
        matches!(err, FormError::Database(Error::Invalid(_))),
        "{err}"
    );
    assert_eq!(err.constraint(), Some("form_submissions_data_size"));
    assert_eq!(db.count("forms.form_submissions").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_integer_priority_is_a_validation_error_on_priority() {
    let (db, a, _) = two_tenants().await;
    // A schema that says nothing about priority: the column's type still holds.
    let form = db.insert(FormFixture::new(a).published()).await;
    for priority in [
        json!("high"),
        json!(2.5),
        json!(1e12),
        json!(true),
        json!([1]),
    ] {
        let err = FormError::from(
            db.try_insert(
                SubmissionFixture::new(a, form.id)
                    .data(json!({"title": "t", "priority": priority})),
            )
            .await
            .unwrap_err(),
        );
        assert!(
            matches!(err, FormError::ValidationFailed { .. }),
            "{priority}: {err}"
        );
        let errors = validation_errors(&err);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].instance_path, "/priority");
    }
    assert_eq!(db.count("forms.form_submissions").await, 0);
    // A whole number written as 3.0 is an integer; no priority is fine.
    let three = db
        .insert(SubmissionFixture::new(a, form.id).data(json!({"title": "t", "priority": 3.0})))
        .await;
    assert_eq!(three.priority, Some(3));
    let none = db
        .insert(SubmissionFixture::new(a, form.id).data(json!({"title": {"nested": true}})))
        .await;
    assert_eq!(
        (none.priority, none.title.as_deref()),
        (None, Some("{\"nested\": true}"))
    );
    // The typical form's own rule reports its error on /priority as well.
    let typical = active_form(&db, a).await;
    let mut data = fixture("typical.valid.json");
    data["priority"] = json!("urgent");
    let err = FormError::from(
        db.try_insert(SubmissionFixture::new(a, typical.id).data(data))
            .await
            .unwrap_err(),
    );
    assert!(
        validation_errors(&err)
            .iter()
            .all(|e| e.instance_path == "/priority"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_go_to_the_active_version_only() {
    let (db, a, _) = two_tenants().await;
    let draft = db.insert(FormFixture::new(a).name("Survey")).await;
    let err = FormError::from(
        db.try_insert(SubmissionFixture::new(a, draft.id).status("submitted"))
            .await
            .unwrap_err(),
    );
    assert!(matches!(err, FormError::FormNotActive(_)), "{err}");
    let v1 = publish(&db, a, draft.id).await.unwrap();
    let v2 = new_version(&db, a, v1.id).await.unwrap();
    publish(&db, a, v2.id).await.unwrap();
    // Version 1 is archived now.
    let err = FormError::from(
        db.try_insert(SubmissionFixture::new(a, v1.id).status("submitted"))
            .await
            .unwrap_err(),
    );
    assert!(matches!(err, FormError::FormNotActive(_)), "{err}");
    // By name: the active version; none active is WF003 too.
    let by_name = |name: &'static str| {
        act(&db, a, async move |tx| {
            Ok(form_submission_create_by_form_name()
                .params(
                    tx,
                    &FormSubmissionCreateByFormNameParams {
                        form_name: name,
                        data: json!({}),
                        status: "draft",
                    },
                )
                .one()
                .await?)
        })
    };
    let s = by_name("Survey").await.unwrap();
    assert_eq!((s.form_definition_id, s.form_version), (v2.id, 2));
    let err = FormError::from(by_name("Nope").await.unwrap_err());
    assert!(matches!(err, FormError::FormNotActive(_)), "{err}");
    // A submission starts as a draft or submitted; it cannot name another version.
    let err = FormError::from(
        db.try_insert(SubmissionFixture::new(a, v2.id).status("approved"))
            .await
            .unwrap_err(),
    );
    assert!(matches!(err, FormError::InvalidTransition(_)), "{err}");
    let sql = format!(
        "INSERT INTO forms.form_submissions (form_definition_id, form_version, data) VALUES ('{}', 1, '{{}}')",
        v2.id
    );
    let err = FormError::from(
        act(&db, a, async |tx| Ok(tx.execute(sql.as_str(), &[]).await?))
            .await
            .unwrap_err(),
    );
    assert!(
        matches!(err, FormError::Database(Error::MissingReference(_))),
        "{err}"
    );
    assert_eq!(
        err.constraint(),
        Some("form_submissions_form_definition_id_fkey")
    );
    assert_eq!(db.count("forms.form_submissions").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_composite_key_ties_a_submission_to_its_definitions_version() {
    let (db, a, _) = two_tenants().await;
    let form = db
        .insert(FormFixture::new(a).schema(json!(true)).published())
        .await;
    let s = db.insert(SubmissionFixture::new(a, form.id)).await;
    // Even the owner, bypassing the triggers' bookkeeping, cannot point a submission at
    // a version its definition does not have.
    let owner = db.pool(DbRole::Owner).get().await.unwrap();
    let err = FormError::from(Error::from(
        owner
            .execute(
                "UPDATE forms.form_submissions SET form_version = 2 WHERE id = $1",
                &[&s.id],
            )
            .await
            .unwrap_err(),
    ));
    // The trigger refuses it first; without the trigger the key would.
    assert_eq!(sqlstate(&err), "WF005", "{err}");
    owner
        .batch_execute("ALTER TABLE forms.form_submissions DISABLE TRIGGER form_submissions_check")
        .await
        .unwrap();
    let err = Error::from(
        owner
            .execute(
                "UPDATE forms.form_submissions SET form_version = 2 WHERE id = $1",
                &[&s.id],
            )
            .await
            .unwrap_err(),
    );
    owner
        .batch_execute("ALTER TABLE forms.form_submissions ENABLE TRIGGER form_submissions_check")
        .await
        .unwrap();
    assert!(matches!(err, Error::MissingReference(_)), "{err}");
    assert_eq!(
        err.constraint(),
        Some("form_submissions_form_definition_id_fkey")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submission_statuses_move_only_along_the_allowed_transitions() {
    let (db, a, _) = two_tenants().await;
    let form = db.insert(FormFixture::new(a).published()).await;
    let statuses = ["draft", "submitted", "approved", "rejected", "withdrawn"];
    let allowed = [
        ("draft", "submitted"),
        ("draft", "withdrawn"),
        ("submitted", "approved"),
        ("submitted", "rejected"),
        ("submitted", "withdrawn"),
    ];
    // Reaches `status` from a new draft along allowed steps.
    let reach = |status: &'static str| {
        let db = db.clone();
        async move {
            let s = db.insert(SubmissionFixture::new(a, form.id)).await;
            let path: &[&str] = match status {
                "draft" => &[],
                "submitted" | "withdrawn" => &["submitted"],
                _ => &["submitted"],
            };
            for step in path {
                transition(&db, a, s.id, step).await.unwrap();
            }
            if matches!(status, "approved" | "rejected" | "withdrawn") {
                transition(&db, a, s.id, status).await.unwrap();
            }
            s.id
        }
    };
    for from in statuses {
        for to in statuses {
            if from == to {
                continue;
            }
            let id = reach(from).await;
            let result = transition(&db, a, id, to).await;
            if allowed.contains(&(from, to)) {
                let s = result.unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
                assert_eq!(s.status, to);
                assert_eq!(
                    s.decided_at.is_some(),
                    matches!(to, "approved" | "rejected" | "withdrawn")
                );
            } else {
                let err = FormError::from(result.unwrap_err());
                assert!(
                    matches!(err, FormError::InvalidTransition(_)),
                    "{from} -> {to}: {err}"
                );
                let s = submission(&db, a, id).await;
                assert_eq!(s.status, from, "{from} -> {to} changed the row");
            }
        }
    }
    // Decided submissions keep their data too.
    let id = reach("approved").await;
    let err = FormError::from(
        update_data(&db, a, id, json!({"late": true}))
            .await
            .unwrap_err(),
    );
    assert!(matches!(err, FormError::InvalidTransition(_)), "{err}");
    // The submit query is draft -> submitted; a second submit is refused.
    let id = reach("draft").await;
    let submitted = act(&db, a, async |tx| {
        Ok(form_submission_submit().bind(tx, &id).one().await?)
    })
    .await
    .unwrap();
    assert!(submitted.submitted_at.is_some());
    assert_eq!(
        stream(&db, a, id).await,
        ["form_submission.created", "form_submission.submitted"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishes_of_two_drafts_leave_exactly_one_active() {
    let (db, a, _) = two_tenants().await;
    for round in 0..8 {
        let name = format!("Race {round}");
        let first = db
            .insert(
                FormFixture::new(a)
                    .name(&name)
                    .schema(json!({"title": "first"})),
            )
            .await;
        let second = db
            .insert(
                FormFixture::new(a)
                    .name(&name)
                    .schema(json!({"title": "second"})),
            )
            .await;
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let tasks = [first.id, second.id].map(|id| {
            let (db, barrier) = (db.clone(), barrier.clone());
            tokio::spawn(async move {
                let mut client = db.pool(DbRole::App).get().await.unwrap();
                let tx = groundwork::tenant::begin(&mut client, a).await.unwrap();
                barrier.wait().await;
                let published = form_definition_publish().bind(&tx, &id).one().await;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                tx.commit().await.unwrap();
                published.map_err(Error::from)
            })
        });
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let statuses: Vec<String> = query_as_app(
            &db,
            a,
            "SELECT status FROM forms.form_definitions WHERE name = (SELECT name FROM forms.form_definitions WHERE id = $1) ORDER BY status",
            first.id,
        )
        .await;
        assert_eq!(statuses, ["active", "archived"], "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submissions_events_and_row_commit_or_roll_back_together() {
    let (db, a, _) = two_tenants().await;
    let form = db.insert(FormFixture::new(a).published()).await;
    let events = db.count("eventstore.events").await;

    // Rolled back: neither the row nor its event.
    let mut client = db.pool(DbRole::App).get().await.unwrap();
    let tx = groundwork::tenant::begin(&mut client, a).await.unwrap();
    let s = form_submission_create()
        .params(
            &tx,
            &FormSubmissionCreateParams {
                form_definition_id: form.id,
                data: json!({}),
                status: "draft",
            },
        )
        .one()
        .await
        .unwrap();
    let inside: i64 = tx
        .query_one(
            "SELECT count(*) FROM eventstore.events WHERE aggregate_id = $1",
            &[&s.id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(inside, 1);
    tx.rollback().await.unwrap();
    assert_eq!(db.count("forms.form_submissions").await, 0);
    assert_eq!(db.count("eventstore.events").await, events);

    // An event that cannot be appended takes the row with it: the stream already
    // exists under another aggregate type.
    let id = Uuid::new_v4();
    act(&db, a, async |tx| {
        tx.execute(
            "SELECT eventstore.append_to_stream('something_else', $1, 0, '[{\"type\": \"x.happened\", \"data\": {}}]')",
            &[&id],
        )
        .await?;
        Ok(())
    })
    .await
    .unwrap();
    let sql = format!(
        "INSERT INTO forms.form_submissions (id, form_definition_id, data) VALUES ('{id}', '{}', '{{}}')",
        form.id
    );
    let err = FormError::from(
        act(&db, a, async |tx| Ok(tx.execute(sql.as_str(), &[]).await?))
            .await
            .unwrap_err(),
    );
    assert_eq!(sqlstate(&err), "22023", "{err}");
    assert_eq!(db.count("forms.form_submissions").await, 0);

    // Committed: the row and its events, one per change, versions 1..n.
    let s = db
        .insert(SubmissionFixture::new(a, form.id).data(json!({"n": 1})))
        .await;
    let id = s.id;
    act(&db, a, async |tx| {
        form_submission_update_data()
            .params(
                tx,
                &FormSubmissionUpdateDataParams {
                    data: json!({"n": 2}),
                    id,
                },
            )
            .one()
            .await?;
        // Writing the same values is not a change.
        form_submission_update_data()
            .params(
                tx,
                &FormSubmissionUpdateDataParams {
                    data: json!({"n": 2}),
                    id,
                },
            )
            .one()
            .await?;
        form_submission_submit().bind(tx, &id).one().await?;
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(
        stream(&db, a, id).await,
        [
            "form_submission.created",
            "form_submission.data_changed",
            "form_submission.submitted"
        ]
    );
    let versions: Vec<i32> = query_as_app(
        &db,
        a,
        "SELECT aggregate_version FROM eventstore.events WHERE aggregate_id = $1 ORDER BY 1",
        id,
    )
    .await;
    assert_eq!(versions, [1, 2, 3]);
    let s = submission(&db, a, id).await;
    assert_eq!(s.revision, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenant_sees_and_changes_nothing() {
    let (db, a, b) = two_tenants().await;
    let form = active_form(&db, a).await;
    let s = db
        .try_insert(
            SubmissionFixture::new(a, form.id)
                .data(fixture("typical.valid.json"))
                .status("submitted"),
        )
        .await
        .unwrap();

    for (sql, id) in [
        (
            "SELECT count(*) FROM forms.form_definitions WHERE id = $1",
            form.id,
        ),
        (
            "SELECT count(*) FROM forms.form_submissions WHERE id = $1",
            s.id,
        ),
        (
            "SELECT count(*) FROM eventstore.events WHERE aggregate_id = $1",
            s.id,
        ),
    ] {
        let seen: Vec<i64> = query_as_app(&db, b, sql, id).await;
        assert_eq!(seen, [0], "{sql}");
    }
    for (sql, id) in [
        (
            "UPDATE forms.form_definitions SET status = 'archived' WHERE id = $1",
            form.id,
        ),
        ("DELETE FROM forms.form_definitions WHERE id = $1", form.id),
        (
            "UPDATE forms.form_submissions SET status = 'approved' WHERE id = $1",
            s.id,
        ),
        (
            "UPDATE forms.form_submissions SET data = '{}' WHERE id = $1",
            s.id,
        ),
        ("DELETE FROM forms.form_submissions WHERE id = $1", s.id),
    ] {
        assert_eq!(exec(&db, b, sql, id).await.unwrap(), 0, "{sql}");
    }
    // Submitting to, publishing or copying another tenant's form finds nothing.
    let err = FormError::from(
        db.try_insert(
            SubmissionFixture::new(b, form.id)
                .data(fixture("typical.valid.json"))
                .status("submitted"),
        )
        .await
        .unwrap_err(),
    );
    assert!(
        matches!(err, FormError::Database(Error::MissingReference(_))),
        "{err}"
    );
    let err = FormError::from(publish(&db, b, form.id).await.unwrap_err());
    assert_eq!(sqlstate(&err), "P0002", "{err}");
    let copied = act(&db, b, async |tx| {
        Ok(form_definition_new_version()
            .bind(tx, &form.id)
            .opt()
            .await?)
    })
    .await
    .unwrap();
    assert!(copied.is_none());
    let validated = act(&db, b, async |tx| {
        Ok(groundwork::forms::validate(tx, form.id, &json!({})).await?)
    })
    .await
    .unwrap();
    assert_eq!(validated, None);
    // Naming another tenant's definition directly is refused by its key.
    let err = FormError::from(
        act(&db, b, async |tx| {
            Ok(tx
            .execute(
                "INSERT INTO forms.form_submissions (form_definition_id, data) VALUES ($1, '{}')",
                &[&form.id],
            )
            .await?)
        })
        .await
        .unwrap_err(),
    );
    assert!(
        matches!(err, FormError::Database(Error::MissingReference(_))),
        "{err}"
    );
    // Without a tenant nothing is visible and nothing can be written.
    let none = Tenant::default();
    let seen: Vec<i64> = query_as_app(
        &db,
        none,
        "SELECT count(*) FROM forms.form_definitions WHERE id <> $1",
        Uuid::nil(),
    )
    .await;
    assert_eq!(seen, [0]);
    let err = FormError::from(db.try_insert(FormFixture::new(none)).await.unwrap_err());
    assert!(matches!(sqlstate(&err), "23502" | "42501"), "{err}");
    assert_eq!(db.count("forms.form_definitions").await, 1);
    assert_eq!(db.count("forms.form_submissions").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_list_by_form_status_and_priority_in_pages() {
    let (db, a, _) = two_tenants().await;
    let form = db
        .insert(
            FormFixture::new(a)
                .name("Tickets")
                .schema(json!({"type": "object", "properties": {"priority": {"type": "integer"}}}))
                .published(),
        )
        .await;
    for p in 0..25 {
        let status = if p % 5 == 0 { "draft" } else { "submitted" };
        db.try_insert(
            SubmissionFixture::new(a, form.id)
                .data(json!({"title": format!("t{p}"), "priority": p % 7}))
                .status(status),
        )
        .await
        .unwrap();
    }
    // By form and status, oldest first, in pages of 7.
    let mut seen = Vec::new();
    let mut after: Option<(chrono::DateTime<chrono::FixedOffset>, Uuid)> = None;
    loop {
        let page = act(&db, a, async |tx| {
            Ok(form_submission_list_by_form()
                .params(
                    tx,
                    &FormSubmissionListByFormParams {
                        form_definition_id: form.id,
                        status: "submitted",
                        after_created_at: after.map(|a| a.0),
                        after_id: after.map(|a| a.1),
                        limit: 7,
                    },
                )
                .all()
                .await?)
        })
        .await
        .unwrap();
        let Some(last) = page.last() else { break };
        after = Some((last.created_at, last.id));
        seen.extend(page.into_iter().map(|s| s.id));
    }
    assert_eq!(seen.len(), 20);
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), 20);
    // By priority, highest first.
    let mut priorities = Vec::new();
    let mut after: Option<(i32, Uuid)> = None;
    loop {
        let page = act(&db, a, async |tx| {
            Ok(form_submission_list_by_priority()
                .params(
                    tx,
                    &FormSubmissionListByPriorityParams {
                        status: "submitted",
                        after_priority: after.map(|a| a.0),
                        after_id: after.map(|a| a.1),
                        limit: 6,
                    },
                )
                .all()
                .await?)
        })
        .await
        .unwrap();
        let Some(last) = page.last() else { break };
        after = Some((last.priority.unwrap(), last.id));
        priorities.extend(page.into_iter().map(|s| s.priority.unwrap()));
    }
    assert_eq!(priorities.len(), 20);
    assert!(
        priorities.windows(2).all(|w| w[0] >= w[1]),
        "{priorities:?}"
    );
    // Definitions by name and version.
    let listed = act(&db, a, async |tx| {
        Ok(form_definition_list()
            .params(
                tx,
                &FormDefinitionListParams {
                    status: Some("active"),
                    after_name: None::<&str>,
                    after_version: None,
                    limit: 10,
                },
            )
            .all()
            .await?)
    })
    .await
    .unwrap();
    assert_eq!(
        listed.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
        ["Tickets"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forms_module_validates_without_writing_and_makes_new_versions() {
    let (db, a, _) = two_tenants().await;
    let form = active_form(&db, a).await;
    let errors = db
        .with_tenant(DbRole::App, a, async |tx| {
            Ok(groundwork::forms::validate(tx, form.id, &fixture("typical.invalid.json")).await?)
        })
        .await
        .unwrap()
        .unwrap();
    assert!(errors.len() >= 5, "{errors:#?}");
    assert_eq!(db.count("forms.form_submissions").await, 0);
    let next = db
        .with_tenant(DbRole::App, a, async |tx| {
            Ok(groundwork::forms::new_version(
                tx,
                form.id,
                &simple(json!({"type": "object"})),
                true,
            )
            .await?)
        })
        .await
        .unwrap();
    assert_eq!(
        (next.version, next.status.as_str(), next.assert_formats),
        (2, "draft", true)
    );
    // A bad schema for the new version leaves no draft behind.
    let err = FormError::from(
        db.with_tenant(DbRole::App, a, async |tx| {
            Ok(
                groundwork::forms::new_version(tx, form.id, &simple(json!({"type": 1})), false)
                    .await?,
            )
        })
        .await
        .unwrap_err(),
    );
    assert!(matches!(err, FormError::InvalidSchema { .. }), "{err}");
    assert_eq!(db.count("forms.form_definitions").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn formats_are_annotations_unless_the_form_asserts_them() {
    let (db, a, _) = two_tenants().await;
    let schema = json!({"type": "object", "properties": {
        "day": {"format": "date"}, "at": {"format": "date-time"}, "t": {"format": "time"},
        "mail": {"format": "email"}, "id": {"format": "uuid"}, "link": {"format": "uri"},
        "v4": {"format": "ipv4"}, "v6": {"format": "ipv6"}}});
    let bad = json!({"day": "2026-02-30", "at": "2026-01-01 10:00", "t": "25:00:00Z", "mail": "a@@b",
                     "id": "not-a-uuid", "link": "no scheme", "v4": "1.2.3.256", "v6": "1:::2"});
    let good = json!({"day": "2024-02-29", "at": "2026-01-01T10:00:00.5+01:00", "t": "23:59:60Z",
                      "mail": "ada@example.com", "id": "6f1c2a8e-3b4d-4c5e-8f90-1a2b3c4d5e6f",
                      "link": "https://example.com/a?b#c", "v4": "192.168.0.1", "v6": "::ffff:10.0.0.1"});
    let lax = db
        .insert(FormFixture::new(a).schema(schema.clone()).published())
        .await;
    db.insert(SubmissionFixture::new(a, lax.id).data(bad.clone()))
        .await;
    let strict = db
        .insert(
            FormFixture::new(a)
                .schema(schema)
                .assert_formats()
                .published(),
        )
        .await;
    db.insert(SubmissionFixture::new(a, strict.id).data(good))
        .await;
    let err = FormError::from(
        db.try_insert(SubmissionFixture::new(a, strict.id).data(bad))
            .await
            .unwrap_err(),
    );
    let mut paths: Vec<String> = validation_errors(&err)
        .into_iter()
        .map(|e| e.instance_path)
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        ["/at", "/day", "/id", "/link", "/mail", "/t", "/v4", "/v6"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_validator_is_callable_by_the_application_and_readonly_roles() {
    let (db, a, _) = two_tenants().await;
    for role in [DbRole::App, DbRole::Readonly] {
        let (valid, errors) = db
            .with_tenant(role, a, async |tx| {
                let row = tx
                    .query_one(
                        "SELECT forms.json_schema_valid($1, $2), forms.json_schema_errors($1, $2)",
                        &[
                            &fixture("typical.schema.json"),
                            &fixture("typical.invalid.json"),
                        ],
                    )
                    .await?;
                Ok((row.get::<_, bool>(0), row.get::<_, Value>(1)))
            })
            .await
            .unwrap();
        assert!(!valid);
        assert!(errors.as_array().unwrap().len() >= 5);
    }
    // The read-only role reads forms but writes none.
    let err = FormError::from(db
        .with_tenant(DbRole::Readonly, a, async |tx| {
            Ok(tx
                .execute("INSERT INTO forms.form_definitions (name, definition) VALUES ('x', '{\"schema\": true}')", &[])
                .await?)
        })
        .await
        .unwrap_err());
    assert_eq!(sqlstate(&err), "42501");
}

/// `forms.json_schema_valid` and `forms.json_schema_errors` on `schema` and `instance`,
/// as the application role for `tenant`.
async fn validate_as_app(
    db: &TestDb,
    tenant: Tenant,
    schema: &Value,
    instance: &Value,
) -> Result<(bool, Vec<ValidationError>), FormError> {
    let (schema, instance) = (schema.clone(), instance.clone());
    let row = act(db, tenant, async move |tx| {
        Ok(tx
            .query_one(
                "SELECT forms.json_schema_valid($1, $2), forms.json_schema_errors($1, $2)",
                &[&schema, &instance],
            )
            .await?)
    })
    .await?;
    let errors = serde_json::from_value(row.get::<_, Value>(1)).unwrap();
    Ok((row.get(0), errors))
}

/// An array nested `depth` deep: `[[[]]]` is 3. Built, not parsed: serde_json parses
/// at most 128 levels.
fn nested_array(depth: usize) -> Value {
    (1..depth).fold(json!([]), |inner, _| json!([inner]))
}

/// A schema of nested `items`, `depth` objects deep.
fn nested_schema(depth: usize) -> Value {
    (1..depth).fold(
        json!({"type": "array"}),
        |inner, _| json!({ "items": inner }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unevaluated_properties_close_a_form_assembled_from_parts() {
    let (db, a, _) = two_tenants().await;
    // A form builder's output: shared parts by reference, a conditional part, and
    // nothing else allowed.
    let schema = json!({
        "$defs": {
            "contact": {"properties": {"email": {"type": "string"}, "phone": {"type": "string"}}},
            "company": {"properties": {"kind": {"const": "company"}, "vat": {"type": "string"}}, "required": ["vat"]},
        },
        "type": "object",
        "allOf": [
            {"$ref": "#/$defs/contact"},
            {"properties": {"name": {"type": "string", "minLength": 1}}, "required": ["name"]},
        ],
        "if": {"properties": {"kind": {"const": "company"}}, "required": ["kind"]},
        "then": {"$ref": "#/$defs/company"},
        "unevaluatedProperties": false,
    });
    let form = db
        .insert(FormFixture::new(a).schema(schema.clone()).published())
        .await;
    for data in [
        json!({"name": "Ada", "email": "ada@example.com"}),
        json!({"name": "Ada Ltd", "kind": "company", "vat": "GB1"}),
    ] {
        db.try_insert(SubmissionFixture::new(a, form.id).data(data.clone()))
            .await
            .unwrap_or_else(|e| panic!("{data}: {e}"));
    }
    // "vat" is evaluated only when "then" applies; "nickname" never.
    let err = FormError::from(
        db.try_insert(
            SubmissionFixture::new(a, form.id)
                .data(json!({"name": "Ada", "vat": "GB1", "nickname": "A"})),
        )
        .await
        .unwrap_err(),
    );
    let mut errors = validation_errors(&err);
    errors.sort_by(|x, y| x.instance_path.cmp(&y.instance_path));
    assert_eq!(
        errors,
        [
            ValidationError {
                instance_path: "/nickname".into(),
                schema_path: "/unevaluatedProperties".into(),
                keyword: "unevaluatedProperties".into(),
                message: "the property \"nickname\" is not allowed (no subschema evaluates it)"
                    .into(),
            },
            ValidationError {
                instance_path: "/vat".into(),
                schema_path: "/unevaluatedProperties".into(),
                keyword: "unevaluatedProperties".into(),
                message: "the property \"vat\" is not allowed (no subschema evaluates it)".into(),
            },
        ]
    );
    assert_eq!(db.count("forms.form_submissions").await, 2);

    // unevaluatedItems, a schema for what is left, and both inside "not".
    let cases = [
        (
            json!({"prefixItems": [{"type": "string"}], "contains": {"type": "number"}, "unevaluatedItems": false}),
            json!(["a", 1, 2]),
            vec![],
        ),
        (
            json!({"prefixItems": [{"type": "string"}], "contains": {"type": "number"}, "unevaluatedItems": false}),
            json!(["a", 1, true]),
            vec![("/2", "/unevaluatedItems", "unevaluatedItems")],
        ),
        (
            json!({"properties": {"a": true}, "unevaluatedProperties": {"type": "integer"}}),
            json!({"a": "x", "b": 1, "c": "2"}),
            vec![("/c", "/unevaluatedProperties/type", "type")],
        ),
        (
            json!({"not": {"properties": {"a": true}, "unevaluatedProperties": false}}),
            json!({"a": 1, "b": 2}),
            vec![],
        ),
        (
            json!({"not": {"properties": {"a": true}, "unevaluatedProperties": false}}),
            json!({"a": 1}),
            vec![("", "/not", "not")],
        ),
    ];
    for (schema, instance, expected) in cases {
        let (valid, errors) = validate_as_app(&db, a, &schema, &instance).await.unwrap();
        let got: Vec<_> = errors
            .iter()
            .map(|e| {
                (
                    e.instance_path.as_str(),
                    e.schema_path.as_str(),
                    e.keyword.as_str(),
                )
            })
            .collect();
        assert_eq!(
            (valid, got),
            (expected.is_empty(), expected),
            "{schema} on {instance}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_resolve_by_id_anchor_and_dynamic_scope_inside_the_document() {
    let (db, a, _) = two_tenants().await;
    // Embedded resources: "#/$defs/name" inside customer.json is customer.json's own.
    let order = json!({
        "$id": "https://example.com/forms/order",
        "type": "object",
        "properties": {
            "customer": {"$ref": "customer.json"},
            "lines": {"type": "array", "items": {"$ref": "line.json#/$defs/line"}},
            "note": {"$ref": "#note"},
        },
        "$defs": {
            "customer": {
                "$id": "customer.json",
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"$ref": "#/$defs/name"}},
                "$defs": {"name": {"type": "string", "minLength": 1}},
            },
            "line": {"$id": "line.json", "$defs": {"line": {"type": "object", "required": ["sku"]}}},
            "note": {"$anchor": "note", "type": "string", "maxLength": 10},
        },
    });
    let form = db
        .insert(FormFixture::new(a).schema(order.clone()).published())
        .await;
    db.try_insert(
        SubmissionFixture::new(a, form.id).data(
            json!({"customer": {"name": "Ada"}, "lines": [{"sku": "A-1"}], "note": "fragile"}),
        ),
    )
    .await
    .unwrap();
    let err = FormError::from(
        db.try_insert(SubmissionFixture::new(a, form.id).data(
            json!({"customer": {"name": ""}, "lines": [{"qty": 1}], "note": "handle with care"}),
        ))
        .await
        .unwrap_err(),
    );
    let mut errors: Vec<_> = validation_errors(&err)
        .into_iter()
        .map(|e| (e.instance_path, e.schema_path, e.keyword))
        .collect();
    errors.sort();
    assert_eq!(
        errors,
        [
            (
                "/customer/name".to_owned(),
                "/properties/customer/$ref/properties/name/$ref/minLength".to_owned(),
                "minLength".to_owned()
            ),
            (
                "/lines/0".to_owned(),
                "/properties/lines/items/$ref/required".to_owned(),
                "required".to_owned()
            ),
            (
                "/note".to_owned(),
                "/properties/note/$ref/maxLength".to_owned(),
                "maxLength".to_owned()
            ),
        ]
    );

    // "$dynamicRef": a generic list whose item type the referring schema chooses.
    let numbers = json!({
        "$id": "https://example.com/forms/numbers",
        "$ref": "list",
        "$defs": {
            "item": {"$dynamicAnchor": "item", "type": "number"},
            "list": {
                "$id": "list",
                "type": "array",
                "items": {"$dynamicRef": "#item"},
                "$defs": {"item": {"$dynamicAnchor": "item"}},
            },
        },
    });
    for (instance, valid) in [(json!([1, 2.5]), true), (json!([1, "two"]), false)] {
        let (got, errors) = validate_as_app(&db, a, &numbers, &instance).await.unwrap();
        assert_eq!(
            (got, errors.is_empty()),
            (valid, valid),
            "{instance}: {errors:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unicode_property_escapes_match_letters_of_every_script() {
    let (db, a, _) = two_tenants().await;
    // The test clusters run in the C locale, where [[:alpha:]] alone is ASCII: the
    // escapes are matched under ICU's root collation whatever the database's.
    let schema = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "pattern": "^\\p{Lu}\\p{Ll}+( \\p{Lu}\\p{Ll}+)*$"},
            "code": {"type": "string", "pattern": "^\\P{L}+$"},
        },
        "patternProperties": {"^x-\\p{Nd}+$": {"type": "integer"}},
        "additionalProperties": false,
    });
    let form = db
        .insert(FormFixture::new(a).schema(schema.clone()).published())
        .await;
    for data in [
        json!({"name": "Émile Łukasz", "code": "12-34", "x-42": 1}),
        json!({"name": "Ørjan", "x-\u{0664}\u{0662}": 2}),
    ] {
        db.try_insert(SubmissionFixture::new(a, form.id).data(data.clone()))
            .await
            .unwrap_or_else(|e| panic!("{data}: {e}"));
    }
    let err = FormError::from(
        db.try_insert(
            SubmissionFixture::new(a, form.id)
                .data(json!({"name": "émile", "code": "A1", "x-4a": 1})),
        )
        .await
        .unwrap_err(),
    );
    let mut keywords: Vec<_> = validation_errors(&err)
        .into_iter()
        .map(|e| (e.instance_path, e.keyword))
        .collect();
    keywords.sort();
    assert_eq!(
        keywords,
        [
            ("/code".to_owned(), "pattern".to_owned()),
            ("/name".to_owned(), "pattern".to_owned()),
            ("/x-4a".to_owned(), "additionalProperties".to_owned()),
        ]
    );
}

/// The `TooDeep` details of an error, or panics.
fn too_deep(err: &FormError) -> (&str, u32) {
    match err {
        FormError::TooDeep { subject, limit, .. } => (subject, *limit),
        other => panic!("expected TooDeep (WF006), got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nesting_deeper_than_the_limits_is_refused_at_every_entry_point() {
    let (db, a, _) = two_tenants().await;
    let recursive = json!({"items": {"$ref": "#"}});
    // 800 levels: it used to end in "stack depth limit exceeded".
    let deep = nested_array(800);
    for instance in [&deep, &nested_array(65)] {
        let err = validate_as_app(&db, a, &recursive, instance)
            .await
            .unwrap_err();
        assert_eq!(sqlstate(&err), "WF006", "{err}");
        assert_eq!(too_deep(&err), ("instance", 64));
    }
    assert_eq!(
        validate_as_app(&db, a, &recursive, &nested_array(64))
            .await
            .unwrap(),
        (true, vec![])
    );
    let err = validate_as_app(&db, a, &nested_schema(65), &json!(1))
        .await
        .unwrap_err();
    assert_eq!(too_deep(&err), ("schema", 64));
    // Within the nesting limit, evaluation is bounded too: here three subschemas per
    // level of the instance.
    let chain = json!({
        "$defs": {"a": {"items": {"$ref": "#/$defs/b"}}, "b": {"$ref": "#/$defs/c"}, "c": {"$ref": "#/$defs/a"}},
        "$ref": "#/$defs/a",
    });
    assert_eq!(
        validate_as_app(&db, a, &chain, &nested_array(40))
            .await
            .unwrap(),
        (true, vec![])
    );
    for sql in [
        "SELECT forms.json_schema_valid($1, $2)::text",
        "SELECT forms.json_schema_errors($1, $2)::text",
    ] {
        let (schema, instance) = (chain.clone(), nested_array(60));
        let err = FormError::from(
            act(&db, a, async |tx| {
                Ok(tx
                    .query_one(sql, &[&schema, &instance])
                    .await?
                    .get::<_, String>(0))
            })
            .await
            .unwrap_err(),
        );
        assert_eq!(too_deep(&err), ("evaluation", 160), "{sql}");
    }

    // Saving a definition: created or edited, nothing is written.
    let err = FormError::from(
        db.try_insert(FormFixture::new(a).schema(nested_schema(65)))
            .await
            .unwrap_err(),
    );
    assert_eq!(too_deep(&err), ("schema", 64));
    assert_eq!(db.count("forms.form_definitions").await, 0);
    let draft = db
        .insert(FormFixture::new(a).schema(recursive.clone()))
        .await;
    let events = db.count("eventstore.events").await;
    let deep_schema = simple(nested_schema(65));
    let err = FormError::from(
        act(&db, a, async |tx| {
            Ok(form_definition_update()
                .params(
                    tx,
                    &FormDefinitionUpdateParams {
                        definition: &deep_schema,
                        assert_formats: false,
                        id: draft.id,
                    },
                )
                .one()
                .await?)
        })
        .await
        .unwrap_err(),
    );
    assert_eq!(too_deep(&err), ("schema", 64));
    let kept = act(&db, a, async |tx| {
        Ok(form_definition_get().bind(tx, &draft.id).one().await?)
    })
    .await
    .unwrap();
    assert_eq!(
        (kept.definition, kept.revision),
        (simple(recursive.clone()), 1)
    );

    // Submitting: inserted or updated, nothing is written.
    let form = publish(&db, a, draft.id).await.unwrap();
    let events_after_publish = db.count("eventstore.events").await;
    assert_eq!(events_after_publish, events + 1);
    let err = FormError::from(
        db.try_insert(SubmissionFixture::new(a, form.id).data(deep.clone()))
            .await
            .unwrap_err(),
    );
    assert_eq!(too_deep(&err), ("instance", 64));
    assert_eq!(db.count("forms.form_submissions").await, 0);
    let s = db
        .insert(SubmissionFixture::new(a, form.id).data(nested_array(3)))
        .await;
    let err = FormError::from(update_data(&db, a, s.id, deep).await.unwrap_err());
    assert_eq!(too_deep(&err), ("instance", 64));
    let kept = submission(&db, a, s.id).await;
    assert_eq!((kept.data, kept.revision), (nested_array(3), 1));
    assert_eq!(
        db.count("eventstore.events").await,
        events_after_publish + 1
    );
}

/// The base URI of a schema without `$id`, as `forms.schema_default_base()`.
const DEFAULT_BASE: &str = "https://forms.invalid/schema.json";

/// The draft 2020-12 meta-schema, the one `$schema` the validator knows without
/// fetching it.
const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// Whether a suite schema needs a schema from elsewhere: a `$ref` or `$dynamicRef` to
/// a document that no `$id` of the schema (nor its root) names, or a `$schema` other
/// than draft 2020-12's meta-schema (whose vocabularies would have to be fetched).
/// Walks the subschemas the way `forms.schema_index` does, with the base URI each one
/// has.
fn needs_remote_schema(schema: &Value) -> bool {
    fn resources(
        schema: &Value,
        base: &url::Url,
        found: &mut Vec<url::Url>,
        refs: &mut Vec<url::Url>,
    ) {
        let Value::Object(map) = schema else { return };
        let mut base = base.clone();
        if let Some(id) = map.get("$id").and_then(Value::as_str) {
            base = base.join(id).expect("a $id the suite resolves");
            base.set_fragment(None);
            found.push(base.clone());
        }
        for keyword in ["$ref", "$dynamicRef"] {
            if let Some(reference) = map.get(keyword).and_then(Value::as_str) {
                let mut target = base
                    .join(reference)
                    .expect("a reference the suite resolves");
                target.set_fragment(None);
                refs.push(target);
            }
        }
        if map
            .get("$schema")
            .and_then(Value::as_str)
            .is_some_and(|m| m != DRAFT_2020_12)
        {
            refs.push(map["$schema"].as_str().unwrap().parse().unwrap());
        }
        for (keyword, value) in map {
            match keyword.as_str() {
                "additionalProperties"
                | "propertyNames"
                | "items"
                | "contains"
                | "not"
                | "if"
                | "then"
                | "else"
                | "unevaluatedItems"
                | "unevaluatedProperties"
                | "contentSchema" => resources(value, &base, found, refs),
                "properties" | "patternProperties" | "$defs" | "dependentSchemas" => {
                    for sub in value.as_object().into_iter().flat_map(|m| m.values()) {
                        resources(sub, &base, found, refs);
                    }
                }
                "prefixItems" | "allOf" | "anyOf" | "oneOf" => {
                    for sub in value.as_array().into_iter().flatten() {
                        resources(sub, &base, found, refs);
                    }
                }
                _ => {}
            }
        }
    }
    let root: url::Url = DEFAULT_BASE.parse().unwrap();
    let (mut found, mut refs) = (vec![root.clone()], Vec::new());
    resources(schema, &root, &mut found, &mut refs);
    refs.iter().any(|r| !found.contains(r))
}

/// What a run of suite files did: cases run, and cases skipped because they need a
/// remote schema or a string with U+0000 (which `jsonb` cannot hold).
#[derive(Debug, Default, PartialEq)]
struct SuiteRun {
    ran: usize,
    remote: usize,
    nul: usize,
}

/// Runs the official suite's cases in `dir` (files named there) through both entry
/// points; each must agree with the suite on every case it runs.
async fn run_suite(client: &tokio_postgres::Client, dir: &Path, assert_formats: bool) -> SuiteRun {
    let statement = client
        .prepare("SELECT forms.json_schema_valid($1, $2, $3), jsonb_array_length(forms.json_schema_errors($1, $2, $3))")
        .await
        .unwrap();
    let mut run = SuiteRun::default();
    let mut failures = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for file in files {
        let groups: Vec<Value> =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        for group in groups {
            let schema = &group["schema"];
            let cases = group["tests"].as_array().unwrap();
            if needs_remote_schema(schema) {
                run.remote += cases.len();
                continue;
            }
            for case in cases {
                if schema.to_string().contains("\\u0000")
                    || case["data"].to_string().contains("\\u0000")
                {
                    run.nul += 1;
                    continue;
                }
                let expected = case["valid"].as_bool().unwrap();
                let name = format!(
                    "{} / {} / {}",
                    file.display(),
                    group["description"],
                    case["description"]
                );
                match client
                    .query_one(&statement, &[schema, &case["data"], &assert_formats])
                    .await
                {
                    Ok(row) => {
                        let (valid, errors): (bool, i32) = (row.get(0), row.get(1));
                        if valid != expected || (errors == 0) != expected {
                            failures.push(format!("{name}: valid={valid} errors={errors}"));
                        }
                    }
                    Err(e) => failures.push(format!("{name}: {e}")),
                }
                run.ran += 1;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        run.ran,
        failures.join("\n")
    );
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_validator_passes_the_official_json_schema_test_suite() {
    let db = TestDb::new().await;
    let client = db.client(DbRole::App).await;
    let suite = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/json-schema-test-suite/draft2020-12");
    // The counts tests/data/json-schema-test-suite/README.md gives.
    let core = run_suite(&client, &suite, false).await;
    assert_eq!(
        core,
        SuiteRun {
            ran: 1188,
            remote: 53,
            nul: 4
        }
    );
    let formats = run_suite(&client, &suite.join("optional/format"), true).await;
    assert_eq!(
        formats,
        SuiteRun {
            ran: 242,
            remote: 0,
            nul: 0
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_decisions_on_one_submission_leave_exactly_one() {
    let (db, a, _) = two_tenants().await;
    let form = db.insert(FormFixture::new(a).published()).await;
    for round in 0..8 {
        let s = db
            .try_insert(
                SubmissionFixture::new(a, form.id)
                    .data(json!({"round": round}))
                    .status("submitted"),
            )
            .await
            .unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let tasks = ["approved", "rejected"].map(|status| {
            let (db, barrier) = (db.clone(), barrier.clone());
            tokio::spawn(async move {
                let mut client = db.pool(DbRole::App).get().await.unwrap();
                let tx = groundwork::tenant::begin(&mut client, a).await.unwrap();
                barrier.wait().await;
                let decided = form_submission_transition()
                    .params(&tx, &FormSubmissionTransitionParams { status, id: s.id })
                    .one()
                    .await
                    .map_err(FormError::from);
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                tx.commit().await.unwrap();
                decided
            })
        });
        let mut won = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => won += 1,
                Err(e) => assert!(matches!(e, FormError::InvalidTransition(_)), "{e}"),
            }
        }
        assert_eq!(won, 1, "round {round}");
        assert_eq!(stream(&db, a, s.id).await.len(), 2, "round {round}");
    }
}

#[test]
fn the_form_fixtures_are_the_shared_ones() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/forms");
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/forms");
    if !shared.is_dir() {
        return;
    }
    for name in [
        "typical.schema.json",
        "typical.valid.json",
        "typical.invalid.json",
        "large.schema.json",
        "large.valid.json",
    ] {
        assert_eq!(
            std::fs::read(here.join(name)).unwrap(),
            std::fs::read(shared.join(name)).unwrap(),
            "{name} differs from the shared fixture"
        );
    }
}
