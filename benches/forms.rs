//! The forms validator on the shared fixtures (`../shared/fixtures/forms/`, copied to
//! `tests/data/forms/`), measured
//! inside PostgreSQL: a PL/pgSQL loop as the application role times each call of
//! `forms.json_schema_valid` (and of `forms.json_schema_errors` on the invalid
//! document) with `clock_timestamp()`, so no round trip is counted; the median of
//! the samples is reported. In the same run the Rust `jsonschema` crate validates the
//! same documents with a validator built once, as the baseline.
//!
//! Also measured, for the forms engine's other requirements (docs/REQUIREMENTS.md): a
//! submission written through the application role (validation, generated columns,
//! event, one round trip), the time all migrations take on an empty database, and
//! reads by id with 100,000 submissions in the table.
//!
//! Run with `cargo bench --bench forms`; the last line is
//! `forms: validate_typical_us=<median> validate_large_us=<median> rust_typical_us=<median>`.

use std::path::Path;
use std::time::Instant;

use groundwork::client::Params;
use groundwork::queries::forms::form_definitions::{
    FormDefinitionCreateParams, form_definition_create, form_definition_get,
    form_definition_publish,
};
use groundwork::queries::forms::form_submissions::{
    FormSubmissionCreateParams, form_submission_create, form_submission_get,
};
use groundwork::tenant::begin;
use groundwork_testing::{DbRole, TestDb};
use serde_json::{Value, json};
use uuid::Uuid;

