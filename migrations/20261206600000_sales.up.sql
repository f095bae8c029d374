-- Why: carts, orders and a checkout that is one transaction (seed 002,
-- docs/REQUIREMENTS.md, "sales"), per tenant.
--
-- * Carts live in PostgreSQL, not Redis (a deviation from the seed): one open cart per
--   user and tenant (a partial unique index), 30 days after its last change it
--   expires; its items are one row per product, quantity 1 to 1,000. The application
--   writes carts and items directly under row-level security (its own user's open
--   cart only); nothing else in this schema is written except through the functions
--   below (SECURITY DEFINER, owned by groundwork_owner).
-- * checkout(cart_id, idempotency_key) makes the order in one statement of the
--   caller's transaction: the cart row is locked first (so two checkouts of one cart,
--   and two of one user, since a user has one open cart, run one after the other),
--   then the idempotency key is looked up (a key already used for this cart returns
--   its order, also when the first call committed while this one waited for the
--   cart), then the business rules (validate_order_business_rules: total 10.00 to
--   10,000.00 inclusive, at most 50 units, at most 5 pending orders per user; pending
--   orders past their time do not count), then the
--   order, its items at the catalog's current prices, one inventory reservation per
--   item through inventory.reserve_inventory (all or nothing: the first item out of
--   stock raises WN002 and takes everything back), an outbox message
--   (sales.order_placed) and the cart closed. The key is unique per tenant
--   (orders_idempotency_key_key): a key used for another cart is refused (WS008).
-- * A pending order expires 30 minutes after checkout; its reservations last as long
--   as it does (inventory's own 5 minutes are for reservations made outside an
--   order), so stock held for an order being paid is never sold to someone else.
--   cleanup_expired_orders() expires them and gives the stock back: the current
--   tenant's (application role) or every tenant's (groundwork_worker, no tenant), at
--   most 10,000 per call, skipping orders another transaction holds.
-- * order_status_history is written by trigger on every status change; a BEFORE
--   UPDATE trigger refuses illegal transitions (WS007): pending -> paid, cancelled,
--   expired; paid -> shipped, refunded; shipped -> delivered, refunded; delivered ->
--   refunded; nothing leaves cancelled, expired or refunded.
-- * order_items: line_total = unit_price * quantity - discount_amount + tax_amount
--   (CHECK), the discount never above the line's price; orders: total_amount =
--   subtotal - discount + tax (CHECK), total 10.00 to 10,000.00 and 1 to 50 units
--   (CHECK, whatever writes the row).
-- * Refusals (nothing written): WS001 not found, WS002 cart not open or expired, WS003
--   empty cart, WS004 total out of range, WS005 too many units, WS006 too many pending
--   orders, WS007 illegal status change, WS008 idempotency key used for another cart,
--   WS009 a product in the cart is inactive, gone or priced in another currency;
--   inventory's WN002 when an item is out of stock; 42501 without a tenant and user,
--   or when the organization or user is not active; 22004 NULL arguments; 22023 a
--   malformed key; 54000 a key above 255 characters.

CREATE SCHEMA sales;

CREATE TYPE sales.cart_status AS ENUM ('open', 'checked_out', 'expired');
CREATE TYPE sales.order_status AS ENUM
    ('pending', 'paid', 'shipped', 'delivered', 'cancelled', 'expired', 'refunded');

CREATE TABLE sales.carts (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL DEFAULT identity.current_org_id()
        CONSTRAINT carts_organization_id_fkey
            REFERENCES identity.organizations (id) ON DELETE CASCADE,
    user_id uuid NOT NULL DEFAULT identity.current_user_id()
        CONSTRAINT carts_user_id_fkey REFERENCES identity.users (id) ON DELETE CASCADE,
    status sales.cart_status NOT NULL DEFAULT 'open',
    currency text NOT NULL DEFAULT 'USD'
        CONSTRAINT carts_currency_format CHECK (currency ~ '^[A-Z]{3}$'),
    order_id uuid,
    expires_at timestamptz NOT NULL DEFAULT now() + interval '30 days',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT carts_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT carts_checked_out_has_order CHECK ((status = 'checked_out') = (order_id IS NOT NULL))
);

-- One open cart per user and tenant: checkouts of one user queue on its row.
CREATE UNIQUE INDEX carts_open_key ON sales.carts (organization_id, user_id) WHERE status = 'open';
CREATE INDEX carts_expires_idx ON sales.carts (expires_at) WHERE status = 'open';
CREATE INDEX carts_user_id_idx ON sales.carts (user_id);

