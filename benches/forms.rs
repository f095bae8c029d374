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
//! With `FORMS_BASELINE=<git revision>` the validator of that revision's forms migration
//! is loaded beside the current one (as `forms_baseline`, by the owner) and every
//! validation is timed against it in the same loop, call after call, so that both see
//! the same machine: the way to compare a change on a busy machine.
//!
//! Run with `cargo bench --bench forms`; the last line is
//! `forms: validate_typical_us=<median> validate_large_us=<median> rust_typical_us=<median>`,
//! followed by `baseline_typical_us=<median> baseline_large_us=<median>` with a baseline.

use std::path::Path;
use std::process::Command;
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

// The median the benchmarks share.
#[path = "support/stats.rs"]
mod stats;
use stats::median;

const SAMPLES: i32 = 2000;
const SUBMISSIONS: i64 = 100_000;

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/forms")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
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

/// Per-call timings, in microseconds, of the validator inside the server: the median
/// of the current one and, with a baseline loaded, of the baseline's, timed alternately.
async fn server_samples(
    client: &tokio_postgres::Client,
    function: &str,
    schema: &Value,
    data: &Value,
    baseline: bool,
) -> (f64, Option<f64>) {
    let samples: Vec<f64> = client
        .query_one(
            "SELECT pg_temp.samples($1, $2, $3, $4, $5)",
            &[&function, schema, data, &SAMPLES, &baseline],
        )
        .await
        .unwrap()
        .get(0);
    if !baseline {
        return (median(samples), None);
    }
    let old = samples[samples.len() / 2..].to_vec();
    let mut current = samples;
    current.truncate(current.len() / 2);
    (median(current), Some(median(old)))
}

/// The validator of `revision`'s forms migration (every function up to the first table),
/// created in the schema `forms_baseline` and executable by the application role.
async fn load_baseline(owner: &tokio_postgres::Client, revision: &str) {
    let output = Command::new("git")
        .args([
            "show",
            &format!("{revision}:migrations/20261201000500_forms.up.sql"),
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git show {revision}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let migration = String::from_utf8(output.stdout).unwrap();
    let schema = "CREATE SCHEMA forms;";
    let start = migration
        .find(schema)
        .expect("the forms migration creates its schema")
        + schema.len();
    let end = migration
        .find("CREATE TABLE forms.")
        .expect("the forms migration creates tables");
    let validator = migration[start..end].replace("forms.", "forms_baseline.");
    owner
        .batch_execute(&format!(
            "CREATE SCHEMA forms_baseline;
             {validator}
             GRANT USAGE ON SCHEMA forms_baseline TO groundwork_app;
             GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA forms_baseline TO groundwork_app;"
        ))
        .await
        .unwrap();
}

/// "<us> us", and the baseline's with the difference when there is one.
fn versus(current: f64, baseline: Option<f64>) -> String {
    match baseline {
        Some(b) => format!(
            "{current:.0} us (baseline {b:.0} us, {:+.1}%)",
            (current / b - 1.0) * 100.0
        ),
        None => format!("{current:.0} us"),
    }
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

    let baseline = std::env::var("FORMS_BASELINE").ok();
    if let Some(revision) = &baseline {
        load_baseline(&db.client(DbRole::Owner).await, revision).await;
    }
    let with_baseline = baseline.is_some();

    // Inside the server, as the application role. With a baseline, each sample of the
    // current validator is paired with one of the baseline's, in alternating order
    // (which of two calls goes first measurably changes its time); the current
    // validator's samples come first in the result, then the baseline's.
    let client = db.client(DbRole::App).await;
    client
        .batch_execute(&format!(
            "CREATE FUNCTION pg_temp.samples(fn text, s jsonb, d jsonb, n integer, baseline boolean)
             RETURNS float8[] LANGUAGE plpgsql AS $$
             DECLARE
                 started timestamptz;
                 current float8[] := '{{}}';
                 old float8[] := '{{}}';
                 on_baseline boolean;
                 ok boolean;
                 errors jsonb;
             BEGIN
                 FOR k IN 1 .. n LOOP
                     FOR pass IN 1 .. CASE WHEN baseline THEN 2 ELSE 1 END LOOP
                         on_baseline := baseline AND (k % 2 = 0) = (pass = 1);
                         started := clock_timestamp();
                         IF on_baseline THEN
                             {baseline_calls}
                         ELSIF fn = 'valid' THEN
                             ok := forms.json_schema_valid(s, d);
                         ELSE
                             errors := forms.json_schema_errors(s, d);
                         END IF;
                         IF on_baseline THEN
                             old := old || (extract(epoch FROM clock_timestamp() - started) * 1e6)::float8;
                         ELSE
                             current := current || (extract(epoch FROM clock_timestamp() - started) * 1e6)::float8;
                         END IF;
                     END LOOP;
                 END LOOP;
                 RETURN current || old;
             END $$;",
            baseline_calls = if with_baseline {
                "IF fn = 'valid' THEN ok := forms_baseline.json_schema_valid(s, d); \
                 ELSE errors := forms_baseline.json_schema_errors(s, d); END IF;"
            } else {
                "NULL;"
            }
        ))
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
    server_samples(&client, "valid", &typical, &valid, with_baseline).await;
    let (validate_typical, baseline_typical) =
        server_samples(&client, "valid", &typical, &valid, with_baseline).await;
    let (validate_typical_invalid, baseline_typical_invalid) =
        server_samples(&client, "valid", &typical, &invalid, with_baseline).await;
    let (errors_typical_invalid, baseline_errors) =
        server_samples(&client, "errors", &typical, &invalid, with_baseline).await;
    let (validate_large, baseline_large) =
        server_samples(&client, "valid", &large, &large_valid, with_baseline).await;
    if let Some(revision) = &baseline {
        println!("baseline: the validator of {revision}, timed in the same loops");
    }
    println!(
        "in PostgreSQL (median of {SAMPLES}): json_schema_valid typical {}, typical invalid {}, \
         large {}; json_schema_errors typical invalid ({} errors) {}",
        versus(validate_typical, baseline_typical),
        versus(validate_typical_invalid, baseline_typical_invalid),
        versus(validate_large, baseline_large),
        check.2,
        versus(errors_typical_invalid, baseline_errors),
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
         rust_typical_us={rust_typical:.2}{}",
        match (baseline_typical, baseline_large) {
            (Some(t), Some(l)) => format!(" baseline_typical_us={t:.0} baseline_large_us={l:.0}"),
            _ => String::new(),
        }
    );
}
