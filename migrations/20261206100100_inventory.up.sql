-- Why: inventory that never oversells (seed 002, docs/REQUIREMENTS.md, "inventory"), per
-- tenant: suppliers, one stock row per product, reservations that expire, the ledger
-- of movements, low-stock alerts and an analytics view; and the catalog's two read
-- functions that need stock (catalog.search_products, catalog.get_product_details).
--
-- * stock_levels: on_hand, reserved and available = on_hand - reserved (generated),
--   with CHECKs on_hand >= 0, reserved >= 0 and reserved <= on_hand: available is
--   never negative, whatever writes the row. The application reads stock and sets only
--   the reorder fields, supplier and unit cost; stock moves through the functions
--   below (SECURITY DEFINER, owned by groundwork_owner), so nothing changes on_hand
--   without its movement.
-- * movements are the ledger that explains on_hand: every receipt (+), sale (-) and
--   adjustment (+/-) writes one row with its signed quantity and the balance after it,
--   so sum(quantity) = on_hand per product. Reservations change reserved, not
--   on_hand: the active reservations are what explains reserved.
-- * Locking design of reserve_inventory (one short statement path, no read-then-write
--   race, no table lock, no advisory lock):
--     1. the reservation row is inserted with a slot number 1 to 5; a partial unique
--        index over (tenant, product, user, slot) of active reservations makes a
--        sixth active reservation of one user and product impossible. The insert is
--        INSERT ... ON CONFLICT DO NOTHING, tried for slots 1 to 5: a concurrent
--        insert of the same slot (the same user, at the same moment) is waited for
--        and then counts as taken. No free slot is WN003.
--     2. then, as the last statement, one conditional UPDATE of the product's stock
--        row, SET reserved = reserved + qty WHERE on_hand - reserved >= qty.
--        Concurrent reservations of one product queue on that row lock, and each
--        re-evaluates the condition on the latest committed row (READ COMMITTED's
--        update recheck), so the last unit goes once. No row updated: the product has
--        not enough stock (WN002) or does not exist (WN001), and the error takes the
--        reservation of step 1 back with it.
--   The stock row is locked last so that it is held only from the update to the
--   commit. Every lock is a row of the tenant's own (keys lead with organization_id),
--   so no tenant can wait for another's.
--   Expired reservations still hold stock until they are released; when a reservation
--   would fail for stock or for the limit, the product's (or the user's) expired
--   reservations are released first (skipping any another transaction holds) and the
--   step is tried once more, so expired reservations never block a sale.
-- * Reservations expire 5 minutes after creation. cleanup_expired_reservations()
--   releases the current tenant's (the application role, tenant set) or every
--   tenant's (a member of groundwork_worker with no tenant: a periodic job), at most
--   10,000 per call, skipping rows another transaction holds, so no tenant's open
--   transaction can hold up the clean-up of another.
-- * alerts: a low-stock alert opens when available falls to the product's reorder
--   point or below and stays open until available rises above it (resolved_at); a
--   partial unique index keeps one open alert per product.
-- * Refusals (nothing written): WN001 not found, WN002 out of stock, WN003 reservation
--   limit, WN004 reservation not active; 42501 without a tenant or when its
--   organization is not active (and for reserve_inventory without an active user);
--   22004 NULL arguments; 22023 a quantity below 1;
--   54000 a quantity above 1,000,000 (docs/SECURITY.md).

CREATE SCHEMA inventory;

CREATE TYPE inventory.reservation_status AS ENUM ('active', 'fulfilled', 'released', 'expired');
CREATE TYPE inventory.movement_kind AS ENUM ('receipt', 'sale', 'adjustment');
CREATE TYPE inventory.alert_kind AS ENUM ('low_stock');

CREATE TABLE inventory.suppliers (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL DEFAULT identity.current_org_id()
        CONSTRAINT suppliers_organization_id_fkey
            REFERENCES identity.organizations (id) ON DELETE CASCADE,
    name text NOT NULL
        CONSTRAINT suppliers_name_length CHECK (char_length(btrim(name)) BETWEEN 1 AND 200),
    email text
        CONSTRAINT suppliers_email_format
            CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$' AND char_length(email) <= 254),
    phone text
        CONSTRAINT suppliers_phone_format CHECK (phone ~ '^\+?[0-9 ()-]{3,30}$'),
    lead_time_days integer NOT NULL DEFAULT 7
        CONSTRAINT suppliers_lead_time_days_range CHECK (lead_time_days BETWEEN 0 AND 365),
    active boolean NOT NULL DEFAULT true,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb
        CONSTRAINT suppliers_metadata_object
            CHECK (jsonb_typeof(metadata) = 'object'
                   AND CASE WHEN pg_column_compression(metadata) IS NULL
                            THEN pg_column_size(metadata)
                            ELSE octet_length(metadata::text) END <= 65536),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT suppliers_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT suppliers_name_key UNIQUE (organization_id, name)
);

