// graphile-worker's side of `cargo bench -p groundwork-bench --bench queues`.
//
// Run by the bench with graphile-worker (pinned in package.json beside this file)
// installed under target/; prints one JSON object.
//
//   node graphile.js enqueue URL JOBS             install the schema, add JOBS no-op jobs
//                                                 with addJobs() in batches of 1,000
//   node graphile.js drain URL JOBS default|batched
//                                                 run a worker with concurrency 8 until
//                                                 JOBS no-op jobs have run and are gone
//                                                 from the table
//
// `default` is the worker as documented out of the box; `batched` adds the batching
// options of graphile-worker's performance page (a local queue of 500 jobs, job
// completions and failures recorded in batches).
"use strict";

const { Logger, makeWorkerUtils, run, runMigrations } = require("graphile-worker");
const { version } = require("graphile-worker/package.json");

const [mode, connectionString, jobsArg, settings = "default"] = process.argv.slice(2);
const jobs = Number(jobsArg);
const BATCH = 1000;
const CONCURRENCY = 8;

const SETTINGS = {
  default: {},
  batched: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 },
};

// Its default logger writes to stdout, where the report goes.
const logger = new Logger(() => () => {});

async function enqueue() {
  await runMigrations({ connectionString, logger });
  const utils = await makeWorkerUtils({ connectionString, logger });
  try {
    const started = process.hrtime.bigint();
    for (let done = 0; done < jobs; done += BATCH) {
      const batch = [];
      for (let i = done; i < Math.min(done + BATCH, jobs); i++) {
        batch.push({ identifier: "noop", payload: { n: i } });
      }
      await utils.addJobs(batch);
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return { version, enqueue_per_s: jobs / seconds };
  } finally {
    await utils.release();
  }
}

async function drain() {
  let ran = 0;
  let allRan;
  const everyJobRan = new Promise((resolve) => (allRan = resolve));
  const noop = async () => {
    ran += 1;
    if (ran === jobs) allRan();
  };
  const utils = await makeWorkerUtils({ connectionString, logger });
  const started = process.hrtime.bigint();
  const runner = await run({
    connectionString,
    concurrency: CONCURRENCY,
    noHandleSignals: true,
    taskList: { noop },
    logger,
    preset: { worker: SETTINGS[settings] },
  });
  await everyJobRan;
  // Completed jobs are deleted; with batched completions the last batch may still
  // be on its way.
  await utils.withPgClient(async (client) => {
    for (;;) {
      const { rows } = await client.query(
        "SELECT EXISTS (SELECT FROM graphile_worker._private_jobs) AS left",
      );
      if (!rows[0].left) return;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await runner.stop();
  await utils.release();
  return { version, settings: SETTINGS[settings], ran, drain_per_s: jobs / seconds };
}

(mode === "enqueue" ? enqueue() : drain()).then(
  (report) => console.log(JSON.stringify(report)),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
