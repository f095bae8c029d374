"""The course-subscription decision on two DCB stores, from one Python client.

Run by `cargo bench -p groundwork-bench --bench peers` in a virtual environment it
creates (eventsourcing[postgres] and psycopg with its C implementation pinned in
requirements.txt), with the eventsourcing database, groundwork's database as the
application role, the tenant ("organization,user"), groundwork's database as its
owner, and optionally the operations per workload. Prints one JSON object.

- eventsourcing: `eventsourcing.dcb.postgres_tt.PostgresDCBRecorderTT`, pool size 1,
  in its own database.
- groundwork: its SQL API (`eventstore.read`, `eventstore.append`) over psycopg with
  prepared statements, as the application role with the tenant set per transaction
  (each call is one statement in autocommit that sets the tenant for itself).

The decision: read the course's events by tag, count its subscriptions, and if the
course has room append one `StudentSubscribed` event on the condition that nothing
matching the query was appended after what was read. Single writer and 8 writers (on
disjoint courses), and appends alone: each the median of ROUNDS interleaved rounds of
OPERATIONS operations, with each round's figures listed so that the caller can take
ratios of windows run back to back.
"""

import json
import statistics
import sys
import threading
import time
import uuid

import psycopg
from eventsourcing.dcb.postgres_tt import (
    DCBAppendCondition,
    DCBEvent,
    DCBQuery,
    DCBQueryItem,
    PostgresDCBRecorderTT,
)
from eventsourcing.postgres import PostgresDatastore

# Operations per workload, shared among its writers.
OPERATIONS = int(sys.argv[5]) if len(sys.argv) > 5 else 3200
COURSES = 64
ROUNDS = 5
TYPES = ["CourseDefined", "StudentSubscribed"]


class EventSourcingStore:
    def __init__(self, conninfo):
        parts = psycopg.conninfo.conninfo_to_dict(conninfo)
        self.datastore = PostgresDatastore(
            dbname=parts["dbname"],
            host=parts.get("host", "127.0.0.1"),
            port=str(parts.get("port", 5432)),
            user=parts.get("user", "postgres"),
            password=parts.get("password", ""),
            pool_size=1,
        )
        self.recorder = PostgresDCBRecorderTT(self.datastore)
        self.recorder.create_table()

    def define(self, course):
        self.recorder.append(
            [DCBEvent(type="CourseDefined", data=b'{"capacity": 1000000}', tags=[f"course:{course}"])]
        )

    def decide(self, course, student):
        query = DCBQuery(items=[DCBQueryItem(types=TYPES, tags=[f"course:{course}"])])
        response = self.recorder.read(query)
        subscribed = 0
        for sequenced in response:
            if sequenced.event.type == "StudentSubscribed":
                subscribed += 1
        head = response.head
        event = DCBEvent(
            type="StudentSubscribed",
            data=json.dumps({"student": student}).encode(),
            tags=[f"course:{course}", f"student:{student}"],
        )
        self.recorder.append([event], DCBAppendCondition(fail_if_events_match=query, after=head))

    def append_alone(self, course, student):
        self.recorder.append(
            [DCBEvent(type="StudentSubscribed", data=b"{}", tags=[f"course:{course}", f"student:{student}"])]
        )

    def close(self):
        self.datastore.close()