CREATE TABLE inventory.stock_levels (
    organization_id uuid NOT NULL,
    product_id uuid NOT NULL,
    on_hand integer NOT NULL DEFAULT 0
        CONSTRAINT stock_levels_on_hand_nonnegative CHECK (on_hand >= 0),
    reserved integer NOT NULL DEFAULT 0
        CONSTRAINT stock_levels_reserved_nonnegative CHECK (reserved >= 0),
    available integer GENERATED ALWAYS AS (on_hand - reserved) STORED,
    reorder_point integer NOT NULL DEFAULT 0
        CONSTRAINT stock_levels_reorder_point_nonnegative CHECK (reorder_point >= 0),
    reorder_quantity integer NOT NULL DEFAULT 0
        CONSTRAINT stock_levels_reorder_quantity_nonnegative CHECK (reorder_quantity >= 0),
    supplier_id uuid,
    -- What one unit cost, for the stock value; the product's price when unknown.
    unit_cost numeric(12, 2)
        CONSTRAINT stock_levels_unit_cost_nonnegative CHECK (unit_cost >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT stock_levels_pkey PRIMARY KEY (organization_id, product_id),
    -- A product with stock history is archived (active = false), not deleted.
    CONSTRAINT stock_levels_product_id_fkey FOREIGN KEY (organization_id, product_id)
        REFERENCES catalog.products (organization_id, id) ON DELETE RESTRICT,
    CONSTRAINT stock_levels_supplier_id_fkey FOREIGN KEY (organization_id, supplier_id)
        REFERENCES inventory.suppliers (organization_id, id) ON DELETE SET NULL (supplier_id),
    -- available = on_hand - reserved is never negative: no overselling.
    CONSTRAINT stock_levels_available_nonnegative CHECK (reserved <= on_hand)
);

-- No index covers on_hand or reserved, so that every reservation is a HOT update.
CREATE INDEX stock_levels_supplier_id_idx ON inventory.stock_levels (organization_id, supplier_id)
    WHERE supplier_id IS NOT NULL;

CREATE TABLE inventory.reservations (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL,
    product_id uuid NOT NULL,
    -- No foreign keys on product_id and user_id: only reserve_inventory writes rows,
    -- for an active user and a product whose stock row it updates in the same
    -- transaction, and a key check there would lock the hot stock row (or the user's)
    -- once more per reservation (docs/BENCHMARKS.md). A reservation outlives its user
    -- as history; one that is active when its user goes expires like any other.
    user_id uuid NOT NULL,
    quantity integer NOT NULL
        CONSTRAINT reservations_quantity_positive CHECK (quantity > 0),
    -- Which of the user's five places for this product it takes while active.
    slot smallint NOT NULL
        CONSTRAINT reservations_slot_range CHECK (slot BETWEEN 1 AND 5),
    status inventory.reservation_status NOT NULL DEFAULT 'active',
    expires_at timestamptz NOT NULL DEFAULT now() + interval '5 minutes',
    finished_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reservations_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT reservations_finished_state CHECK ((status = 'active') = (finished_at IS NULL))
);

-- At most 5 active reservations per user and product: one per slot. Also the way to a
-- product's (and a user's) active reservations, and the only index the reservation
-- path writes besides the primary key.
CREATE UNIQUE INDEX reservations_active_slot_key
    ON inventory.reservations (organization_id, product_id, user_id, slot) WHERE status = 'active';

CREATE TABLE inventory.movements (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL,
    product_id uuid NOT NULL,
    kind inventory.movement_kind NOT NULL,
    -- Signed: what it added to on_hand.
    quantity integer NOT NULL
        CONSTRAINT movements_quantity_sign CHECK (
            CASE kind WHEN 'receipt' THEN quantity > 0 WHEN 'sale' THEN quantity < 0
                      ELSE quantity <> 0 END),
    on_hand_after integer NOT NULL
        CONSTRAINT movements_on_hand_after_nonnegative CHECK (on_hand_after >= 0),
    -- The sale's reservation.
    reservation_id uuid,
    -- Why, for adjustments.
    reason text
        CONSTRAINT movements_reason_length CHECK (char_length(reason) BETWEEN 1 AND 500),
    created_by uuid DEFAULT identity.current_user_id()
        CONSTRAINT movements_created_by_fkey REFERENCES identity.users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT movements_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT movements_product_id_fkey FOREIGN KEY (organization_id, product_id)
        REFERENCES inventory.stock_levels (organization_id, product_id) ON DELETE RESTRICT,
    CONSTRAINT movements_reservation_id_fkey FOREIGN KEY (organization_id, reservation_id)
        REFERENCES inventory.reservations (organization_id, id) ON DELETE RESTRICT,
    CONSTRAINT movements_sale_reservation CHECK ((kind = 'sale') = (reservation_id IS NOT NULL)),
    CONSTRAINT movements_adjustment_reason CHECK ((kind = 'adjustment') = (reason IS NOT NULL))
);

-- A product's ledger in time order (history, analytics).
CREATE INDEX movements_product_id_created_at_idx
    ON inventory.movements (organization_id, product_id, created_at);
CREATE INDEX movements_reservation_id_idx ON inventory.movements (organization_id, reservation_id)
    WHERE reservation_id IS NOT NULL;

CREATE TABLE inventory.alerts (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL,
    product_id uuid NOT NULL,
    kind inventory.alert_kind NOT NULL DEFAULT 'low_stock',
    -- The stock when it opened.
    available integer NOT NULL,
    reorder_point integer NOT NULL,
    reorder_quantity integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    CONSTRAINT alerts_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT alerts_product_id_fkey FOREIGN KEY (organization_id, product_id)
        REFERENCES inventory.stock_levels (organization_id, product_id) ON DELETE CASCADE,
    CONSTRAINT alerts_resolved_after_created CHECK (resolved_at >= created_at)
);

-- One open alert per product; also the list of open alerts.
CREATE UNIQUE INDEX alerts_open_product_id_key ON inventory.alerts (organization_id, product_id)
    WHERE resolved_at IS NULL;
CREATE INDEX alerts_product_id_created_at_idx ON inventory.alerts (organization_id, product_id, created_at);

CREATE TRIGGER suppliers_set_updated_at BEFORE UPDATE ON inventory.suppliers
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER stock_levels_set_updated_at BEFORE UPDATE ON inventory.stock_levels
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER reservations_set_updated_at BEFORE UPDATE ON inventory.reservations
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

-- Opens the product's low-stock alert when available is at or below the reorder
-- point, resolves it when available is above. The triggers fire only when the stock
-- crosses the reorder point (or the row is new), so reservations pay nothing else.
CREATE FUNCTION inventory.track_low_stock() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, inventory, pg_temp
AS $$
BEGIN
    IF NEW.on_hand - NEW.reserved <= NEW.reorder_point THEN
        INSERT INTO inventory.alerts (organization_id, product_id, available, reorder_point, reorder_quantity)
        VALUES (NEW.organization_id, NEW.product_id, NEW.on_hand - NEW.reserved, NEW.reorder_point,
                NEW.reorder_quantity)
        ON CONFLICT (organization_id, product_id) WHERE resolved_at IS NULL DO NOTHING;
    ELSE
        UPDATE inventory.alerts a SET resolved_at = greatest(now(), a.created_at)
        WHERE a.organization_id = NEW.organization_id AND a.product_id = NEW.product_id
          AND a.resolved_at IS NULL;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER stock_levels_track_low_stock_insert AFTER INSERT ON inventory.stock_levels
    FOR EACH ROW WHEN (NEW.on_hand - NEW.reserved <= NEW.reorder_point)
    EXECUTE FUNCTION inventory.track_low_stock();
CREATE TRIGGER stock_levels_track_low_stock_update AFTER UPDATE ON inventory.stock_levels
    FOR EACH ROW
    WHEN ((NEW.on_hand - NEW.reserved <= NEW.reorder_point)
          IS DISTINCT FROM (OLD.on_hand - OLD.reserved <= OLD.reorder_point))
    EXECUTE FUNCTION inventory.track_low_stock();

-- Refuses a quantity: NULL (22004), below 1 (22023), above 1,000,000 (54000).
CREATE FUNCTION inventory.check_quantity(quantity integer) RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF quantity IS NULL THEN
        RAISE EXCEPTION 'a quantity must not be null' USING ERRCODE = 'null_value_not_allowed';
    ELSIF quantity < 1 THEN
        RAISE EXCEPTION 'a quantity is at least 1, not %', quantity USING ERRCODE = 'invalid_parameter_value';
    ELSIF quantity > 1000000 THEN
        RAISE EXCEPTION 'a quantity is at most 1000000, not %', quantity
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
END
$$;

-- The current tenant, an active organization, or 42501 naming what needed it.
CREATE FUNCTION inventory.require_tenant(action text) RETURNS uuid
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, inventory, pg_temp
AS $$
DECLARE
    org uuid := identity.current_org_id();
BEGIN
    IF org IS NULL THEN
        RAISE EXCEPTION '% needs a tenant: app.current_org_id is not set', action
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT EXISTS (SELECT FROM identity.organizations o WHERE o.id = org AND o.status = 'active') THEN
        RAISE EXCEPTION '% needs an active organization', action USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN org;
END
$$;

-- Refuses a product of the tenant that does not exist (WN001).
CREATE FUNCTION inventory.require_product(p_org uuid, p_product_id uuid) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, inventory, pg_temp
AS $$
BEGIN
    IF p_product_id IS NULL THEN
        RAISE EXCEPTION 'a product_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT FROM catalog.products p WHERE p.organization_id = p_org AND p.id = p_product_id) THEN
        RAISE EXCEPTION 'product % not found', p_product_id USING ERRCODE = 'WN001';
    END IF;
END
$$;

-- Expires the tenant's expired active reservations of one product (of one user, when
-- p_user_id is not NULL) and gives their stock back; rows another transaction holds
-- are skipped. Returns how many expired.
CREATE FUNCTION inventory.expire_product_reservations(p_org uuid, p_product_id uuid, p_user_id uuid)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, inventory, pg_temp
AS $$
DECLARE
    expired integer;
    released integer;
