//! Task-graph queries on a large project: 10,000 tasks and 30,000 `blocks`
//! dependencies (each task after the first three depends on three earlier ones, so the
//! graph has no cycle), about 60% done, 10% cancelled and 30% pending.
//!
//! As a member of the project (the application role, with tenant and user set),
//! measured as the median of 200 runs each: the first page (100) of "tasks ready to
//! start", all of them, and every blocker of the last task at any depth (depth guard
//! 100), next to a primary-key lookup of one task as the baseline. The plans of the
//! two graph queries are printed to show their index use. The graph is loaded by the
//! owner with triggers off (the per-edge cycle check is what the tests measure).
//!
//! Run with `cargo bench --bench projects`; the last line is
//! `projects: ready_page_ms=<x> ready_all_ms=<x> blockers_any_depth_ms=<x> blockers=<n> task_get_ms=<x>`.

use std::time::Instant;

use groundwork::queries::projects::tasks::{task_blockers, task_get, task_list_ready};
use groundwork::tenant::begin;
use groundwork::types::projects::ProjectRole;
use groundwork_testing::fixtures::{MemberFixture, ProjectFixture, TaskFixture, UserFixture};
use groundwork_testing::{DbRole, TestDb};
use uuid::Uuid;

const TASKS: i64 = 10_000;
const RUNS: usize = 200;

