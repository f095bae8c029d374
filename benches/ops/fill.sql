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

-- Orders: 100,000 over the 1,000 users, a tenth pending and expired, the rest paid; a
-- payment for each paid one, and an expired authorization for each tenth.
INSERT INTO catalog.products (organization_id, sku, name, price)
SELECT o.id, 'BENCH-1', 'Bench product', 20 FROM orgs o;
INSERT INTO sales.orders (organization_id, order_number, user_id, cart_id, idempotency_key, status,
                          currency, subtotal_amount, total_amount, item_count, expires_at, created_at)
SELECT o.id, 'SO-' || upper(lpad(to_hex(g), 16, '0')), u.id, gen_random_uuid(), 'bench-' || g,
       CASE WHEN g % 10 = 0 THEN 'pending' ELSE 'paid' END::sales.order_status,
       'USD', 20, 20, 1, now() - interval '1 hour', now() - interval '2 hours'
FROM generate_series(1, 100000) g JOIN orgs o ON o.n = g % 20
JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM identity.users
      WHERE email LIKE 'bench%@example.com') u ON u.n = g % 1000;
INSERT INTO payments.payment_methods (organization_id, user_id, token, brand, last_four, exp_month, exp_year)
SELECT DISTINCT ON (s.organization_id, s.user_id) s.organization_id, s.user_id,
       'tok_' || translate(md5(s.organization_id::text || s.user_id::text), '0123456789', 'ghijklmnop'),
       'visa', '4242', 12, 2099
FROM sales.orders s;
INSERT INTO payments.payments (organization_id, order_id, user_id, payment_method_id, status, currency,
                               amount, captured_amount, provider_reference, expires_at)
SELECT s.organization_id, s.id, s.user_id, m.id,
       CASE WHEN s.status = 'pending' THEN 'authorized' ELSE 'captured' END::payments.payment_status,
       'USD', 20, CASE WHEN s.status <> 'pending' THEN 20 END, 'auth_bench', s.expires_at
FROM sales.orders s
JOIN payments.payment_methods m ON m.organization_id = s.organization_id AND m.user_id = s.user_id;
COMMIT;
ANALYZE;