BEGIN
    WITH gone AS (
        UPDATE inventory.reservations r SET status = 'expired', finished_at = now()
        WHERE r.organization_id = p_org AND r.id IN (
            SELECT e.id FROM inventory.reservations e
            WHERE e.organization_id = p_org AND e.product_id = p_product_id
              AND (p_user_id IS NULL OR e.user_id = p_user_id)
              AND e.status = 'active' AND e.expires_at <= now()
            FOR UPDATE SKIP LOCKED)
        RETURNING r.quantity)
    SELECT count(*), coalesce(sum(gone.quantity), 0) INTO expired, released FROM gone;
    IF expired > 0 THEN
        UPDATE inventory.stock_levels s SET reserved = s.reserved - released
        WHERE s.organization_id = p_org AND s.product_id = p_product_id;
    END IF;
    RETURN expired;
END
$$;

-- Receives quantity units of a product of the current tenant: creates its stock row
-- when it has none, adds to on_hand and writes the receipt to the ledger. Returns
-- on_hand after it.
CREATE FUNCTION inventory.receive_stock(product_id uuid, quantity integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, inventory, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    org uuid := inventory.require_tenant('receiving stock');
    after integer;
BEGIN
    PERFORM inventory.check_quantity(quantity);
    PERFORM inventory.require_product(org, receive_stock.product_id);
    INSERT INTO inventory.stock_levels AS s (organization_id, product_id, on_hand)
    VALUES (org, receive_stock.product_id, quantity)
    ON CONFLICT (organization_id, product_id) DO UPDATE SET on_hand = s.on_hand + EXCLUDED.on_hand
    RETURNING s.on_hand INTO after;
    INSERT INTO inventory.movements (organization_id, product_id, kind, quantity, on_hand_after)
    VALUES (org, receive_stock.product_id, 'receipt', quantity, after);
    RETURN after;
END
$$;

-- Corrects on_hand by quantity (a count, damage, a return), with the reason, and
-- writes the adjustment to the ledger. Refused with WN002 when on_hand would fall
-- below what is reserved. Returns on_hand after it.
CREATE FUNCTION inventory.adjust_stock(product_id uuid, quantity integer, reason text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, inventory, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    org uuid := inventory.require_tenant('adjusting stock');
    after integer;
BEGIN
    IF quantity IS NULL OR reason IS NULL THEN
        RAISE EXCEPTION 'quantity and reason must not be null' USING ERRCODE = 'null_value_not_allowed';
    ELSIF quantity = 0 THEN
        RAISE EXCEPTION 'an adjustment changes on_hand: its quantity is not 0'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM inventory.check_quantity(abs(quantity));
    IF char_length(btrim(reason)) = 0 THEN
        RAISE EXCEPTION 'an adjustment needs a reason' USING ERRCODE = 'invalid_parameter_value';
    ELSIF char_length(reason) > 500 THEN
        RAISE EXCEPTION 'a reason is at most 500 characters, not %', char_length(reason)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    PERFORM inventory.require_product(org, adjust_stock.product_id);
    UPDATE inventory.stock_levels s SET on_hand = s.on_hand + quantity
    WHERE s.organization_id = org AND s.product_id = adjust_stock.product_id
      AND s.on_hand + quantity >= s.reserved
    RETURNING s.on_hand INTO after;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'product % has not enough unreserved stock to take % away',
            adjust_stock.product_id, -quantity USING ERRCODE = 'WN002';
    END IF;
    INSERT INTO inventory.movements (organization_id, product_id, kind, quantity, on_hand_after, reason)
    VALUES (org, adjust_stock.product_id, 'adjustment', quantity, after, reason);
    RETURN after;
END
$$;

-- Reserves quantity units of a product for the current user for 5 minutes; returns
-- the reservation's id. The locking design is in this file's header: first the
-- reservation in a free slot (the insert reads the user and organization, so that
-- only active ones reserve; why it inserted nothing is found out afterwards), then, as the last statement, the conditional update of the stock row,
-- so that the product's row lock is held from there to the commit only.
CREATE FUNCTION inventory.reserve_inventory(product_id uuid, quantity integer) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, inventory, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    org uuid := identity.current_org_id();
    usr uuid := identity.current_user_id();
    reservation uuid;
    try integer;
    place smallint;
BEGIN
    IF org IS NULL THEN
        PERFORM inventory.require_tenant('reserving stock');
    ELSIF usr IS NULL THEN
        RAISE EXCEPTION 'reserving stock needs a user: app.current_user_id is not set'
            USING ERRCODE = 'insufficient_privilege';
    ELSIF quantity IS NULL OR quantity NOT BETWEEN 1 AND 1000000 THEN
        PERFORM inventory.check_quantity(quantity);
    ELSIF reserve_inventory.product_id IS NULL THEN
        RAISE EXCEPTION 'a product_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    <<slots>>
    FOR try IN 1..2 LOOP
        FOR place IN 1..5 LOOP
            INSERT INTO inventory.reservations AS r
                (organization_id, product_id, user_id, quantity, slot, expires_at)
            SELECT o.id, reserve_inventory.product_id, u.id, quantity, place, now() + interval '5 minutes'
            FROM identity.organizations o, identity.users u
            WHERE o.id = org AND o.status = 'active' AND u.id = usr AND u.status = 'active'
            ON CONFLICT (organization_id, product_id, user_id, slot) WHERE status = 'active' DO NOTHING
            RETURNING r.id INTO reservation;
            EXIT slots WHEN reservation IS NOT NULL;
        END LOOP;
        PERFORM inventory.require_tenant('reserving stock');
        IF NOT EXISTS (SELECT FROM identity.users u WHERE u.id = usr AND u.status = 'active') THEN
            RAISE EXCEPTION 'reserving stock needs an active user' USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF try = 2 OR inventory.expire_product_reservations(org, reserve_inventory.product_id, usr) = 0 THEN
            RAISE EXCEPTION 'user % has 5 active reservations of product % already',
                usr, reserve_inventory.product_id USING ERRCODE = 'WN003';
        END IF;
    END LOOP;
    FOR try IN 1..2 LOOP
        UPDATE inventory.stock_levels s SET reserved = s.reserved + quantity
        WHERE s.organization_id = org AND s.product_id = reserve_inventory.product_id
          AND s.on_hand - s.reserved >= quantity;
        IF FOUND THEN
            RETURN reservation;
        END IF;
        IF try = 2 OR inventory.expire_product_reservations(org, reserve_inventory.product_id, NULL) = 0 THEN
            PERFORM inventory.require_product(org, reserve_inventory.product_id);
            RAISE EXCEPTION 'product % is out of stock: fewer than % available',
                reserve_inventory.product_id, quantity USING ERRCODE = 'WN002';
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

-- The tenant's reservation for release or fulfilment: WN001 when it does not exist or
-- belongs to another user (with a user set), WN004 when it is not active (a fulfilled
-- one, or for fulfilment an expired one).
CREATE FUNCTION inventory.refuse_reservation(p_org uuid, p_reservation_id uuid, p_action text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, inventory, pg_temp
AS $$
DECLARE
    held inventory.reservations;
BEGIN
    SELECT * INTO held FROM inventory.reservations r
    WHERE r.organization_id = p_org AND r.id = p_reservation_id;
    IF NOT FOUND OR held.user_id <> coalesce(identity.current_user_id(), held.user_id) THEN
        RAISE EXCEPTION 'reservation % not found', p_reservation_id USING ERRCODE = 'WN001';
    END IF;
    RAISE EXCEPTION 'reservation % is %, it cannot be %', p_reservation_id,
        CASE WHEN held.status = 'active' THEN 'expired' ELSE held.status::text END, p_action
        USING ERRCODE = 'WN004';
END
$$;

-- Releases an active reservation of the current tenant (the current user's own, when
-- a user is set): its stock becomes available again. True when it was released now;
-- false when it was released or expired already.
CREATE FUNCTION inventory.release_reservation(reservation_id uuid) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, inventory, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    org uuid := inventory.require_tenant('releasing a reservation');
    usr uuid := identity.current_user_id();
    released inventory.reservations;
BEGIN
    IF reservation_id IS NULL THEN
        RAISE EXCEPTION 'a reservation_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    UPDATE inventory.reservations r SET status = 'released', finished_at = now()
    WHERE r.organization_id = org AND r.id = release_reservation.reservation_id
      AND r.status = 'active' AND r.user_id = coalesce(usr, r.user_id)
    RETURNING r.* INTO released;
    IF NOT FOUND THEN
        IF EXISTS (SELECT FROM inventory.reservations r
                   WHERE r.organization_id = org AND r.id = release_reservation.reservation_id
                     AND r.user_id = coalesce(usr, r.user_id)
                     AND r.status IN ('released', 'expired')) THEN
            RETURN false;
        END IF;
        PERFORM inventory.refuse_reservation(org, release_reservation.reservation_id, 'released');
    END IF;
    UPDATE inventory.stock_levels s SET reserved = s.reserved - released.quantity
    WHERE s.organization_id = org AND s.product_id = released.product_id;
    RETURN true;
END
$$;

-- Sells what an unexpired active reservation holds: on_hand and reserved go down by
-- its quantity, the sale goes to the ledger with the reservation as its reference.
-- Returns on_hand after it.
CREATE FUNCTION inventory.fulfill_reservation(reservation_id uuid) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, inventory, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    org uuid := inventory.require_tenant('fulfilling a reservation');
    usr uuid := identity.current_user_id();
    sold inventory.reservations;
    after integer;
BEGIN
    IF reservation_id IS NULL THEN
        RAISE EXCEPTION 'a reservation_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    UPDATE inventory.reservations r SET status = 'fulfilled', finished_at = now()
    WHERE r.organization_id = org AND r.id = fulfill_reservation.reservation_id
      AND r.status = 'active' AND r.expires_at > now() AND r.user_id = coalesce(usr, r.user_id)
    RETURNING r.* INTO sold;
    IF NOT FOUND THEN
        PERFORM inventory.refuse_reservation(org, fulfill_reservation.reservation_id, 'fulfilled');
    END IF;
    UPDATE inventory.stock_levels s
    SET on_hand = s.on_hand - sold.quantity, reserved = s.reserved - sold.quantity
    WHERE s.organization_id = org AND s.product_id = sold.product_id
    RETURNING s.on_hand INTO after;
    INSERT INTO inventory.movements
        (organization_id, product_id, kind, quantity, on_hand_after, reservation_id)
    VALUES (org, sold.product_id, 'sale', -sold.quantity, after, sold.id);
    RETURN after;
END
$$;

-- Expires active reservations past their time and gives their stock back: the current
-- tenant's when a tenant is set (the application role), every tenant's for a member of
-- groundwork_worker with no tenant set (a periodic job). At most 10,000 per call,
-- skipping reservations and stock rows another transaction holds; returns how many
-- expired (call again while it returns 10,000).
CREATE FUNCTION inventory.cleanup_expired_reservations() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, inventory, pg_temp
AS $$
DECLARE
    org uuid := messaging.cleanup_tenant('cleaning up reservations');
    expired integer;
BEGIN
    WITH picked AS (
        SELECT r.organization_id, r.id
        FROM inventory.reservations r
        JOIN inventory.stock_levels s
          ON s.organization_id = r.organization_id AND s.product_id = r.product_id
        WHERE r.status = 'active' AND r.expires_at <= now()
          AND (org IS NULL OR r.organization_id = org)
        LIMIT 10000
        FOR UPDATE OF r, s SKIP LOCKED),
    gone AS (
        UPDATE inventory.reservations r SET status = 'expired', finished_at = now()
        FROM picked
        WHERE r.organization_id = picked.organization_id AND r.id = picked.id
        RETURNING r.organization_id, r.product_id, r.quantity),
    restocked AS (
        UPDATE inventory.stock_levels s SET reserved = s.reserved - t.quantity
        FROM (SELECT g.organization_id, g.product_id, sum(g.quantity)::integer AS quantity
              FROM gone g GROUP BY g.organization_id, g.product_id) t
        WHERE s.organization_id = t.organization_id AND s.product_id = t.product_id
        RETURNING 1)
    SELECT count(*) INTO expired FROM gone;
    RETURN expired;
END
$$;

-- Per product of the tenant: stock, its value, and how fast it sells. Runs with the
-- caller's rights (security_invoker), so row-level security applies.
CREATE VIEW inventory.stock_analytics WITH (security_invoker = true) AS
SELECT s.organization_id, s.product_id, p.sku, p.name, s.on_hand, s.reserved, s.available,
       s.reorder_point,
       coalesce(s.unit_cost, p.price) AS unit_cost,
       s.on_hand * coalesce(s.unit_cost, p.price) AS stock_value,
       m.units_sold_30d,
       m.units_received_30d,
       -- Units sold in 30 days over the units on hand.
       round(m.units_sold_30d::numeric / nullif(s.on_hand, 0), 2) AS turnover_30d,
       -- How many days on_hand lasts at the last 30 days' rate of sale.
       round(s.on_hand / nullif(m.units_sold_30d / 30.0, 0), 1) AS days_of_cover,
       (SELECT a.created_at FROM inventory.alerts a
        WHERE a.organization_id = s.organization_id AND a.product_id = s.product_id
          AND a.resolved_at IS NULL) AS low_stock_since
FROM inventory.stock_levels s
JOIN catalog.products p ON p.organization_id = s.organization_id AND p.id = s.product_id
CROSS JOIN LATERAL (
    SELECT coalesce(-sum(mv.quantity) FILTER (WHERE mv.kind = 'sale'), 0)::bigint AS units_sold_30d,
           coalesce(sum(mv.quantity) FILTER (WHERE mv.kind = 'receipt'), 0)::bigint AS units_received_30d
    FROM inventory.movements mv
    WHERE mv.organization_id = s.organization_id AND mv.product_id = s.product_id
      AND mv.created_at >= now() - interval '30 days') m;

-- Ranked full-text search over the tenant's active products (websearch syntax:
-- "quoted phrases", or, -excluded), with filters: a category and all its
-- sub-categories, a price range, tags (all of them), in stock only. Best first (rank,
-- then id, descending); the next page passes the last row's rank and id. An empty
-- query (or one of stop words only) lists every product that passes the filters, rank
-- 0. Without a tenant it finds nothing. Planned for each call's values
-- (force_custom_plan), so the filters not given cost nothing. It runs as the owner
-- and filters on the tenant itself: under row-level security the text-search operator
-- (not leakproof) could not use the GIN index, and every search would read the whole
-- table (docs/BENCHMARKS.md).
CREATE FUNCTION catalog.search_products(
    query text, in_category uuid DEFAULT NULL, min_price numeric DEFAULT NULL,
    max_price numeric DEFAULT NULL, with_tags text[] DEFAULT NULL, in_stock boolean DEFAULT false,
    after_rank real DEFAULT NULL, after_id uuid DEFAULT NULL, page_size integer DEFAULT 20)
RETURNS TABLE (id uuid, sku text, name text, price numeric, currency text, category_id uuid,
               tags text[], rank real, available integer)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, catalog, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
#variable_conflict use_column
DECLARE
    org uuid := identity.current_org_id();
    q tsquery;
    browse boolean;
    within uuid[];
BEGIN
    IF char_length(search_products.query) > 1000 THEN
        RAISE EXCEPTION 'a search query is at most 1000 characters, not %', char_length(search_products.query)
            USING ERRCODE = 'program_limit_exceeded';
    ELSIF cardinality(search_products.with_tags) > 50 THEN
        RAISE EXCEPTION 'a search takes at most 50 tags, not %', cardinality(search_products.with_tags)
            USING ERRCODE = 'program_limit_exceeded';
    ELSIF search_products.page_size IS NULL OR search_products.page_size NOT BETWEEN 1 AND 100 THEN
        RAISE EXCEPTION 'page_size is 1 to 100, not %', search_products.page_size
            USING ERRCODE = 'invalid_parameter_value';
    ELSIF search_products.min_price < 0 OR search_products.max_price < 0
          OR search_products.min_price > search_products.max_price THEN
        RAISE EXCEPTION 'the price range % to % is not a range of prices',
            search_products.min_price, search_products.max_price
            USING ERRCODE = 'invalid_parameter_value';
    ELSIF (search_products.after_rank IS NULL) <> (search_products.after_id IS NULL) THEN
        RAISE EXCEPTION 'the next page needs both after_rank and after_id'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF org IS NULL THEN
        RETURN;
    END IF;
    browse := coalesce(btrim(search_products.query), '') = '';
    IF NOT browse THEN
        q := websearch_to_tsquery('english', search_products.query);
        browse := numnode(q) = 0;
    END IF;
    IF search_products.in_category IS NOT NULL THEN
        within := ARRAY(
            WITH RECURSIVE tree(id) AS (
                SELECT c.id FROM catalog.categories c
                WHERE c.organization_id = org AND c.id = search_products.in_category
                UNION
                SELECT c.id FROM catalog.categories c JOIN tree t ON c.parent_id = t.id
                WHERE c.organization_id = org)
            SELECT tree.id FROM tree);
    END IF;
    RETURN QUERY
    SELECT p.id, p.sku, p.name, p.price, p.currency, p.category_id, p.tags, r.rank,
           coalesce(s.available, 0)
    FROM catalog.products p
    CROSS JOIN LATERAL (
        SELECT CASE WHEN browse THEN 0::real ELSE ts_rank(p.search_vector, q) END AS rank) r
    LEFT JOIN inventory.stock_levels s ON s.organization_id = p.organization_id AND s.product_id = p.id
    WHERE p.organization_id = org AND p.active
      AND (browse OR p.search_vector @@ q)
      AND (within IS NULL OR p.category_id = ANY (within))
      AND (search_products.min_price IS NULL OR p.price >= search_products.min_price)
      AND (search_products.max_price IS NULL OR p.price <= search_products.max_price)
      AND (search_products.with_tags IS NULL OR p.tags @> search_products.with_tags)
      AND (NOT coalesce(search_products.in_stock, false) OR s.available > 0)
      AND (search_products.after_rank IS NULL
           OR (r.rank, p.id) < (search_products.after_rank, search_products.after_id))
    ORDER BY r.rank DESC, p.id DESC
    LIMIT search_products.page_size;
END
$$;

-- One product of the tenant as JSON: its fields, the category path from the root,
-- images in order, the rating summary of approved reviews and the stock. NULL when
-- the product is not the tenant's (or no tenant is set).
CREATE FUNCTION catalog.get_product_details(product_id uuid) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, catalog, pg_temp
AS $$
SELECT jsonb_build_object(
    'id', p.id, 'sku', p.sku, 'name', p.name, 'description', p.description,
    'price', p.price, 'currency', p.currency, 'tags', to_jsonb(p.tags), 'metadata', p.metadata,
    'active', p.active, 'category_id', p.category_id,
    'created_at', p.created_at, 'updated_at', p.updated_at,
    'category_path', (
        WITH RECURSIVE path(id, parent_id, name, slug, depth) AS (
            SELECT c.id, c.parent_id, c.name, c.slug, 0
            FROM catalog.categories c
            WHERE c.organization_id = p.organization_id AND c.id = p.category_id
            UNION ALL
            SELECT c.id, c.parent_id, c.name, c.slug, path.depth + 1
            FROM catalog.categories c JOIN path ON c.id = path.parent_id
            WHERE c.organization_id = p.organization_id AND path.depth < 100)
        SELECT coalesce(jsonb_agg(jsonb_build_object('id', path.id, 'name', path.name, 'slug', path.slug)
                                  ORDER BY path.depth DESC), '[]'::jsonb)
        FROM path),
    'images', (
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'id', i.id, 'url', i.url, 'alt_text', i.alt_text, 'position', i.position,
                   'is_primary', i.is_primary) ORDER BY i.position, i.id), '[]'::jsonb)
        FROM catalog.product_images i
        WHERE i.organization_id = p.organization_id AND i.product_id = p.id),
    'rating', (
        SELECT jsonb_build_object(
                   'count', count(*),
                   'average', round(avg(v.rating), 2),
                   'distribution', jsonb_build_object(
                       '1', count(*) FILTER (WHERE v.rating = 1), '2', count(*) FILTER (WHERE v.rating = 2),
                       '3', count(*) FILTER (WHERE v.rating = 3), '4', count(*) FILTER (WHERE v.rating = 4),
                       '5', count(*) FILTER (WHERE v.rating = 5)))
        FROM catalog.product_reviews v
        WHERE v.organization_id = p.organization_id AND v.product_id = p.id AND v.status = 'approved'),
    'stock', jsonb_build_object(
        'on_hand', coalesce(s.on_hand, 0), 'reserved', coalesce(s.reserved, 0),
        'available', coalesce(s.available, 0), 'in_stock', coalesce(s.available, 0) > 0,
        'reorder_point', s.reorder_point))
