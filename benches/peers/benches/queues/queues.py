"""procrastinate's and pgqueuer's side of `cargo bench -p groundwork-bench --bench queues`.

Run by the bench in the virtual environment it creates (both pinned in
benches/peers/requirements.txt); prints one JSON object.

    python queues.py procrastinate|pgqueuer enqueue URL JOBS
        install the schema, enqueue JOBS no-op jobs in batches of 1,000
    python queues.py procrastinate|pgqueuer drain URL JOBS
        run a worker until JOBS no-op jobs have run and are recorded as done

Each runs with its documented defaults:
- procrastinate: `App(connector=PsycopgConnector(...))`, `run_worker_async(concurrency=8)`
  (LISTEN/NOTIFY on, finished jobs kept as `succeeded`);
- pgqueuer: `PgQueuer(AsyncpgDriver(...))`, `run()` with its default batch size (10) and
  buffered completions (finished jobs move to `pgqueuer_log`). It has no setting for a
  worker's concurrency: an entrypoint's `concurrency_limit` caps the jobs running across
  all workers, enforced in the dequeue query, and `max_concurrent_tasks` must be at least
  twice the batch size; the entrypoint keeps its default (no limit).
"""

import asyncio
import json
import logging
import sys
import time
from importlib.metadata import version

BATCH = 1000
CONCURRENCY = 8


async def procrastinate_side(mode, url, jobs):
    import procrastinate

    # Not its warning about where the App is made (a script, not a package).
    logging.getLogger("procrastinate").setLevel(logging.ERROR)
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))
    ran = 0
    all_ran = asyncio.Event()

    @app.task(name="noop")
    async def noop(n):
        nonlocal ran
        ran += 1
        if ran == jobs:
            all_ran.set()

    async with app.open_async():
        if mode == "enqueue":
            await app.schema_manager.apply_schema_async()
            started = time.perf_counter()
            for done in range(0, jobs, BATCH):
                await noop.batch_defer_async(*({"n": n} for n in range(done, min(done + BATCH, jobs))))
            return {"version": version("procrastinate"), "enqueue_per_s": jobs / (time.perf_counter() - started)}

        started = time.perf_counter()
        worker = asyncio.create_task(app.run_worker_async(concurrency=CONCURRENCY, install_signal_handlers=False))
        await all_ran.wait()
        # Each job's status is written when it finishes; wait for the last ones.
        while await app.connector.execute_query_one_async(
            "SELECT EXISTS (SELECT FROM procrastinate_jobs WHERE status <> 'succeeded') AS left"
        ) == {"left": True}:
            await asyncio.sleep(0.002)
        seconds = time.perf_counter() - started
        worker.cancel()
        try:
            await worker
        except asyncio.CancelledError:
            pass
        return {
            "version": version("procrastinate"),
            "settings": {"concurrency": CONCURRENCY},
            "ran": ran,
            "drain_per_s": jobs / seconds,
        }


async def pgqueuer_side(mode, url, jobs):
    import asyncpg
    from pgqueuer import PgQueuer
    from pgqueuer.db import AsyncpgDriver
    from pgqueuer.queries import Queries

    connection = await asyncpg.connect(url)
    try:
        queries = Queries(AsyncpgDriver(connection))
        if mode == "enqueue":
            if not await queries.schema_is_installed():
                await queries.install()
            started = time.perf_counter()
            for done in range(0, jobs, BATCH):
                n = min(BATCH, jobs - done)
                await queries.enqueue(["noop"] * n, [None] * n, [0] * n)
            return {"version": version("pgqueuer"), "enqueue_per_s": jobs / (time.perf_counter() - started)}

        pgq = PgQueuer(AsyncpgDriver(connection))
        ran = 0
        all_ran = asyncio.Event()

        @pgq.entrypoint("noop")
        async def noop(job):
            nonlocal ran
            ran += 1
            if ran == jobs:
                all_ran.set()

        watcher = await asyncpg.connect(url)
        started = time.perf_counter()
        worker = asyncio.create_task(pgq.run())
        await all_ran.wait()
        # Completions are buffered; a finished job leaves the queue table.
        while await watcher.fetchval("SELECT EXISTS (SELECT FROM pgqueuer)"):
            await asyncio.sleep(0.002)
        seconds = time.perf_counter() - started
        pgq.shutdown.set()
        await worker
        await watcher.close()
        return {
            "version": version("pgqueuer"),
            "settings": {"batch_size": 10, "concurrency_limit": 0},
            "ran": ran,
            "drain_per_s": jobs / seconds,
        }
    finally:
        await connection.close()


def main():
    system, mode, url, jobs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    side = {"procrastinate": procrastinate_side, "pgqueuer": pgqueuer_side}[system]
    print(json.dumps(asyncio.run(side(mode, url, jobs))))


if __name__ == "__main__":
    main()