const SAMPLES: i32 = 2000;
const SUBMISSIONS: i64 = 100_000;

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/forms")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// The median of `runs` timings of `work`, in microseconds.
fn median_us(runs: usize, mut work: impl FnMut()) -> f64 {
    let samples = (0..runs)
        .map(|_| {
            let started = Instant::now();
            work();
            started.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    median(samples)
}

/// Per-call timings, in microseconds, of the validator inside the server.
async fn server_samples(
    client: &tokio_postgres::Client,
    function: &str,
    schema: &Value,
    data: &Value,
) -> f64 {
    let samples: Vec<f64> = client
        .query_one(
            "SELECT pg_temp.samples($1, $2, $3, $4)",
            &[&function, schema, data, &SAMPLES],
        )
        .await
        .unwrap()
        .get(0);
    median(samples)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let db = TestDb::builder().pool_size(4).build().await;
    let [tenant] = db.tenants().await;
    let tenant = tenant.tenant();
    let (typical, valid, invalid) = (
        fixture("typical.schema.json"),
        fixture("typical.valid.json"),
        fixture("typical.invalid.json"),
    );
    let (large, large_valid) = (fixture("large.schema.json"), fixture("large.valid.json"));

    // Inside the server, as the application role.
    let client = db.client(DbRole::App).await;
    client
        .batch_execute(
            "CREATE FUNCTION pg_temp.samples(fn text, s jsonb, d jsonb, n integer)
             RETURNS float8[] LANGUAGE plpgsql AS $$
             DECLARE
                 started timestamptz;
                 out float8[] := '{}';
                 ok boolean;
                 errors jsonb;
             BEGIN
                 FOR k IN 1 .. n LOOP
                     started := clock_timestamp();
                     IF fn = 'valid' THEN
                         ok := forms.json_schema_valid(s, d);
                     ELSE
                         errors := forms.json_schema_errors(s, d);
                     END IF;
                     out := out || (extract(epoch FROM clock_timestamp() - started) * 1e6)::float8;
                 END LOOP;
                 RETURN out;
             END $$;",
        )
        .await
        .unwrap();
    let check: (bool, bool, i32) = {
        let row = client
            .query_one(
                "SELECT forms.json_schema_valid($1, $2), forms.json_schema_valid($3, $4),
                        jsonb_array_length(forms.json_schema_errors($1, $5))",
                &[&typical, &valid, &large, &large_valid, &invalid],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1), row.get(2))
    };
    assert_eq!(
        check,
        (true, true, check.2),
        "the fixtures' valid documents validate"
    );
    assert!(
        check.2 >= 5,
        "the typical invalid document reports its five errors"
    );
    // Warm the caches (plans, regexes) once per document.
    server_samples(&client, "valid", &typical, &valid).await;
    let validate_typical = server_samples(&client, "valid", &typical, &valid).await;
    let validate_typical_invalid = server_samples(&client, "valid", &typical, &invalid).await;
    let errors_typical_invalid = server_samples(&client, "errors", &typical, &invalid).await;
    let validate_large = server_samples(&client, "valid", &large, &large_valid).await;
    println!(
        "in PostgreSQL (median of {SAMPLES}): json_schema_valid typical {validate_typical:.0} us, \
         typical invalid {validate_typical_invalid:.0} us, large {validate_large:.0} us; \
         json_schema_errors typical invalid ({} errors) {errors_typical_invalid:.0} us",
        check.2
    );

    // The Rust baseline, on the same documents.
    let typical_validator = jsonschema::validator_for(&typical).unwrap();
    let large_validator = jsonschema::validator_for(&large).unwrap();
    assert!(typical_validator.is_valid(&valid) && large_validator.is_valid(&large_valid));
    let rust_typical = median_us(20_000, || {
        std::hint::black_box(typical_validator.is_valid(std::hint::black_box(&valid)));
    });
    let rust_large = median_us(20_000, || {
        std::hint::black_box(large_validator.is_valid(std::hint::black_box(&large_valid)));
    });
    let rust_errors = median_us(20_000, || {
        std::hint::black_box(typical_validator.iter_errors(&invalid).count());
    });
    println!(
        "jsonschema crate (median of 20000): typical {rust_typical:.2} us, large {rust_large:.2} us, \
         every error of typical invalid {rust_errors:.2} us"
    );

    // A submission as a service writes it: one round trip, validation, generated
    // columns and the event, in a transaction.
    let mut pooled = db.pool(DbRole::App).get().await.unwrap();
    let tx = begin(&mut pooled, tenant).await.unwrap();
    let form = form_definition_create()
        .params(
            &tx,
            &FormDefinitionCreateParams {
                name: "Service request",
                definition: json!({ "schema": typical }),
                assert_formats: false,
            },
        )
        .one()
        .await
        .unwrap();
    form_definition_publish()
        .bind(&tx, &form.id)
        .one()
        .await
        .unwrap();
    let mut insert_samples = Vec::new();
    for _ in 0..500 {
        let started = Instant::now();
        form_submission_create()
            .params(
                &tx,
                &FormSubmissionCreateParams {
                    form_definition_id: form.id,
                    data: &valid,
                    status: "submitted",
                },
            )
            .one()
            .await
            .unwrap();
        insert_samples.push(started.elapsed().as_secs_f64() * 1e6);
    }
    tx.commit().await.unwrap();
    let insert_us = median(insert_samples);
    println!("submission insert (typical, round trip, median of 500): {insert_us:.0} us");

    // 100,000 submissions (loaded by the owner, triggers off), then reads by id.
    let loader = db.pool(DbRole::Owner).get().await.unwrap();
    let started = Instant::now();
    loader
        .batch_execute(&format!(
            "SET session_replication_role = replica;
             INSERT INTO forms.form_submissions (organization_id, form_definition_id, form_version,
                                                 data, status, submitted_by, revision)
             SELECT '{org}', '{form}', 1,
                    jsonb_set(jsonb_set(d, '{{title}}', to_jsonb('request ' || g)),
                              '{{priority}}', to_jsonb(1 + g % 5)),
                    (ARRAY['draft', 'submitted', 'approved', 'rejected'])[1 + g % 4], '{user}', 1
             FROM generate_series(1, {SUBMISSIONS}) g, (SELECT $json${valid}$json$::jsonb AS d) v;
             SET session_replication_role = DEFAULT;
             ANALYZE forms.form_submissions;",
            org = tenant.organization_id.unwrap(),
            user = tenant.user_id.unwrap(),
            form = form.id,
        ))
        .await
        .unwrap();
    let count: i64 = loader
        .query_one("SELECT count(*) FROM forms.form_submissions", &[])
        .await
        .unwrap()
        .get(0);
    println!(
        "loaded {count} submissions in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let ids: Vec<Uuid> = loader
        .query(
            "SELECT id FROM forms.form_submissions ORDER BY random() LIMIT 200",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let tx = begin(&mut pooled, tenant).await.unwrap();
    let mut get_samples = Vec::new();
    for id in &ids {
        let started = Instant::now();
        form_submission_get().bind(&tx, id).one().await.unwrap();
        get_samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let mut form_samples = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        form_definition_get()
            .bind(&tx, &form.id)
            .one()
            .await
            .unwrap();
        form_samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    tx.commit().await.unwrap();
    println!(
        "with {count} submissions (median of 200, round trip): submission by id {:.3} ms, form by id {:.3} ms",
        median(get_samples),
        median(form_samples)
    );

    // Every migration on an empty database.
    let empty = TestDb::builder().empty().build().await;
    let owner = empty.client(DbRole::Owner).await;
    let started = Instant::now();
    let applied = groundwork::migrate::migrator()
        .unwrap()
        .up(&owner, groundwork::migrate::UpOptions::default())
        .await
        .unwrap();
    println!(
        "all {} migrations applied to an empty database in {:.2}s",
        applied.len(),
        started.elapsed().as_secs_f64()
    );

    println!(
        "forms: validate_typical_us={validate_typical:.0} validate_large_us={validate_large:.0} \
         rust_typical_us={rust_typical:.2}"
    );
}