FROM catalog.products p
LEFT JOIN inventory.stock_levels s ON s.organization_id = p.organization_id AND s.product_id = p.id
WHERE p.organization_id = identity.current_org_id() AND p.id = get_product_details.product_id
$$;

-- Row-level security: the tenant.
ALTER TABLE inventory.suppliers ENABLE ROW LEVEL SECURITY;
CREATE POLICY suppliers_tenant ON inventory.suppliers
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

ALTER TABLE inventory.stock_levels ENABLE ROW LEVEL SECURITY;
CREATE POLICY stock_levels_tenant ON inventory.stock_levels
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

ALTER TABLE inventory.reservations ENABLE ROW LEVEL SECURITY;
CREATE POLICY reservations_tenant ON inventory.reservations
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

ALTER TABLE inventory.movements ENABLE ROW LEVEL SECURITY;
CREATE POLICY movements_tenant ON inventory.movements
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

ALTER TABLE inventory.alerts ENABLE ROW LEVEL SECURITY;
CREATE POLICY alerts_tenant ON inventory.alerts
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

SELECT public.groundwork_set_owner('inventory', 'groundwork_owner');
-- The two catalog functions above; only them, so that no catalog table is locked.
ALTER FUNCTION catalog.search_products(text, uuid, numeric, numeric, text[], boolean, real, uuid, integer)
    OWNER TO groundwork_owner;