CREATE TABLE sales.cart_items (
    organization_id uuid NOT NULL DEFAULT identity.current_org_id(),
    cart_id uuid NOT NULL,
    product_id uuid NOT NULL,
    quantity integer NOT NULL
        CONSTRAINT cart_items_quantity_range CHECK (quantity BETWEEN 1 AND 1000),
    added_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT cart_items_pkey PRIMARY KEY (organization_id, cart_id, product_id),
    CONSTRAINT cart_items_cart_id_fkey FOREIGN KEY (organization_id, cart_id)
        REFERENCES sales.carts (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT cart_items_product_id_fkey FOREIGN KEY (organization_id, product_id)
        REFERENCES catalog.products (organization_id, id) ON DELETE CASCADE
);

CREATE INDEX cart_items_product_idx ON sales.cart_items (organization_id, product_id);

CREATE TABLE sales.orders (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL
        CONSTRAINT orders_organization_id_fkey
            REFERENCES identity.organizations (id) ON DELETE RESTRICT,
    order_number text NOT NULL
        CONSTRAINT orders_order_number_format CHECK (order_number ~ '^SO-[0-9A-F]{16}$'),
    user_id uuid NOT NULL
        CONSTRAINT orders_user_id_fkey REFERENCES identity.users (id) ON DELETE RESTRICT,
    cart_id uuid NOT NULL,
    idempotency_key text NOT NULL
        CONSTRAINT orders_idempotency_key_length CHECK (char_length(idempotency_key) BETWEEN 1 AND 255),
    status sales.order_status NOT NULL DEFAULT 'pending',
    currency text NOT NULL
        CONSTRAINT orders_currency_format CHECK (currency ~ '^[A-Z]{3}$'),
    subtotal_amount numeric(12, 2) NOT NULL
        CONSTRAINT orders_subtotal_nonnegative CHECK (subtotal_amount >= 0),
    discount_amount numeric(12, 2) NOT NULL DEFAULT 0
        CONSTRAINT orders_discount_nonnegative CHECK (discount_amount >= 0),
    tax_amount numeric(12, 2) NOT NULL DEFAULT 0
        CONSTRAINT orders_tax_nonnegative CHECK (tax_amount >= 0),
    total_amount numeric(12, 2) NOT NULL
        CONSTRAINT orders_total_range CHECK (total_amount BETWEEN 10.00 AND 10000.00),
    item_count integer NOT NULL
        CONSTRAINT orders_item_count_range CHECK (item_count BETWEEN 1 AND 50),
    expires_at timestamptz,
    paid_at timestamptz,
    cancelled_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT orders_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT orders_order_number_key UNIQUE (organization_id, order_number),
    CONSTRAINT orders_idempotency_key_key UNIQUE (organization_id, idempotency_key),
    CONSTRAINT orders_total_consistent
        CHECK (total_amount = subtotal_amount - discount_amount + tax_amount),
    CONSTRAINT orders_pending_expires CHECK (status <> 'pending' OR expires_at IS NOT NULL)
);

-- A user's orders, newest first; pending ones counted by the rules.
CREATE INDEX orders_user_idx ON sales.orders (organization_id, user_id, created_at DESC);
CREATE INDEX orders_pending_user_idx ON sales.orders (organization_id, user_id) WHERE status = 'pending';
CREATE INDEX orders_pending_expires_idx ON sales.orders (expires_at) WHERE status = 'pending';
CREATE INDEX orders_user_id_idx ON sales.orders (user_id);

ALTER TABLE sales.carts ADD CONSTRAINT carts_order_id_fkey
    FOREIGN KEY (organization_id, order_id) REFERENCES sales.orders (organization_id, id);

CREATE TABLE sales.order_items (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL,
    order_id uuid NOT NULL,
    product_id uuid NOT NULL,
    sku text NOT NULL,
    name text NOT NULL,
    quantity integer NOT NULL
        CONSTRAINT order_items_quantity_range CHECK (quantity BETWEEN 1 AND 50),
    unit_price numeric(12, 2) NOT NULL
        CONSTRAINT order_items_unit_price_nonnegative CHECK (unit_price >= 0),
    discount_amount numeric(12, 2) NOT NULL DEFAULT 0
        CONSTRAINT order_items_discount_range
            CHECK (discount_amount >= 0 AND discount_amount <= unit_price * quantity),
    tax_amount numeric(12, 2) NOT NULL DEFAULT 0
        CONSTRAINT order_items_tax_nonnegative CHECK (tax_amount >= 0),
    line_total numeric(12, 2) NOT NULL,
    reservation_id uuid,
    CONSTRAINT order_items_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT order_items_product_key UNIQUE (organization_id, order_id, product_id),
    CONSTRAINT order_items_order_id_fkey FOREIGN KEY (organization_id, order_id)
        REFERENCES sales.orders (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT order_items_product_id_fkey FOREIGN KEY (organization_id, product_id)
        REFERENCES catalog.products (organization_id, id) ON DELETE RESTRICT,
    CONSTRAINT order_items_reservation_id_fkey FOREIGN KEY (organization_id, reservation_id)
        REFERENCES inventory.reservations (organization_id, id),
    CONSTRAINT order_items_line_total_consistent
        CHECK (line_total = unit_price * quantity - discount_amount + tax_amount)
);

CREATE INDEX order_items_product_idx ON sales.order_items (organization_id, product_id);
CREATE INDEX order_items_reservation_idx ON sales.order_items (organization_id, reservation_id);

CREATE TABLE sales.order_status_history (
    id bigint GENERATED ALWAYS AS IDENTITY,
    organization_id uuid NOT NULL,
    order_id uuid NOT NULL,
    from_status sales.order_status,
    to_status sales.order_status NOT NULL,
    changed_by uuid,
    changed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT order_status_history_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT order_status_history_order_id_fkey FOREIGN KEY (organization_id, order_id)
        REFERENCES sales.orders (organization_id, id) ON DELETE CASCADE
);

CREATE INDEX order_status_history_order_idx ON sales.order_status_history (organization_id, order_id, id);
CREATE INDEX order_status_history_changed_at_idx ON sales.order_status_history (changed_at);

CREATE TABLE sales.order_notes (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL DEFAULT identity.current_org_id(),
    order_id uuid NOT NULL,
    author_id uuid DEFAULT identity.current_user_id()
        CONSTRAINT order_notes_author_id_fkey REFERENCES identity.users (id) ON DELETE SET NULL,
    body text NOT NULL
        CONSTRAINT order_notes_body_length CHECK (char_length(btrim(body)) BETWEEN 1 AND 4000),
    internal boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT order_notes_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT order_notes_order_id_fkey FOREIGN KEY (organization_id, order_id)
        REFERENCES sales.orders (organization_id, id) ON DELETE CASCADE
);

CREATE INDEX order_notes_order_idx ON sales.order_notes (organization_id, order_id, created_at);
CREATE INDEX order_notes_author_id_idx ON sales.order_notes (author_id);

CREATE TABLE sales.order_fulfillments (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL DEFAULT identity.current_org_id(),
    order_id uuid NOT NULL,
    carrier text NOT NULL
        CONSTRAINT order_fulfillments_carrier_length CHECK (char_length(btrim(carrier)) BETWEEN 1 AND 100),
    tracking_number text
        CONSTRAINT order_fulfillments_tracking_number_length
            CHECK (char_length(btrim(tracking_number)) BETWEEN 1 AND 100),
    shipped_at timestamptz,
    delivered_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT order_fulfillments_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT order_fulfillments_tracking_key UNIQUE (organization_id, carrier, tracking_number),
    CONSTRAINT order_fulfillments_order_id_fkey FOREIGN KEY (organization_id, order_id)
        REFERENCES sales.orders (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT order_fulfillments_delivered_after_shipped
        CHECK (delivered_at IS NULL OR (shipped_at IS NOT NULL AND delivered_at >= shipped_at))
);

CREATE INDEX order_fulfillments_order_idx ON sales.order_fulfillments (organization_id, order_id);

CREATE TRIGGER carts_set_updated_at BEFORE UPDATE ON sales.carts
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER cart_items_set_updated_at BEFORE UPDATE ON sales.cart_items
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER orders_set_updated_at BEFORE UPDATE ON sales.orders
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER order_fulfillments_set_updated_at BEFORE UPDATE ON sales.order_fulfillments
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

-- A change of a cart's items keeps the cart alive for 30 more days.
CREATE FUNCTION sales.touch_cart() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, sales, pg_temp
AS $$
DECLARE
    item sales.cart_items := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
BEGIN
    UPDATE sales.carts c SET expires_at = now() + interval '30 days'
    WHERE c.organization_id = item.organization_id AND c.id = item.cart_id AND c.status = 'open';
    RETURN NULL;
END
$$;

CREATE TRIGGER cart_items_touch_cart AFTER INSERT OR UPDATE OR DELETE ON sales.cart_items
    FOR EACH ROW EXECUTE FUNCTION sales.touch_cart();

-- Refuses an illegal status change (WS007) and stamps paid_at / cancelled_at.
CREATE FUNCTION sales.check_order_transition() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, sales, pg_temp
AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        IF NOT (OLD.status, NEW.status) IN (
                ('pending', 'paid'), ('pending', 'cancelled'), ('pending', 'expired'),
                ('paid', 'shipped'), ('paid', 'refunded'),
                ('shipped', 'delivered'), ('shipped', 'refunded'),
                ('delivered', 'refunded')) THEN
            RAISE EXCEPTION 'order % is %, it cannot become %', OLD.id, OLD.status, NEW.status
                USING ERRCODE = 'WS007';
        END IF;
        IF NEW.status = 'paid' THEN
            NEW.paid_at := now();
        ELSIF NEW.status IN ('cancelled', 'expired') THEN
            NEW.cancelled_at := now();
        END IF;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER orders_check_transition BEFORE UPDATE OF status ON sales.orders
    FOR EACH ROW EXECUTE FUNCTION sales.check_order_transition();

-- Writes every status an order takes to its history, with the user who caused it.
CREATE FUNCTION sales.record_order_status() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, sales, pg_temp
AS $$
BEGIN
    INSERT INTO sales.order_status_history (organization_id, order_id, from_status, to_status, changed_by)
    VALUES (NEW.organization_id, NEW.id,
            CASE WHEN TG_OP = 'UPDATE' THEN OLD.status END, NEW.status, identity.current_user_id());
    RETURN NULL;
END
$$;

CREATE TRIGGER orders_record_status_insert AFTER INSERT ON sales.orders
    FOR EACH ROW EXECUTE FUNCTION sales.record_order_status();
CREATE TRIGGER orders_record_status_update AFTER UPDATE OF status ON sales.orders
    FOR EACH ROW WHEN (NEW.status IS DISTINCT FROM OLD.status)
    EXECUTE FUNCTION sales.record_order_status();

-- The current tenant and user, both active, or 42501 naming what needed them.
CREATE FUNCTION sales.require_user(action text) RETURNS uuid[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, sales, pg_temp
AS $$
DECLARE
    org uuid := inventory.require_tenant(action);
    usr uuid := identity.current_user_id();
BEGIN
    IF usr IS NULL THEN
        RAISE EXCEPTION '% needs a user: app.current_user_id is not set', action
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT EXISTS (SELECT FROM identity.users u WHERE u.id = usr AND u.status = 'active') THEN
        RAISE EXCEPTION '% needs an active user', action USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN ARRAY[org, usr];
END
$$;

-- The seed's order rules, for an order as it is or is about to be written: total
-- 10.00 to 10,000.00 inclusive (WS004), at most 50 units (WS005), and for a pending
-- order at most 5 pending orders of its user, this one included (WS006). Returns
-- nothing; raises the first rule broken. checkout calls it before it writes. It runs
-- with the caller's rights: it counts only orders the caller may read (its tenant's).
CREATE FUNCTION sales.validate_order_business_rules(p_order sales.orders) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, sales, pg_temp
AS $$
DECLARE
    pending integer;
BEGIN
    IF p_order IS NULL THEN
        RAISE EXCEPTION 'an order must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_order.total_amount IS NULL OR p_order.total_amount NOT BETWEEN 10.00 AND 10000.00 THEN
        RAISE EXCEPTION 'an order''s total is 10.00 to 10000.00, not %', p_order.total_amount
            USING ERRCODE = 'WS004',
                  DETAIL = jsonb_build_object('total', p_order.total_amount, 'min', 10.00, 'max', 10000.00);
    END IF;
    IF p_order.item_count IS NULL OR p_order.item_count > 50 THEN
        RAISE EXCEPTION 'an order holds at most 50 units, not %', p_order.item_count
            USING ERRCODE = 'WS005', DETAIL = jsonb_build_object('units', p_order.item_count, 'limit', 50);
    END IF;
    IF p_order.status = 'pending' THEN
        SELECT count(*) INTO pending FROM sales.orders o
        WHERE o.organization_id = p_order.organization_id AND o.user_id = p_order.user_id
          AND o.status = 'pending' AND o.expires_at > now() AND o.id IS DISTINCT FROM p_order.id;
        IF pending >= 5 THEN
            RAISE EXCEPTION 'user % has 5 pending orders already', p_order.user_id
                USING ERRCODE = 'WS006', DETAIL = jsonb_build_object('limit', 5);
        END IF;
    END IF;
END
$$;

-- Gives back the stock an order's active reservations hold (they become released, or
-- expired when the order expired). Returns how many reservations.
CREATE FUNCTION sales.release_order_stock(p_org uuid, p_order_id uuid, p_expired boolean) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, sales, pg_temp
AS $$
DECLARE
    released integer;
BEGIN
    -- Stock rows in product order, as checkout takes them, so the two never deadlock.
    PERFORM FROM inventory.stock_levels s
    WHERE s.organization_id = p_org
      AND s.product_id IN (SELECT i.product_id FROM sales.order_items i
                           WHERE i.organization_id = p_org AND i.order_id = p_order_id)
    ORDER BY s.product_id
    FOR UPDATE;
    WITH gone AS (
        UPDATE inventory.reservations r
        SET status = CASE WHEN p_expired THEN 'expired' ELSE 'released' END::inventory.reservation_status,
            finished_at = now()
        FROM sales.order_items i
        WHERE i.organization_id = p_org AND i.order_id = p_order_id
          AND r.organization_id = p_org AND r.id = i.reservation_id AND r.status = 'active'
        RETURNING r.product_id, r.quantity),
    restocked AS (
        UPDATE inventory.stock_levels s SET reserved = s.reserved - t.quantity
        FROM (SELECT g.product_id, sum(g.quantity)::integer AS quantity FROM gone g GROUP BY g.product_id) t
        WHERE s.organization_id = p_org AND s.product_id = t.product_id
        RETURNING 1)
    SELECT count(*) INTO released FROM gone;
    RETURN released;
END
$$;

-- Sells what an order's reservations hold (payment captured): each becomes fulfilled,
-- on_hand and reserved go down and a sale goes to the ledger with the reservation as
-- its reference. A reservation that is no longer active (it cannot be while its order
-- is pending) refuses the sale (55000).
CREATE FUNCTION sales.fulfill_order_stock(p_org uuid, p_order_id uuid) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, sales, pg_temp
AS $$
DECLARE
    item record;
    after integer;
BEGIN
    PERFORM FROM inventory.stock_levels s
    WHERE s.organization_id = p_org
      AND s.product_id IN (SELECT i.product_id FROM sales.order_items i
                           WHERE i.organization_id = p_org AND i.order_id = p_order_id)
    ORDER BY s.product_id
    FOR UPDATE;
    FOR item IN
        UPDATE inventory.reservations r SET status = 'fulfilled', finished_at = now()
        FROM sales.order_items i
        WHERE i.organization_id = p_org AND i.order_id = p_order_id
          AND r.organization_id = p_org AND r.id = i.reservation_id AND r.status = 'active'
        RETURNING r.id, r.product_id, r.quantity
    LOOP
        UPDATE inventory.stock_levels s
        SET on_hand = s.on_hand - item.quantity, reserved = s.reserved - item.quantity
        WHERE s.organization_id = p_org AND s.product_id = item.product_id
        RETURNING s.on_hand INTO after;
        INSERT INTO inventory.movements
            (organization_id, product_id, kind, quantity, on_hand_after, reservation_id)
        VALUES (p_org, item.product_id, 'sale', -item.quantity, after, item.id);
    END LOOP;
    IF EXISTS (SELECT FROM sales.order_items i
               JOIN inventory.reservations r ON r.organization_id = i.organization_id AND r.id = i.reservation_id
               WHERE i.organization_id = p_org AND i.order_id = p_order_id AND r.status <> 'fulfilled') THEN
        RAISE EXCEPTION 'order % holds a reservation that is no longer active', p_order_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
END
$$;

-- Expires the pending orders past their time of a tenant (p_org), or of every tenant
-- (NULL), giving their stock back; skips orders another transaction holds; at most
-- p_limit. Returns how many orders expired.
CREATE FUNCTION sales.expire_orders(p_org uuid, p_limit integer) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, sales, pg_temp
AS $$
DECLARE
    gone record;
    expired integer := 0;
BEGIN
    FOR gone IN
        SELECT o.organization_id, o.id FROM sales.orders o
        WHERE o.status = 'pending' AND o.expires_at <= now()
          AND (p_org IS NULL OR o.organization_id = p_org)
        ORDER BY o.expires_at
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    LOOP
        UPDATE sales.orders o SET status = 'expired'
        WHERE o.organization_id = gone.organization_id AND o.id = gone.id;
        PERFORM sales.release_order_stock(gone.organization_id, gone.id, true);
        expired := expired + 1;
    END LOOP;
    RETURN expired;
END
$$;

-- Places the order for the current user's open cart: the design is in this file's
-- header. Returns the order's id; the same idempotency key (for the same cart)
-- returns the same order.
CREATE FUNCTION sales.checkout(cart_id uuid, idempotency_key text) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, sales, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    org uuid := identity.current_org_id();
    usr uuid := identity.current_user_id();
    cart sales.carts;
    existing sales.orders;
    placed sales.orders;
    bad text;
    units integer;
    subtotal numeric;
    products uuid[];
    quantities integer[];
    reservations uuid[] := '{}';
    i integer;
BEGIN
    IF checkout.cart_id IS NULL OR checkout.idempotency_key IS NULL THEN
        RAISE EXCEPTION 'cart_id and idempotency_key must not be null' USING ERRCODE = 'null_value_not_allowed';
    ELSIF char_length(checkout.idempotency_key) > 255 THEN
        RAISE EXCEPTION 'an idempotency key is at most 255 characters, not %',
            char_length(checkout.idempotency_key) USING ERRCODE = 'program_limit_exceeded';
    ELSIF char_length(btrim(checkout.idempotency_key)) = 0 THEN
        RAISE EXCEPTION 'an idempotency key is not empty' USING ERRCODE = 'invalid_parameter_value';
    ELSIF org IS NULL OR usr IS NULL THEN
        PERFORM sales.require_user('checking out');
    END IF;

    -- The cart, locked, of an active user of an active organization; why not, after.
    SELECT c.* INTO cart FROM sales.carts c
    JOIN identity.organizations o ON o.id = c.organization_id AND o.status = 'active'
    JOIN identity.users u ON u.id = c.user_id AND u.status = 'active'
    WHERE c.organization_id = org AND c.id = checkout.cart_id AND c.user_id = usr
    FOR UPDATE OF c;
    IF NOT FOUND THEN
        PERFORM sales.require_user('checking out');
        RAISE EXCEPTION 'cart % not found', checkout.cart_id USING ERRCODE = 'WS001';
    END IF;

    -- After the cart's lock: a call with the same key that committed meanwhile is seen.
    SELECT * INTO existing FROM sales.orders o
    WHERE o.organization_id = org AND o.idempotency_key = checkout.idempotency_key;
    IF FOUND THEN
        IF existing.cart_id = checkout.cart_id AND existing.user_id = usr THEN
            RETURN existing.id;
        END IF;
        RAISE EXCEPTION 'idempotency key % was used for another checkout', checkout.idempotency_key
            USING ERRCODE = 'WS008';
    END IF;

    IF cart.status <> 'open' OR cart.expires_at <= now() THEN
        RAISE EXCEPTION 'cart % is %, it cannot be checked out', checkout.cart_id,
            CASE WHEN cart.status = 'open' THEN 'expired' ELSE cart.status::text END
            USING ERRCODE = 'WS002';
    END IF;

    -- The items in product order (the order reservations lock stock rows in), with
    -- any that cannot be sold.
    SELECT string_agg(i.product_id::text, ', ' ORDER BY i.product_id)
               FILTER (WHERE p.id IS NULL OR NOT p.active OR p.currency <> cart.currency),
           sum(i.quantity), sum(p.price * i.quantity),
           array_agg(i.product_id ORDER BY i.product_id), array_agg(i.quantity ORDER BY i.product_id)
    INTO bad, units, subtotal, products, quantities
    FROM sales.cart_items i
    LEFT JOIN catalog.products p ON p.organization_id = i.organization_id AND p.id = i.product_id
    WHERE i.organization_id = org AND i.cart_id = checkout.cart_id;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'products % cannot be sold: inactive or in another currency than %', bad, cart.currency
            USING ERRCODE = 'WS009';
    ELSIF units IS NULL THEN
        RAISE EXCEPTION 'cart % is empty', checkout.cart_id USING ERRCODE = 'WS003';
    END IF;

    placed.id := gen_random_uuid();
    placed.organization_id := org;
    placed.order_number := 'SO-' || upper(substr(replace(gen_random_uuid()::text, '-', ''), 1, 16));
    placed.user_id := usr;
    placed.cart_id := checkout.cart_id;
    placed.idempotency_key := checkout.idempotency_key;
    placed.status := 'pending';
    placed.currency := cart.currency;
    placed.subtotal_amount := subtotal;
    placed.discount_amount := 0;
    placed.tax_amount := 0;
    placed.total_amount := subtotal;
    placed.item_count := units;
    placed.expires_at := now() + interval '30 minutes';
    placed.created_at := now();
    placed.updated_at := now();

    -- Pending orders past their time do not count (the clean-up expires them).
    PERFORM sales.validate_order_business_rules(placed);
    INSERT INTO sales.orders SELECT placed.*;

    FOR i IN 1..array_length(products, 1) LOOP
        reservations := reservations || inventory.reserve_inventory(products[i], quantities[i]);
    END LOOP;
    -- The order's reservations last as long as it is pending.
    UPDATE inventory.reservations r SET expires_at = placed.expires_at
    WHERE r.organization_id = org AND r.id = ANY (reservations);
    INSERT INTO sales.order_items (organization_id, order_id, product_id, sku, name, quantity,
                                   unit_price, line_total, reservation_id)
    SELECT org, placed.id, p.id, p.sku, p.name, l.quantity, p.price, p.price * l.quantity, l.reservation
    FROM unnest(products, quantities, reservations) AS l (product_id, quantity, reservation)
    JOIN catalog.products p ON p.organization_id = org AND p.id = l.product_id;

    INSERT INTO messaging.outbox_messages (organization_id, topic, partition_key, payload)
    VALUES (org, 'sales.order_placed', placed.id::text,
            jsonb_build_object('order_id', placed.id, 'order_number', placed.order_number,
                               'user_id', usr, 'currency', placed.currency,
                               'total_amount', placed.total_amount, 'item_count', units));

    UPDATE sales.carts c SET status = 'checked_out', order_id = placed.id
    WHERE c.organization_id = org AND c.id = checkout.cart_id;
    RETURN placed.id;
END
$$;

-- Cancels a pending order of the current tenant (the current user's own, when a user
-- is set) and gives its stock back. True when it
-- was cancelled now, false when it was cancelled or had expired already; WS007 for
-- an order that is paid or further on, WS001 for none.
CREATE FUNCTION sales.cancel_order(order_id uuid) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, sales, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    org uuid := inventory.require_tenant('cancelling an order');
    usr uuid := identity.current_user_id();
    held sales.orders;
BEGIN
    IF cancel_order.order_id IS NULL THEN
        RAISE EXCEPTION 'an order_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO held FROM sales.orders o
    WHERE o.organization_id = org AND o.id = cancel_order.order_id AND o.user_id = coalesce(usr, o.user_id)
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order % not found', cancel_order.order_id USING ERRCODE = 'WS001';
    ELSIF held.status IN ('cancelled', 'expired') THEN
        RETURN false;
    END IF;
    -- A paid order is refunded, not cancelled: the transition trigger refuses it.
    UPDATE sales.orders o SET status = 'cancelled' WHERE o.organization_id = org AND o.id = held.id;
    PERFORM sales.release_order_stock(org, held.id, false);
    RETURN true;
END
$$;

-- Expires pending orders past their time and gives their stock back: the current
-- tenant's when a tenant is set (the application role), every tenant's for a member
-- of groundwork_worker with no tenant set (a periodic job). At most 10,000 per call,
-- skipping orders another transaction holds; returns how many expired.
CREATE FUNCTION sales.cleanup_expired_orders() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, sales, pg_temp
AS $$
DECLARE
    org uuid := messaging.cleanup_tenant('cleaning up orders');
BEGIN
    RETURN sales.expire_orders(org, 10000);
END
$$;

-- Marks open carts past their time expired: the current tenant's, or every tenant's
-- for groundwork_worker with no tenant set; at most 10,000 per call, skipping carts
-- another transaction holds. Returns how many.
CREATE FUNCTION sales.cleanup_expired_carts() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, sales, pg_temp
AS $$
DECLARE
    org uuid := messaging.cleanup_tenant('cleaning up carts');
    expired integer;
BEGIN
    WITH picked AS (
        SELECT c.organization_id, c.id FROM sales.carts c
        WHERE c.status = 'open' AND c.expires_at <= now() AND (org IS NULL OR c.organization_id = org)
        LIMIT 10000
        FOR UPDATE SKIP LOCKED),
    gone AS (
        UPDATE sales.carts c SET status = 'expired'
        FROM picked WHERE c.organization_id = picked.organization_id AND c.id = picked.id
        RETURNING 1)
    SELECT count(*) INTO expired FROM gone;
    RETURN expired;
END
$$;

-- Per day and currency of the tenant: orders placed, paid, cancelled or expired, and
-- revenue. Runs with the caller's rights (security_invoker): row-level security applies.
CREATE VIEW sales.order_analytics WITH (security_invoker = true) AS
SELECT o.organization_id, date_trunc('day', o.created_at) AS day, o.currency,
       count(*) AS orders,
       count(*) FILTER (WHERE o.status IN ('paid', 'shipped', 'delivered')) AS paid_orders,
       count(*) FILTER (WHERE o.status = 'cancelled') AS cancelled_orders,
       count(*) FILTER (WHERE o.status = 'expired') AS expired_orders,
       coalesce(sum(o.total_amount) FILTER (WHERE o.status IN ('paid', 'shipped', 'delivered')), 0)
           AS revenue,
       round(avg(o.total_amount), 2) AS average_order_value
FROM sales.orders o
GROUP BY o.organization_id, date_trunc('day', o.created_at), o.currency;

-- Row-level security: the tenant; carts and their items only of the current user.
ALTER TABLE sales.carts ENABLE ROW LEVEL SECURITY;
CREATE POLICY carts_owner ON sales.carts
    FOR ALL TO groundwork_app, groundwork_readonly, groundwork_service
    USING (organization_id = identity.current_org_id() AND user_id = identity.current_user_id())
    WITH CHECK (organization_id = identity.current_org_id() AND user_id = identity.current_user_id()
                AND status = 'open');

ALTER TABLE sales.cart_items ENABLE ROW LEVEL SECURITY;
-- Items of the current user's carts; written only while the cart is open.
CREATE POLICY cart_items_owner ON sales.cart_items
    FOR ALL TO groundwork_app, groundwork_readonly, groundwork_service
    USING (organization_id = identity.current_org_id()
           AND EXISTS (SELECT FROM sales.carts c
                       WHERE c.organization_id = cart_items.organization_id AND c.id = cart_items.cart_id))
    WITH CHECK (organization_id = identity.current_org_id()
                AND EXISTS (SELECT FROM sales.carts c
                            WHERE c.organization_id = cart_items.organization_id
                              AND c.id = cart_items.cart_id AND c.status = 'open'));

ALTER TABLE sales.orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY orders_tenant ON sales.orders
    FOR ALL TO groundwork_app, groundwork_readonly, groundwork_service
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

ALTER TABLE sales.order_items ENABLE ROW LEVEL SECURITY;
CREATE POLICY order_items_tenant ON sales.order_items
    FOR ALL TO groundwork_app, groundwork_readonly, groundwork_service
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

ALTER TABLE sales.order_status_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY order_status_history_tenant ON sales.order_status_history
    FOR ALL TO groundwork_app, groundwork_readonly, groundwork_service
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

ALTER TABLE sales.order_notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY order_notes_tenant ON sales.order_notes
    FOR ALL TO groundwork_app, groundwork_readonly, groundwork_service
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

ALTER TABLE sales.order_fulfillments ENABLE ROW LEVEL SECURITY;
CREATE POLICY order_fulfillments_tenant ON sales.order_fulfillments
    FOR ALL TO groundwork_app, groundwork_readonly, groundwork_service
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

SELECT public.groundwork_set_owner('sales', 'groundwork_owner');

-- Privileges: the application keeps its user's carts, reads orders, writes notes and
-- fulfilments, and places, cancels and expires orders through the functions only.
GRANT USAGE ON SCHEMA sales TO groundwork_app, groundwork_readonly, groundwork_worker;
GRANT SELECT ON sales.carts, sales.cart_items, sales.orders, sales.order_items,
    sales.order_status_history, sales.order_notes, sales.order_fulfillments, sales.order_analytics
    TO groundwork_app, groundwork_readonly;
GRANT INSERT (id, currency), DELETE ON sales.carts TO groundwork_app;
GRANT INSERT (cart_id, product_id, quantity), UPDATE (quantity), DELETE ON sales.cart_items TO groundwork_app;
GRANT INSERT (id, order_id, body, internal) ON sales.order_notes TO groundwork_app;
GRANT INSERT (id, order_id, carrier, tracking_number, shipped_at, delivered_at),
      UPDATE (carrier, tracking_number, shipped_at, delivered_at)
    ON sales.order_fulfillments TO groundwork_app;

REVOKE ALL ON FUNCTION sales.touch_cart(),
    sales.check_order_transition(),
    sales.record_order_status(),
    sales.require_user(text),
    sales.validate_order_business_rules(sales.orders),
    sales.release_order_stock(uuid, uuid, boolean),
    sales.fulfill_order_stock(uuid, uuid),
    sales.expire_orders(uuid, integer),
    sales.checkout(uuid, text),
    sales.cancel_order(uuid),
    sales.cleanup_expired_orders(),
    sales.cleanup_expired_carts()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    sales.validate_order_business_rules(sales.orders),
    sales.checkout(uuid, text),
    sales.cancel_order(uuid)
    TO groundwork_app;
GRANT EXECUTE ON FUNCTION sales.cleanup_expired_orders(), sales.cleanup_expired_carts()
    TO groundwork_app, groundwork_worker;

-- The context's service role may do here what the application role may; the
-- read-only analytics role what groundwork_readonly may (docs/SECURITY.md, "Service
-- roles").
SELECT public.groundwork_grant_like('sales', 'groundwork_app', 'sales_service');
SELECT public.groundwork_grant_like('sales', 'groundwork_readonly', 'analytics_service');
