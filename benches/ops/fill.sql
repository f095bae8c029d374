-- The database `groundwork db health` is timed against (docs/BENCHMARKS.md, "Health
-- checks"): 100,000 rows in each of groundwork's large tables, spread over 20
-- tenants, with backlogs for every backlog check to count. Run as the superuser on a
-- migrated database: psql -v ON_ERROR_STOP=1 -f benches/ops/fill.sql DATABASE_URL
BEGIN;
INSERT INTO identity.organizations (name, slug)
SELECT 'Bench ' || g, 'bench-' || g FROM generate_series(1, 20) g;
CREATE TEMP TABLE orgs AS
SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM identity.organizations
WHERE slug LIKE 'bench-%';
INSERT INTO identity.users (email, username)
SELECT 'bench' || g || '@example.com', 'bench_user_' || g FROM generate_series(1, 1000) g;

-- Jobs: half due, a quarter completed, a quarter scheduled.
INSERT INTO messaging.jobs (organization_id, kind, args, status, run_at, finished_at)
SELECT o.id, 'bench.job', '{}',
       (ARRAY['available', 'completed', 'scheduled', 'available'])[g % 4 + 1]::messaging.job_status,
       CASE g % 4 WHEN 2 THEN now() + interval '1 hour' ELSE now() - interval '1 minute' END,
       CASE g % 4 WHEN 1 THEN now() - interval '8 days' END
FROM generate_series(1, 100000) g JOIN orgs o ON o.n = g % 20;

-- Outbox: half pending, half delivered.
INSERT INTO messaging.outbox_messages (organization_id, topic, payload, status, delivered_at)
SELECT o.id, 'bench.topic', '{}',
       CASE WHEN g % 2 = 0 THEN 'pending' ELSE 'delivered' END::messaging.outbox_status,
       CASE WHEN g % 2 = 1 THEN now() - interval '8 days' END
FROM generate_series(1, 100000) g JOIN orgs o ON o.n = g % 20;

-- Events: 5,000 per tenant; 1,000 subscriptions, half of them behind.
INSERT INTO eventstore.events (organization_id, type, data)
SELECT o.id, 'BenchHappened', jsonb_build_object('n', g)
FROM generate_series(1, 100000) g JOIN orgs o ON o.n = g % 20;
INSERT INTO eventstore.subscriptions (organization_id, name, position)
SELECT o.id, 'projector-' || g,
       CASE WHEN g % 2 = 0 THEN 0 ELSE (SELECT max(position) FROM eventstore.events) END
FROM generate_series(1, 1000) g JOIN orgs o ON o.n = g % 20;

-- Idempotency keys: half expired two days ago.
INSERT INTO messaging.idempotency_keys (organization_id, key, request_hash, created_at, expires_at)
SELECT o.id, 'key-' || g, '\x01'::bytea, now() - interval '3 days',
       CASE WHEN g % 2 = 0 THEN now() - interval '2 days' ELSE now() + interval '1 day' END
FROM generate_series(1, 100000) g JOIN orgs o ON o.n = g % 20;

-- Reservations: a tenth active and expired, the rest finished.
INSERT INTO inventory.reservations
    (organization_id, product_id, user_id, quantity, slot, status, expires_at, finished_at)
SELECT o.id, gen_random_uuid(), gen_random_uuid(), 1, 1,
       CASE WHEN g % 10 = 0 THEN 'active' ELSE 'fulfilled' END::inventory.reservation_status,
       now() - interval '1 hour',
       CASE WHEN g % 10 <> 0 THEN now() - interval '1 hour' END
FROM generate_series(1, 100000) g JOIN orgs o ON o.n = g % 20;

-- Sessions of the 1,000 users.
INSERT INTO identity.sessions (user_id, refresh_token_hash, expires_at, created_at)
SELECT u.id, sha256(g::text::bytea), now() + interval '1 day' - (g % 3) * interval '40 days',
       now() - interval '100 days'
FROM generate_series(1, 100000) g
JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM identity.users
      WHERE email LIKE 'bench%@example.com') u ON u.n = g % 1000;
COMMIT;
ANALYZE;