class GroundworkStore:
    # One statement each, in autocommit: the tenant is set for the statement's own
    # transaction (set_config(..., true) in a fenced subquery that also carries the
    # argument the function reads, so it is evaluated first), so a read and an append
    # cost one round trip each, as eventsourcing's calls do, and as
    # groundwork::eventstore::decide makes them from Rust. The decision needs no
    # transaction around both: the append's condition ("nothing matching the query
    # after what was read") is what keeps it consistent.
    TENANT = (
        "(SELECT set_config('app.current_org_id', %s, true),"
        " set_config('app.current_user_id', %s, true), %s::jsonb AS arg OFFSET 0) AS t"
    )
    READ = "SELECT e.position, e.type FROM " + TENANT + ", LATERAL eventstore.read(t.arg, 0, NULL) AS e"
    APPEND = "SELECT eventstore.append(t.arg, %s::jsonb) FROM " + TENANT

    def __init__(self, conninfo, org, user):
        self.conn = psycopg.connect(conninfo, prepare_threshold=0, autocommit=True)
        self.org, self.user = org, user

    def _append(self, events, condition):
        self.conn.execute(
            self.APPEND,
            (None if condition is None else json.dumps(condition), self.org, self.user, json.dumps(events)),
            prepare=True,
        )

    def define(self, course):
        self._append([{"type": "CourseDefined", "tags": [f"course:{course}"], "data": {"capacity": 1000000}}], None)

    def decide(self, course, student):
        query = {"items": [{"types": TYPES, "tags": [f"course:{course}"]}]}
        rows = self.conn.execute(self.READ, (self.org, self.user, json.dumps(query)), prepare=True).fetchall()
        subscribed = 0
        head = 0
        for position, kind in rows:
            head = position
            if kind == "StudentSubscribed":
                subscribed += 1
        events = [
            {
                "type": "StudentSubscribed",
                "tags": [f"course:{course}", f"student:{student}"],
                "data": {"student": student},
            }
        ]
        self._append(events, {"fail_if_events_match": query, "after": head})

    def append_alone(self, course, student):
        self._append([{"type": "StudentSubscribed", "tags": [f"course:{course}", f"student:{student}"], "data": {}}], None)

    def close(self):
        self.conn.close()


def run(make_store, writers, work, prefix):
    """Operations per second of `writers` threads, each with its own store, on
    disjoint courses named `prefix` + number, OPERATIONS in all. Every store does the
    same operations on the same courses, so each reads histories of the same lengths
    (in a window of fixed time the faster store would read longer ones)."""
    stores = [make_store() for _ in range(writers)]
    done = [0] * writers
    failed = [0] * writers

    def loop(w):
        store = stores[w]
        for n in range(OPERATIONS // writers):
            course = f"{prefix}{w + writers * (n % (COURSES // writers))}"
            try:
                getattr(store, work)(course, uuid.uuid4().hex[:12])
                done[w] += 1
            except Exception:  # a failed condition: the decision is retried by the next loop
                failed[w] += 1

    threads = [threading.Thread(target=loop, args=(w,)) for w in range(writers)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    for s in stores:
        s.close()
    return {"per_s": sum(done) / elapsed, "failed": sum(failed)}


def main():
    es_conninfo, gw_conninfo, tenant, gw_owner_conninfo = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    org, user = tenant.split(",")
    setup = {
        "eventsourcing": lambda: EventSourcingStore(es_conninfo),
        "groundwork": lambda: GroundworkStore(gw_conninfo, org, user),
    }
    workloads = [
        ("decide_1", 1, "decide"),
        ("decide_8", 8, "decide"),
        ("append_1", 1, "append_alone"),
    ]
    # Each workload of each round on its own courses, so that no store reads longer
    # histories because it decided faster in an earlier one.
    for make in setup.values():
        store = make()
        for r in range(ROUNDS):
            for workload, _, _ in workloads:
                for c in range(COURSES):
                    store.define(f"{workload}-r{r}-c{c}")
        store.close()
    rounds = {}
    # Interleaved: each workload on both stores before the next, the store that goes
    # first alternating from round to round, ROUNDS times; each figure is the median
    # of its rounds, and its rounds are listed in order.
    for r in range(ROUNDS):
        # Both stores with fresh statistics, as a database in service keeps them:
        # without, each side's plans may stay those made on nearly empty tables.
        for conninfo in (es_conninfo, gw_owner_conninfo):
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute("ANALYZE")
        for workload, writers, work in workloads:
            names = list(setup) if r % 2 == 0 else list(reversed(setup))
            for name in names:
                measured = run(setup[name], writers, work, f"{workload}-r{r}-c")
                rounds.setdefault(name, {}).setdefault(workload, []).append(measured)
    results = {
        name: {
            workload: {
                "per_s": statistics.median(m["per_s"] for m in measured),
                "rounds": [m["per_s"] for m in measured],
                "failed": sum(m["failed"] for m in measured),
            }
            for workload, measured in workloads_measured.items()
        }
        for name, workloads_measured in rounds.items()
    }
    results["psycopg"] = psycopg.pq.__impl__
    print(json.dumps(results))


if __name__ == "__main__":
    main()