ALTER FUNCTION catalog.get_product_details(uuid) OWNER TO groundwork_owner;

-- Privileges: the application reads everything of its tenant, writes suppliers and
-- the reorder settings, and moves stock through the functions only.
GRANT USAGE ON SCHEMA inventory TO groundwork_app, groundwork_readonly, groundwork_worker;
GRANT SELECT ON inventory.suppliers, inventory.stock_levels, inventory.reservations,
    inventory.movements, inventory.alerts, inventory.stock_analytics
    TO groundwork_app, groundwork_readonly;
GRANT INSERT (id, name, email, phone, lead_time_days, active, metadata),
      UPDATE (name, email, phone, lead_time_days, active, metadata),
      DELETE
    ON inventory.suppliers TO groundwork_app;
GRANT UPDATE (reorder_point, reorder_quantity, supplier_id, unit_cost)
    ON inventory.stock_levels TO groundwork_app;

REVOKE ALL ON FUNCTION inventory.track_low_stock(),
    inventory.check_quantity(integer),
    inventory.require_tenant(text),
    inventory.require_product(uuid, uuid),
    inventory.expire_product_reservations(uuid, uuid, uuid),
    inventory.refuse_reservation(uuid, uuid, text),
    inventory.receive_stock(uuid, integer),
    inventory.adjust_stock(uuid, integer, text),
    inventory.reserve_inventory(uuid, integer),
    inventory.release_reservation(uuid),
    inventory.fulfill_reservation(uuid),
    inventory.cleanup_expired_reservations(),
    catalog.search_products(text, uuid, numeric, numeric, text[], boolean, real, uuid, integer),
    catalog.get_product_details(uuid)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    inventory.receive_stock(uuid, integer),
    inventory.adjust_stock(uuid, integer, text),
    inventory.reserve_inventory(uuid, integer),
    inventory.release_reservation(uuid),
    inventory.fulfill_reservation(uuid)
    TO groundwork_app;
GRANT EXECUTE ON FUNCTION inventory.cleanup_expired_reservations() TO groundwork_app, groundwork_worker;
GRANT EXECUTE ON FUNCTION
    catalog.search_products(text, uuid, numeric, numeric, text[], boolean, real, uuid, integer),
    catalog.get_product_details(uuid)
    TO groundwork_app, groundwork_readonly;
