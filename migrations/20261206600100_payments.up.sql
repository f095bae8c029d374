-- Why: payments for orders (seed 002, docs/REQUIREMENTS.md, "payments"), per tenant:
-- tokenised payment methods, the authorize -> capture -> settle state machine
-- enforced by the database, an append-only log of every state change, refunds that
-- never exceed what was captured, disputes, and analytics.
--
-- * payment_methods hold a provider's token, brand, last four digits and expiry, never
--   a card number: the token may not contain one (13 to 19 digits, in a row or in a
--   card's groups, that pass the Luhn check; CHECK), and
--   the event trigger payments_refuse_card_numbers refuses any column, in any schema,
--   named like a card number, CVV or CVC (tested). One default method per user (a
--   partial unique index; set_default_payment_method() moves it).
-- * payments.status: authorized -> captured -> settled, authorized -> voided or
--   expired, captured or settled -> refunded (once refunds reach the captured amount).
--   A BEFORE UPDATE trigger refuses every other change (WY002), whatever writes the
--   row. One live (authorized, captured or settled) payment per order (a partial
--   unique index). An authorization lasts as long as its pending order (30 minutes
--   after checkout).
-- * refunds: inserting one adds its amount to the payment's refunded_amount, and a
--   CHECK keeps refunded_amount <= captured_amount, so no writer can refund more than
--   was captured; refund_payment() also refuses it first with WY003 and the amount
--   still available.
-- * payment_transactions: one row per state change and per refund, written by
--   triggers; a trigger refuses every UPDATE and DELETE (WY007), the application may
--   only read it.
-- * Locks: every function locks the order before the payment (authorisation,
--   capture, void, refund, expiry; and sales.cancel_order, whose order update voids
--   the order's authorization through the trigger below), so two of them never
--   deadlock; concurrent refunds of one payment run one after the other.
-- * Capture sells the order's reservations (on_hand drops, a sale movement each) and
--   marks the order paid; an expired authorization or order is refused (WY006).
--   Cancelling or expiring a pending order voids or expires its authorization;
--   cleanup_expired_payments() expires authorizations past their time and their
--   pending orders with them, giving the stock back.
-- * Refusals (nothing written): WY001 not found, WY002 illegal state change (capture
--   before authorization or after a void, refund before capture), WY003 amount above
--   what is authorized or left to refund, WY004 payment method unusable (expired,
--   removed, another user's), WY005 order not payable (not pending, or paid for
--   already), WY006 authorization or order expired, WY007 the log is append-only;
--   42501 without a tenant (and a user, to authorize); 22004 NULL arguments; 22023 an
--   amount of 0 or less or an empty reason; 54000 a reason above 500 characters.

CREATE SCHEMA payments;

CREATE TYPE payments.method_kind AS ENUM ('card', 'bank_account', 'wallet');
CREATE TYPE payments.payment_status AS ENUM
    ('authorized', 'captured', 'settled', 'voided', 'expired', 'refunded');
CREATE TYPE payments.transaction_kind AS ENUM
    ('authorization', 'capture', 'settlement', 'void', 'expiry', 'refund');
CREATE TYPE payments.dispute_status AS ENUM ('needs_response', 'under_review', 'won', 'lost');

-- Refuses a column named like a card number, CVV or CVC, in any schema (an event
-- trigger at the end of every CREATE or ALTER of a table).
CREATE FUNCTION payments.refuse_card_number_columns() RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found text;
BEGIN
    SELECT string_agg(format('%s.%I', a.attrelid::regclass, a.attname), ', ') INTO found
    FROM pg_event_trigger_ddl_commands() c
    JOIN pg_attribute a ON a.attrelid = c.objid
    WHERE c.classid = 'pg_class'::regclass AND a.attnum > 0 AND NOT a.attisdropped
      AND a.attname ~* '(card_?num|^pan$|_pan$|primary_account_number|^cvv|_cvv|^cvc|_cvc|security_code)';
    IF found IS NOT NULL THEN
        RAISE EXCEPTION 'card numbers and security codes are never stored: column % refused', found
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'store the payment provider''s token, brand, last four digits and expiry instead';
    END IF;
END
$$;

-- Only a superuser creates event triggers: a migrating role that is not one skips it
-- (the catalog test still refuses such a column in groundwork's own schemas).
DO $$
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        CREATE EVENT TRIGGER payments_refuse_card_numbers ON ddl_command_end
            WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE TABLE AS', 'SELECT INTO')
            EXECUTE FUNCTION payments.refuse_card_number_columns();
    ELSE
        RAISE NOTICE 'payments_refuse_card_numbers needs a superuser: not created';
    END IF;
END
$$;

-- Whether a text holds a card number: 13 to 19 digits in a row, or written in groups
-- the way cards print them (4-4-4-4, 4-6-5, 4-4-4-4-3, spaces or dashes between), not
-- inside a longer run of letters and digits, that pass the Luhn check. A UUID's groups
-- (8-4-4-4-12) are not a card's layout.
CREATE FUNCTION payments.contains_card_number(value text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
SELECT EXISTS (
    SELECT FROM regexp_matches(
        value,
        '(?<![0-9A-Za-z])(?:[0-9]{13,19}|[0-9]{4}[ -][0-9]{4,6}[ -][0-9]{4,5}(?:[ -][0-9]{1,4})?)(?![0-9A-Za-z])',
        'g') AS m (found)
    CROSS JOIN LATERAL (SELECT reverse(regexp_replace(m.found[1], '[^0-9]', '', 'g')) AS digits) d
    WHERE length(d.digits) BETWEEN 13 AND 19
      AND (SELECT sum(CASE WHEN i % 2 = 0 THEN x WHEN x > 4 THEN 2 * x - 9 ELSE 2 * x END)
           FROM (SELECT substr(d.digits, i + 1, 1)::integer AS x, i
                 FROM generate_series(0, length(d.digits) - 1) i) t) % 10 = 0)
$$;

CREATE TABLE payments.payment_methods (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL DEFAULT identity.current_org_id()
        CONSTRAINT payment_methods_organization_id_fkey
            REFERENCES identity.organizations (id) ON DELETE CASCADE,
    user_id uuid NOT NULL DEFAULT identity.current_user_id()
        CONSTRAINT payment_methods_user_id_fkey REFERENCES identity.users (id) ON DELETE CASCADE,
    kind payments.method_kind NOT NULL DEFAULT 'card',
    -- The payment provider's reference to the stored method, never the number itself.
    token text NOT NULL
        CONSTRAINT payment_methods_token_format
            CHECK (char_length(token) >= 8 AND char_length(token) <= 255
                   AND NOT payments.contains_card_number(token)),
    brand text
        CONSTRAINT payment_methods_brand_format CHECK (brand ~ '^[a-z][a-z_]{1,29}$'),
    last_four text
        CONSTRAINT payment_methods_last_four_format CHECK (last_four ~ '^[0-9]{4}$'),
    exp_month smallint
        CONSTRAINT payment_methods_exp_month_range CHECK (exp_month BETWEEN 1 AND 12),
    exp_year smallint
        CONSTRAINT payment_methods_exp_year_range CHECK (exp_year BETWEEN 2000 AND 2200),
    is_default boolean NOT NULL DEFAULT false,
    removed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payment_methods_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT payment_methods_token_key UNIQUE (organization_id, token),
    CONSTRAINT payment_methods_card_fields CHECK (
        kind <> 'card'
        OR (brand IS NOT NULL AND last_four IS NOT NULL AND exp_month IS NOT NULL AND exp_year IS NOT NULL)),
    CONSTRAINT payment_methods_removed_not_default CHECK (removed_at IS NULL OR NOT is_default)
);

CREATE UNIQUE INDEX payment_methods_default_key ON payments.payment_methods (organization_id, user_id)
    WHERE is_default;
CREATE INDEX payment_methods_user_idx ON payments.payment_methods (organization_id, user_id)
    WHERE removed_at IS NULL;
CREATE INDEX payment_methods_user_id_idx ON payments.payment_methods (user_id);

CREATE TABLE payments.payments (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL
        CONSTRAINT payments_organization_id_fkey
            REFERENCES identity.organizations (id) ON DELETE RESTRICT,
    order_id uuid NOT NULL,
    user_id uuid NOT NULL
        CONSTRAINT payments_user_id_fkey REFERENCES identity.users (id) ON DELETE RESTRICT,
    payment_method_id uuid NOT NULL,
    status payments.payment_status NOT NULL DEFAULT 'authorized',
    currency text NOT NULL
        CONSTRAINT payments_currency_format CHECK (currency ~ '^[A-Z]{3}$'),
    amount numeric(12, 2) NOT NULL
        CONSTRAINT payments_amount_positive CHECK (amount > 0),
    captured_amount numeric(12, 2),
    refunded_amount numeric(12, 2) NOT NULL DEFAULT 0,
    provider_reference text NOT NULL
        CONSTRAINT payments_provider_reference_length CHECK (char_length(provider_reference) BETWEEN 1 AND 255),
    expires_at timestamptz NOT NULL,
    authorized_at timestamptz NOT NULL DEFAULT now(),
    captured_at timestamptz,
    settled_at timestamptz,
    voided_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payments_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT payments_order_id_fkey FOREIGN KEY (organization_id, order_id)
        REFERENCES sales.orders (organization_id, id) ON DELETE RESTRICT,
    CONSTRAINT payments_payment_method_id_fkey FOREIGN KEY (organization_id, payment_method_id)
        REFERENCES payments.payment_methods (organization_id, id) ON DELETE RESTRICT,
    CONSTRAINT payments_captured_range
        CHECK (captured_amount IS NULL OR (captured_amount > 0 AND captured_amount <= amount)),
    -- Refunds never exceed what was captured, whatever writes them.
    CONSTRAINT payments_refunded_range
        CHECK (refunded_amount >= 0 AND refunded_amount <= coalesce(captured_amount, 0)),
    CONSTRAINT payments_state CHECK (
        (status IN ('captured', 'settled', 'refunded')) = (captured_amount IS NOT NULL)
        AND (status = 'refunded') = (captured_amount IS NOT NULL AND refunded_amount = captured_amount))
);

-- One live payment per order.
CREATE UNIQUE INDEX payments_order_live_key ON payments.payments (organization_id, order_id)
    WHERE status IN ('authorized', 'captured', 'settled');
CREATE INDEX payments_order_idx ON payments.payments (organization_id, order_id);
CREATE INDEX payments_authorized_expires_idx ON payments.payments (expires_at) WHERE status = 'authorized';
CREATE INDEX payments_user_id_idx ON payments.payments (user_id);
CREATE INDEX payments_payment_method_idx ON payments.payments (organization_id, payment_method_id);

CREATE TABLE payments.refunds (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL,
    payment_id uuid NOT NULL,
    amount numeric(12, 2) NOT NULL
        CONSTRAINT refunds_amount_positive CHECK (amount > 0),
    reason text NOT NULL
        CONSTRAINT refunds_reason_length CHECK (char_length(btrim(reason)) BETWEEN 1 AND 500),
    requested_by uuid
        CONSTRAINT refunds_requested_by_fkey REFERENCES identity.users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT refunds_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT refunds_payment_id_fkey FOREIGN KEY (organization_id, payment_id)
        REFERENCES payments.payments (organization_id, id) ON DELETE RESTRICT
);

CREATE INDEX refunds_payment_idx ON payments.refunds (organization_id, payment_id);
CREATE INDEX refunds_requested_by_idx ON payments.refunds (requested_by);

CREATE TABLE payments.payment_transactions (
    id bigint GENERATED ALWAYS AS IDENTITY,
    organization_id uuid NOT NULL,
    payment_id uuid NOT NULL,
    kind payments.transaction_kind NOT NULL,
    amount numeric(12, 2) NOT NULL,
    status_after payments.payment_status NOT NULL,
    refund_id uuid,
    actor_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payment_transactions_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT payment_transactions_payment_id_fkey FOREIGN KEY (organization_id, payment_id)
        REFERENCES payments.payments (organization_id, id) ON DELETE RESTRICT,
    CONSTRAINT payment_transactions_refund_id_fkey FOREIGN KEY (organization_id, refund_id)
        REFERENCES payments.refunds (organization_id, id) ON DELETE RESTRICT,
    CONSTRAINT payment_transactions_refund_has_refund CHECK ((kind = 'refund') = (refund_id IS NOT NULL))
);

CREATE INDEX payment_transactions_payment_idx
    ON payments.payment_transactions (organization_id, payment_id, id);
CREATE INDEX payment_transactions_refund_idx ON payments.payment_transactions (organization_id, refund_id);

CREATE TABLE payments.payment_disputes (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL DEFAULT identity.current_org_id(),
    payment_id uuid NOT NULL,
    amount numeric(12, 2) NOT NULL
        CONSTRAINT payment_disputes_amount_positive CHECK (amount > 0),
    reason text NOT NULL
        CONSTRAINT payment_disputes_reason_length CHECK (char_length(btrim(reason)) BETWEEN 1 AND 500),
    status payments.dispute_status NOT NULL DEFAULT 'needs_response',
    evidence jsonb NOT NULL DEFAULT '{}'::jsonb
        CONSTRAINT payment_disputes_evidence_object
            CHECK (jsonb_typeof(evidence) = 'object' AND octet_length(evidence::text) <= 65536),
    evidence_due_at timestamptz NOT NULL,
    opened_at timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payment_disputes_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT payment_disputes_payment_id_fkey FOREIGN KEY (organization_id, payment_id)
        REFERENCES payments.payments (organization_id, id) ON DELETE RESTRICT,
    CONSTRAINT payment_disputes_due_after_opened CHECK (evidence_due_at > opened_at),
    CONSTRAINT payment_disputes_resolved CHECK ((status IN ('won', 'lost')) = (resolved_at IS NOT NULL))
);

CREATE INDEX payment_disputes_payment_idx ON payments.payment_disputes (organization_id, payment_id);
CREATE INDEX payment_disputes_open_due_idx ON payments.payment_disputes (organization_id, evidence_due_at)
    WHERE status IN ('needs_response', 'under_review');

CREATE TRIGGER payment_methods_set_updated_at BEFORE UPDATE ON payments.payment_methods
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER payments_set_updated_at BEFORE UPDATE ON payments.payments
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER payment_disputes_set_updated_at BEFORE UPDATE ON payments.payment_disputes
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

-- Refuses an illegal status change of a payment (WY002) and stamps its time.
CREATE FUNCTION payments.check_payment_transition() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, payments, pg_temp
AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        IF NOT (OLD.status, NEW.status) IN (
                ('authorized', 'captured'), ('authorized', 'voided'), ('authorized', 'expired'),
                ('captured', 'settled'), ('captured', 'refunded'), ('settled', 'refunded')) THEN
            RAISE EXCEPTION 'payment % is %, it cannot become %', OLD.id, OLD.status, NEW.status
                USING ERRCODE = 'WY002';
        END IF;
        IF NEW.status = 'captured' THEN
            NEW.captured_at := now();
        ELSIF NEW.status = 'settled' THEN
            NEW.settled_at := now();
        ELSIF NEW.status IN ('voided', 'expired') THEN
            NEW.voided_at := now();
        END IF;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER payments_check_transition BEFORE UPDATE OF status ON payments.payments
    FOR EACH ROW EXECUTE FUNCTION payments.check_payment_transition();

-- Logs a payment's state (its authorization, and every change but the last refund's,
-- which the refund logs itself).
CREATE FUNCTION payments.record_payment_transaction() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, payments, pg_temp
AS $$
BEGIN
    IF NEW.status <> 'refunded' THEN
        INSERT INTO payments.payment_transactions
            (organization_id, payment_id, kind, amount, status_after, actor_id)
        VALUES (NEW.organization_id, NEW.id,
                CASE NEW.status WHEN 'authorized' THEN 'authorization' WHEN 'captured' THEN 'capture'
                                WHEN 'settled' THEN 'settlement' WHEN 'voided' THEN 'void'
                                ELSE 'expiry' END::payments.transaction_kind,
                coalesce(NEW.captured_amount, NEW.amount), NEW.status, identity.current_user_id());
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER payments_record_insert AFTER INSERT ON payments.payments
    FOR EACH ROW EXECUTE FUNCTION payments.record_payment_transaction();
CREATE TRIGGER payments_record_update AFTER UPDATE OF status ON payments.payments
    FOR EACH ROW WHEN (NEW.status IS DISTINCT FROM OLD.status)
    EXECUTE FUNCTION payments.record_payment_transaction();

-- A refund adds to its payment's refunded_amount (the payment's CHECK refuses more than
-- was captured), refunds the payment and its order once all of it is refunded, and is
-- logged.
CREATE FUNCTION payments.apply_refund() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, payments, pg_temp
AS $$
DECLARE
    paid payments.payments;
BEGIN
    UPDATE payments.payments p
    SET refunded_amount = p.refunded_amount + NEW.amount,
        status = CASE WHEN p.refunded_amount + NEW.amount = p.captured_amount
                      THEN 'refunded' ELSE p.status END
    WHERE p.organization_id = NEW.organization_id AND p.id = NEW.payment_id
      AND p.status IN ('captured', 'settled')
    RETURNING p.* INTO paid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'payment % is not captured: nothing to refund', NEW.payment_id
            USING ERRCODE = 'WY002';
    END IF;
    IF paid.status = 'refunded' THEN
        UPDATE sales.orders o SET status = 'refunded'
        WHERE o.organization_id = paid.organization_id AND o.id = paid.order_id AND o.status <> 'refunded';
    END IF;
    INSERT INTO payments.payment_transactions
        (organization_id, payment_id, kind, amount, status_after, refund_id, actor_id)
    VALUES (NEW.organization_id, NEW.payment_id, 'refund', NEW.amount,
            paid.status, NEW.id, identity.current_user_id());
    RETURN NULL;
END
$$;

CREATE TRIGGER refunds_apply AFTER INSERT ON payments.refunds
    FOR EACH ROW EXECUTE FUNCTION payments.apply_refund();

-- The log and the refunds are never changed or removed (WY007).
CREATE FUNCTION payments.refuse_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, payments, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only: rows are never updated or deleted', TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'WY007';
END
$$;

CREATE TRIGGER payment_transactions_append_only BEFORE UPDATE OR DELETE ON payments.payment_transactions
    FOR EACH ROW EXECUTE FUNCTION payments.refuse_change();
CREATE TRIGGER payment_transactions_no_truncate BEFORE TRUNCATE ON payments.payment_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION payments.refuse_change();
CREATE TRIGGER refunds_append_only BEFORE UPDATE OR DELETE ON payments.refunds
    FOR EACH ROW EXECUTE FUNCTION payments.refuse_change();

-- A dispute is for at most the captured amount of a captured payment, and moves
-- needs_response -> under_review -> won or lost (WY002 otherwise).
CREATE FUNCTION payments.check_dispute() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, payments, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NOT EXISTS (SELECT FROM payments.payments p
                       WHERE p.organization_id = NEW.organization_id AND p.id = NEW.payment_id
                         AND p.captured_amount >= NEW.amount) THEN
            RAISE EXCEPTION 'a dispute is for at most the captured amount of a captured payment'
                USING ERRCODE = 'WY003',
                      DETAIL = jsonb_build_object('available', (
                          SELECT coalesce(p.captured_amount, 0) FROM payments.payments p
                          WHERE p.organization_id = NEW.organization_id AND p.id = NEW.payment_id));
        END IF;
    ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
        IF NOT (OLD.status, NEW.status) IN (
                ('needs_response', 'under_review'), ('needs_response', 'lost'),
                ('under_review', 'won'), ('under_review', 'lost')) THEN
            RAISE EXCEPTION 'dispute % is %, it cannot become %', OLD.id, OLD.status, NEW.status
                USING ERRCODE = 'WY002';
        END IF;
        NEW.resolved_at := CASE WHEN NEW.status IN ('won', 'lost') THEN now() END;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER payment_disputes_check BEFORE INSERT OR UPDATE ON payments.payment_disputes
    FOR EACH ROW EXECUTE FUNCTION payments.check_dispute();

-- Cancelling an order voids its authorization; expiring it expires it.
CREATE FUNCTION payments.close_order_payments() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, payments, pg_temp
AS $$
BEGIN
    UPDATE payments.payments p
    SET status = CASE WHEN NEW.status = 'expired' THEN 'expired' ELSE 'voided' END::payments.payment_status
    WHERE p.organization_id = NEW.organization_id AND p.order_id = NEW.id AND p.status = 'authorized';
    RETURN NULL;
END
$$;

CREATE TRIGGER orders_close_payments AFTER UPDATE OF status ON sales.orders
    FOR EACH ROW WHEN (NEW.status IN ('cancelled', 'expired') AND OLD.status = 'pending')
    EXECUTE FUNCTION payments.close_order_payments();

-- Refuses an amount: NULL (22004), 0 or less (22023).
CREATE FUNCTION payments.check_amount(amount numeric) RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF amount IS NULL THEN
        RAISE EXCEPTION 'an amount must not be null' USING ERRCODE = 'null_value_not_allowed';
    ELSIF amount <= 0 THEN
        RAISE EXCEPTION 'an amount is above 0, not %', amount USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

-- The payment (locked) after its order (locked first): WY001 when it is not the
-- tenant's.
CREATE FUNCTION payments.lock_payment(p_org uuid, p_payment_id uuid) RETURNS payments.payments
LANGUAGE plpgsql
SET search_path = pg_catalog, payments, pg_temp
AS $$
DECLARE
    held_order uuid;
    locked payments.payments;
BEGIN
    IF p_payment_id IS NULL THEN
        RAISE EXCEPTION 'a payment_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT p.order_id INTO held_order FROM payments.payments p
    WHERE p.organization_id = p_org AND p.id = p_payment_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'payment % not found', p_payment_id USING ERRCODE = 'WY001';
    END IF;
    PERFORM FROM sales.orders o WHERE o.organization_id = p_org AND o.id = held_order FOR UPDATE;
    SELECT * INTO locked FROM payments.payments p
    WHERE p.organization_id = p_org AND p.id = p_payment_id
    FOR UPDATE;
    RETURN locked;
END
$$;

-- Authorizes the current user's pending order on one of the user's payment methods
-- (with the mock provider: at once, for the order's total). Returns the payment's id.
CREATE FUNCTION payments.process_payment_authorization(order_id uuid, payment_method_id uuid) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, payments, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    actor uuid[] := sales.require_user('authorizing a payment');
    org uuid := actor[1];
    usr uuid := actor[2];
    payable sales.orders;
    method payments.payment_methods;
    payment uuid := gen_random_uuid();
BEGIN
    IF process_payment_authorization.order_id IS NULL OR process_payment_authorization.payment_method_id IS NULL THEN
        RAISE EXCEPTION 'order_id and payment_method_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO payable FROM sales.orders o
    WHERE o.organization_id = org AND o.id = process_payment_authorization.order_id AND o.user_id = usr
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order % not found', process_payment_authorization.order_id USING ERRCODE = 'WY001';
    ELSIF payable.status <> 'pending' THEN
        RAISE EXCEPTION 'order % is %, it cannot be paid', payable.id, payable.status USING ERRCODE = 'WY005';
    ELSIF payable.expires_at <= now() THEN
        RAISE EXCEPTION 'order % has expired', payable.id USING ERRCODE = 'WY006';
    ELSIF EXISTS (SELECT FROM payments.payments p
                  WHERE p.organization_id = org AND p.order_id = payable.id
                    AND p.status IN ('authorized', 'captured', 'settled')) THEN
        RAISE EXCEPTION 'order % has an authorized payment already', payable.id USING ERRCODE = 'WY005';
    END IF;
    SELECT * INTO method FROM payments.payment_methods m
    WHERE m.organization_id = org AND m.id = process_payment_authorization.payment_method_id;
    IF NOT FOUND OR method.user_id <> usr OR method.removed_at IS NOT NULL THEN
        RAISE EXCEPTION 'payment method % cannot be used: not one of the user''s',
            process_payment_authorization.payment_method_id USING ERRCODE = 'WY004';
    ELSIF method.kind = 'card'
          AND make_date(method.exp_year, method.exp_month, 1) + interval '1 month' <= now() THEN
        RAISE EXCEPTION 'payment method % cannot be used: it expired in %/%',
            method.id, method.exp_month, method.exp_year USING ERRCODE = 'WY004';
    END IF;
    INSERT INTO payments.payments (id, organization_id, order_id, user_id, payment_method_id, currency,
                                   amount, provider_reference, expires_at)
    VALUES (payment, org, payable.id, usr, method.id, payable.currency, payable.total_amount,
            'auth_' || replace(payment::text, '-', ''), payable.expires_at);
    RETURN payment;
END
$$;

-- Captures an authorized payment of the current tenant, all of it (amount NULL) or
-- part: the order becomes paid and its reservations are sold (on_hand drops).
CREATE FUNCTION payments.capture_payment(payment_id uuid, amount numeric DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, payments, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    org uuid := inventory.require_tenant('capturing a payment');
    held payments.payments;
    captured numeric;
BEGIN
    IF capture_payment.amount IS NOT NULL THEN
        PERFORM payments.check_amount(capture_payment.amount);
    END IF;
    held := payments.lock_payment(org, capture_payment.payment_id);
    IF held.status <> 'authorized' THEN
        RAISE EXCEPTION 'payment % is %, only an authorized payment is captured', held.id, held.status
            USING ERRCODE = 'WY002';
    ELSIF held.expires_at <= now() THEN
        RAISE EXCEPTION 'the authorization of payment % has expired', held.id USING ERRCODE = 'WY006';
    END IF;
    captured := coalesce(capture_payment.amount, held.amount);
    IF captured > held.amount THEN
        RAISE EXCEPTION 'payment % authorizes %, not %', held.id, held.amount, captured
            USING ERRCODE = 'WY003', DETAIL = jsonb_build_object('available', held.amount);
    END IF;
    UPDATE payments.payments p SET status = 'captured', captured_amount = captured
    WHERE p.organization_id = org AND p.id = held.id;
    UPDATE sales.orders o SET status = 'paid' WHERE o.organization_id = org AND o.id = held.order_id;
    PERFORM sales.fulfill_order_stock(org, held.order_id);
    INSERT INTO messaging.outbox_messages (organization_id, topic, partition_key, payload)
    VALUES (org, 'payments.payment_captured', held.order_id::text,
            jsonb_build_object('payment_id', held.id, 'order_id', held.order_id,
                               'amount', captured, 'currency', held.currency));
END
$$;

-- Marks a captured payment settled (the provider paid it out).
CREATE FUNCTION payments.settle_payment(payment_id uuid) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, payments, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    org uuid := inventory.require_tenant('settling a payment');
    held payments.payments := payments.lock_payment(org, settle_payment.payment_id);
BEGIN
    IF held.status <> 'captured' THEN
        RAISE EXCEPTION 'payment % is %, only a captured payment is settled', held.id, held.status
            USING ERRCODE = 'WY002';
    END IF;
    UPDATE payments.payments p SET status = 'settled' WHERE p.organization_id = org AND p.id = held.id;
END
$$;

-- Refunds part or all of a captured (or settled) payment of the current tenant, with
-- the reason; returns the refund's id. Refunds of one payment run one after the other
-- (the order's and payment's locks) and never add up to more than was captured.
CREATE FUNCTION payments.refund_payment(payment_id uuid, amount numeric, reason text) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, payments, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    org uuid := inventory.require_tenant('refunding a payment');
    held payments.payments;
    refund uuid := gen_random_uuid();
BEGIN
    PERFORM payments.check_amount(refund_payment.amount);
    IF refund_payment.reason IS NULL THEN
        RAISE EXCEPTION 'a reason must not be null' USING ERRCODE = 'null_value_not_allowed';
    ELSIF char_length(refund_payment.reason) > 500 THEN
        RAISE EXCEPTION 'a reason is at most 500 characters, not %', char_length(refund_payment.reason)
            USING ERRCODE = 'program_limit_exceeded';
    ELSIF char_length(btrim(refund_payment.reason)) = 0 THEN
        RAISE EXCEPTION 'a refund needs a reason' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    held := payments.lock_payment(org, refund_payment.payment_id);
    IF held.status NOT IN ('captured', 'settled') THEN
        RAISE EXCEPTION 'payment % is %, only a captured payment is refunded', held.id, held.status
            USING ERRCODE = 'WY002';
    ELSIF held.refunded_amount + refund_payment.amount > held.captured_amount THEN
        RAISE EXCEPTION 'payment % has % left to refund, not %', held.id,
            held.captured_amount - held.refunded_amount, refund_payment.amount
            USING ERRCODE = 'WY003',
                  DETAIL = jsonb_build_object('available', held.captured_amount - held.refunded_amount);
    END IF;
    INSERT INTO payments.refunds (id, organization_id, payment_id, amount, reason, requested_by)
    VALUES (refund, org, held.id, refund_payment.amount, refund_payment.reason, identity.current_user_id());
    INSERT INTO messaging.outbox_messages (organization_id, topic, partition_key, payload)
    VALUES (org, 'payments.payment_refunded', held.order_id::text,
            jsonb_build_object('payment_id', held.id, 'order_id', held.order_id, 'refund_id', refund,
                               'amount', refund_payment.amount, 'currency', held.currency));
    RETURN refund;
END
$$;

-- Voids an authorized payment of the current tenant (the hold is released); its order
-- stays pending and may be paid again until it expires.
CREATE FUNCTION payments.void_payment(payment_id uuid) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, payments, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    org uuid := inventory.require_tenant('voiding a payment');
    held payments.payments := payments.lock_payment(org, void_payment.payment_id);
BEGIN
    IF held.status <> 'authorized' THEN
        RAISE EXCEPTION 'payment % is %, only an authorized payment is voided', held.id, held.status
            USING ERRCODE = 'WY002';
    END IF;
    UPDATE payments.payments p SET status = 'voided' WHERE p.organization_id = org AND p.id = held.id;
END
$$;

-- Expires authorizations past their time, with their pending orders (whose stock is
-- given back): the current tenant's, or every tenant's for a member of
-- groundwork_worker with no tenant set. At most 10,000 per call, skipping orders
-- another transaction holds; returns how many payments expired.
CREATE FUNCTION payments.cleanup_expired_payments() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, payments, pg_temp
AS $$
DECLARE
    org uuid := messaging.cleanup_tenant('cleaning up payments');
    due record;
    expired integer := 0;
BEGIN
    FOR due IN
        SELECT o.organization_id, o.id AS order_id, o.status AS order_status
        FROM payments.payments p
        JOIN sales.orders o ON o.organization_id = p.organization_id AND o.id = p.order_id
        WHERE p.status = 'authorized' AND p.expires_at <= now()
          AND (org IS NULL OR p.organization_id = org)
        ORDER BY p.expires_at
        LIMIT 10000
        FOR UPDATE OF o SKIP LOCKED
    LOOP
        IF due.order_status = 'pending' THEN
            -- Expiring the order expires its authorization (the trigger above).
            UPDATE sales.orders o SET status = 'expired'
            WHERE o.organization_id = due.organization_id AND o.id = due.order_id;
            PERFORM sales.release_order_stock(due.organization_id, due.order_id, true);
        ELSE
            UPDATE payments.payments p SET status = 'expired'
            WHERE p.organization_id = due.organization_id AND p.order_id = due.order_id
              AND p.status = 'authorized';
        END IF;
        expired := expired + 1;
    END LOOP;
    RETURN expired;
END
$$;

-- Makes one of the current user's payment methods the default (the previous default
-- stops being it).
CREATE FUNCTION payments.set_default_payment_method(payment_method_id uuid) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, payments, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    actor uuid[] := sales.require_user('choosing a default payment method');
BEGIN
    IF set_default_payment_method.payment_method_id IS NULL THEN
        RAISE EXCEPTION 'a payment_method_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM FROM payments.payment_methods m
    WHERE m.organization_id = actor[1] AND m.user_id = actor[2]
    FOR UPDATE;
    IF NOT EXISTS (SELECT FROM payments.payment_methods m
                   WHERE m.organization_id = actor[1] AND m.user_id = actor[2]
                     AND m.id = set_default_payment_method.payment_method_id AND m.removed_at IS NULL) THEN
        RAISE EXCEPTION 'payment method % cannot be used: not one of the user''s',
            set_default_payment_method.payment_method_id USING ERRCODE = 'WY004';
    END IF;
    UPDATE payments.payment_methods m SET is_default = false
    WHERE m.organization_id = actor[1] AND m.user_id = actor[2] AND m.is_default
      AND m.id <> set_default_payment_method.payment_method_id;
    UPDATE payments.payment_methods m SET is_default = true
    WHERE m.organization_id = actor[1] AND m.id = set_default_payment_method.payment_method_id;
END
$$;

-- Per day and currency of the tenant: authorizations, captures, refunds and voids.
-- Runs with the caller's rights (security_invoker): row-level security applies.
CREATE VIEW payments.payment_analytics WITH (security_invoker = true) AS
WITH daily AS (
    SELECT p.organization_id, date_trunc('day', p.created_at) AS day, p.currency,
           count(*) AS payments,
           count(*) FILTER (WHERE p.captured_amount IS NOT NULL) AS captured_payments,
           sum(p.amount) AS authorized_amount,
           coalesce(sum(p.captured_amount), 0) AS captured_amount,
           sum(p.refunded_amount) AS refunded_amount,
           count(*) FILTER (WHERE p.status IN ('voided', 'expired')) AS voided_or_expired
    FROM payments.payments p
    GROUP BY p.organization_id, date_trunc('day', p.created_at), p.currency),
disputed AS (
    SELECT d.organization_id, date_trunc('day', d.opened_at) AS day, p.currency,
           count(*) AS disputes_opened, sum(d.amount) AS disputed_amount
    FROM payments.payment_disputes d
    JOIN payments.payments p ON p.organization_id = d.organization_id AND p.id = d.payment_id
    GROUP BY d.organization_id, date_trunc('day', d.opened_at), p.currency)
SELECT daily.organization_id, daily.day, daily.currency, daily.payments, daily.captured_payments,
       daily.authorized_amount, daily.captured_amount, daily.refunded_amount, daily.voided_or_expired,
       round(daily.captured_payments::numeric / daily.payments, 4) AS capture_rate,
       coalesce(disputed.disputes_opened, 0) AS disputes_opened,
       coalesce(disputed.disputed_amount, 0) AS disputed_amount
FROM daily
LEFT JOIN disputed USING (organization_id, day, currency);

-- Row-level security: the tenant; payment methods only of the current user.
ALTER TABLE payments.payment_methods ENABLE ROW LEVEL SECURITY;
CREATE POLICY payment_methods_owner ON payments.payment_methods
    FOR ALL TO groundwork_app, groundwork_readonly, groundwork_service
    USING (organization_id = identity.current_org_id() AND user_id = identity.current_user_id())
    WITH CHECK (organization_id = identity.current_org_id() AND user_id = identity.current_user_id());

ALTER TABLE payments.payments ENABLE ROW LEVEL SECURITY;
CREATE POLICY payments_tenant ON payments.payments
    FOR ALL TO groundwork_app, groundwork_readonly, groundwork_service
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

ALTER TABLE payments.refunds ENABLE ROW LEVEL SECURITY;
CREATE POLICY refunds_tenant ON payments.refunds
    FOR ALL TO groundwork_app, groundwork_readonly, groundwork_service
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

ALTER TABLE payments.payment_transactions ENABLE ROW LEVEL SECURITY;
CREATE POLICY payment_transactions_tenant ON payments.payment_transactions
    FOR ALL TO groundwork_app, groundwork_readonly, groundwork_service
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

ALTER TABLE payments.payment_disputes ENABLE ROW LEVEL SECURITY;
CREATE POLICY payment_disputes_tenant ON payments.payment_disputes
    FOR ALL TO groundwork_app, groundwork_readonly, groundwork_service
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

SELECT public.groundwork_set_owner('payments', 'groundwork_owner');

-- Privileges: the application keeps its user's payment methods and the disputes, reads
-- payments, refunds and the log, and moves money through the functions only.
GRANT USAGE ON SCHEMA payments TO groundwork_app, groundwork_readonly, groundwork_worker;
GRANT SELECT ON payments.payment_methods, payments.payments, payments.refunds,
    payments.payment_transactions, payments.payment_disputes, payments.payment_analytics
    TO groundwork_app, groundwork_readonly;
GRANT INSERT (id, kind, token, brand, last_four, exp_month, exp_year),
      UPDATE (exp_month, exp_year, removed_at)
    ON payments.payment_methods TO groundwork_app;
GRANT INSERT (id, payment_id, amount, reason, evidence, evidence_due_at),
      UPDATE (status, evidence)
    ON payments.payment_disputes TO groundwork_app;

REVOKE ALL ON FUNCTION payments.refuse_card_number_columns(),
    payments.check_payment_transition(),
    payments.record_payment_transaction(),
    payments.apply_refund(),
    payments.refuse_change(),
    payments.check_dispute(),
    payments.close_order_payments(),
    payments.check_amount(numeric),
    payments.lock_payment(uuid, uuid),
    payments.process_payment_authorization(uuid, uuid),
    payments.capture_payment(uuid, numeric),
    payments.settle_payment(uuid),
    payments.refund_payment(uuid, numeric, text),
    payments.void_payment(uuid),
    payments.cleanup_expired_payments(),
    payments.set_default_payment_method(uuid)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    payments.process_payment_authorization(uuid, uuid),
    payments.capture_payment(uuid, numeric),
    payments.settle_payment(uuid),
    payments.refund_payment(uuid, numeric, text),
    payments.void_payment(uuid),
    payments.set_default_payment_method(uuid)
    TO groundwork_app;
GRANT EXECUTE ON FUNCTION payments.cleanup_expired_payments() TO groundwork_app, groundwork_worker;

-- The context's service role may do here what the application role may; the
-- read-only analytics role what groundwork_readonly may (docs/SECURITY.md, "Service
-- roles").
SELECT public.groundwork_grant_like('payments', 'groundwork_app', 'payments_service');
SELECT public.groundwork_grant_like('payments', 'groundwork_readonly', 'analytics_service');