/// The median, in milliseconds, of `RUNS` runs of `work`.
async fn median_ms<F, Fut>(mut work: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let mut samples = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        std::hint::black_box(work().await);
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    samples[RUNS / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let db = TestDb::builder().pool_size(4).build().await;
    let [owner] = db.tenants().await;
    let member = db.insert(UserFixture::default()).await.id;
    db.insert(MemberFixture::new(owner.organization_id, member))
        .await;
    let project = db
        .insert(
            ProjectFixture::new(owner.tenant())
                .name("Large")
                .member(member, ProjectRole::Member),
        )
        .await
        .id;
    // One task through the application, to have the owner's row shape; the rest in bulk.
    db.insert(TaskFixture::new(owner.tenant(), project)).await;
    let loader = db.pool(DbRole::Owner).get().await.unwrap();
    let started = Instant::now();
    loader
        .batch_execute(&format!(
            "SET session_replication_role = replica;
             SELECT setseed(0.42);
             CREATE TEMP TABLE numbered AS
                 SELECT g AS n, gen_random_uuid() AS id,
                        CASE WHEN g % 10 < 6 THEN 'done' WHEN g % 10 = 6 THEN 'cancelled'
                             ELSE 'pending' END::projects.task_status AS status
                 FROM generate_series(1, {TASKS}) g;
             INSERT INTO projects.tasks (id, organization_id, project_id, title, status, priority,
                                         creator_id, completed_at)
             SELECT id, '{org}', '{project}', 'task ' || n, status,
                    (ARRAY['low', 'medium', 'high', 'urgent'])[1 + n % 4]::projects.task_priority,
                    '{user}', CASE WHEN status = 'done' THEN now() END
             FROM numbered;
             INSERT INTO projects.task_dependencies (organization_id, project_id, task_id,
                                                     depends_on_task_id, dependency_type)
             WITH picks AS MATERIALIZED (
                 -- Three distinct earlier tasks for each task after the third.
                 SELECT t.n, e.m
                 FROM numbered t
                 CROSS JOIN LATERAL (
                     SELECT DISTINCT m FROM (
                         SELECT 1 + floor(random() * (t.n - 1) + 0 * t.n)::int AS m
                         FROM generate_series(1, 12)) c
                     LIMIT 3) e
                 WHERE t.n > 3)
             SELECT '{org}', '{project}', t.id, b.id, 'blocks'
             FROM picks p JOIN numbered t ON t.n = p.n JOIN numbered b ON b.n = p.m;
             SET session_replication_role = DEFAULT;
             ANALYZE projects.tasks, projects.task_dependencies;",
            org = owner.organization_id,
            user = owner.user_id,
        ))
        .await
        .unwrap();
    let counts = loader
        .query_one(
            "SELECT (SELECT count(*) FROM projects.tasks WHERE project_id = $1),
                    (SELECT count(*) FROM projects.task_dependencies WHERE project_id = $1)",
            &[&project],
        )
        .await
        .unwrap();
    let (tasks, dependencies): (i64, i64) = (counts.get(0), counts.get(1));
    println!(
        "loaded {tasks} tasks and {dependencies} dependencies in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let last: Uuid = loader
        .query_one(
            "SELECT id FROM projects.tasks WHERE project_id = $1 AND title = $2",
            &[&project, &format!("task {TASKS}")],
        )
        .await
        .unwrap()
        .get(0);

    let mut client = db.pool(DbRole::App).get().await.unwrap();
    let tx = begin(
        &mut client,
        groundwork::tenant::Tenant::new(owner.organization_id, member),
    )
    .await
    .unwrap();
    let task_get_ms =
        median_ms(|| async { task_get().bind(&tx, &last).one().await.map(|_| 1).unwrap() }).await;
    let ready_page_ms = median_ms(|| async {
        task_list_ready()
            .bind(&tx, &project, &None::<Uuid>, &100)
            .all()
            .await
            .unwrap()
            .len()
    })
    .await;
    let ready = task_list_ready()
        .bind(&tx, &project, &None::<Uuid>, &TASKS)
        .all()
        .await
        .unwrap()
        .len();
    let ready_all_ms = median_ms(|| async {
        task_list_ready()
            .bind(&tx, &project, &None::<Uuid>, &TASKS)
            .all()
            .await
            .unwrap()
            .len()
    })
    .await;
    let blockers = task_blockers().bind(&tx, &last, &100).all().await.unwrap();
    let deepest = blockers.iter().map(|b| b.depth).max().unwrap_or(0);
    let blockers_ms = median_ms(|| async {
        task_blockers()
            .bind(&tx, &last, &100)
            .all()
            .await
            .unwrap()
            .len()
    })
    .await;

    // The plans, as the member sees them.
    for (what, sql) in [
        (
            "tasks ready to start (first page)",
            format!(
                "SELECT t.id FROM projects.tasks t
                 WHERE t.project_id = '{project}' AND t.status IN ('pending', 'blocked')
                   AND NOT EXISTS (SELECT FROM projects.task_dependencies d
                                   JOIN projects.tasks b ON b.id = d.depends_on_task_id
                                   WHERE d.task_id = t.id AND d.dependency_type = 'blocks'
                                     AND b.status NOT IN ('done', 'cancelled')
                                   OFFSET 0)
                 ORDER BY t.id LIMIT 100"
            ),
        ),
        (
            "blockers at any depth",
            format!(
                "WITH RECURSIVE reach(task_id, depth) AS (
                     SELECT d.depends_on_task_id, 1 FROM projects.task_dependencies d
                     WHERE d.task_id = '{last}' AND d.dependency_type = 'blocks'
                     UNION
                     SELECT d.depends_on_task_id, r.depth + 1 FROM reach r
                     JOIN projects.task_dependencies d
                       ON d.task_id = r.task_id AND d.dependency_type = 'blocks'
                     WHERE r.depth < 100)
                 SELECT t.id, min(r.depth) FROM reach r JOIN projects.tasks t ON t.id = r.task_id
                 GROUP BY t.id"
            ),
        ),
    ] {
        let plan: Vec<String> = tx
            .query(
                &format!("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {sql}"),
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        println!("\nplan of {what}:\n  {}", plan.join("\n  "));
    }
    tx.rollback().await.unwrap();

    println!(
        "\n{tasks} tasks, {dependencies} dependencies, 2 cores, median of {RUNS} runs, as a project member"
    );
    println!("  task by id (baseline)               {task_get_ms:>8.3} ms");
    println!("  tasks ready to start, first 100     {ready_page_ms:>8.3} ms");
    println!("  tasks ready to start, all {ready:>5}     {ready_all_ms:>8.3} ms");
    println!(
        "  blockers at any depth               {blockers_ms:>8.3} ms  ({} tasks, {deepest} levels deep)",
        blockers.len()
    );
    println!(
        "projects: ready_page_ms={ready_page_ms:.3} ready_all_ms={ready_all_ms:.3} \
         blockers_any_depth_ms={blockers_ms:.3} blockers={} task_get_ms={task_get_ms:.3}",
        blockers.len()
    );
}
