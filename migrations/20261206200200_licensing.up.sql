-- Why: licensing for the CAD platform (seed 001): a plan catalogue with the limits each
-- plan grants, licences per tenant with seats and a validity period, and seats assigned
-- to users; the entitlement check every request makes.
--
-- Rules the database keeps:
-- * seats > 0; starts_at < ends_at; never more assignments than seats, also when
--   assignments race: licenses.seats_assigned counts them, and an assignment takes a
--   seat with one conditional UPDATE of the licence row (WHERE seats_assigned < seats),
--   whose row lock makes concurrent assignments take turns and see each other's seat
--   (WL001 when none is left; lowering seats below those assigned is 23514,
--   licenses_seats_in_use). The application role cannot write the counter.
-- * seats are assigned only on a licence that is usable (trial or active, in its
--   period: WL002) and to active members of the licence's organization (WL003).
-- * status moves only trial -> active, suspended, expired, cancelled; active ->
--   suspended, expired, cancelled; suspended -> active, expired, cancelled; expired ->
--   active when ends_at was moved into the future (a renewal); cancelled is final (WL004).
-- * licensing.has_entitlement(user_id, feature): the user holds a seat of a licence of
--   the current tenant that is trial or active, has started, has not ended, and grants
--   the feature (the licence's features override its plan's).
--
-- Expiry and renewal (licensing.process_expirations, run by a periodic job per tenant,
-- groundwork::licensing::ProcessExpirations): an auto-renewing active licence whose
-- end has passed is extended by its plan's renewal period; any other licence whose end
-- has passed becomes expired. Grace period: an auto-renewing licence stays entitled for
-- 3 days after ends_at, so that a late or failed renewal run does not lock its users
-- out; a licence without auto-renewal ends at ends_at exactly.

CREATE SCHEMA licensing;

CREATE TYPE licensing.license_status AS ENUM ('trial', 'active', 'suspended', 'expired',
                                              'cancelled');

-- The plan catalogue: the platform's price list, the same for every tenant, kept by the
-- owner. features: {"<feature>": true, ...}; the limits are columns.
CREATE TABLE licensing.plans (
    code text PRIMARY KEY
        CONSTRAINT plans_code_format CHECK (code ~ '^[a-z][a-z0-9_]{0,62}$'),
    name text NOT NULL
        CONSTRAINT plans_name_length CHECK (char_length(btrim(name)) BETWEEN 1 AND 255),
    features jsonb NOT NULL DEFAULT '{}'::jsonb
        CONSTRAINT plans_features_object CHECK (jsonb_typeof(features) = 'object'),
    max_models integer NOT NULL
        CONSTRAINT plans_max_models_nonnegative CHECK (max_models >= 0),
    max_versions_per_model integer NOT NULL
        CONSTRAINT plans_max_versions_per_model_positive CHECK (max_versions_per_model > 0),
    max_job_runtime interval NOT NULL
        CONSTRAINT plans_max_job_runtime_range
            CHECK (max_job_runtime BETWEEN interval '1 second' AND interval '1 day'),
    renewal_period interval NOT NULL DEFAULT '1 year'
        CONSTRAINT plans_renewal_period_positive CHECK (renewal_period > interval '0'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER plans_set_updated_at
    BEFORE UPDATE ON licensing.plans
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

INSERT INTO licensing.plans (code, name, features, max_models, max_versions_per_model,
                             max_job_runtime, renewal_period)
VALUES
    ('trial', 'Deneme', '{"thumbnail": true}', 3, 5, '5 minutes', '14 days'),
    ('standard', 'Standart', '{"thumbnail": true, "mesh_analysis": true}', 50, 50,
     '30 minutes', '1 year'),
    ('professional', 'Profesyonel',
     '{"thumbnail": true, "mesh_analysis": true, "cam": true}', 500, 200, '2 hours', '1 year'),
    ('enterprise', 'Kurumsal',
     '{"thumbnail": true, "mesh_analysis": true, "cam": true, "api_access": true}', 10000, 1000,
     '12 hours', '1 year');

CREATE TABLE licensing.licenses (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL DEFAULT identity.current_org_id()
        CONSTRAINT licenses_organization_id_fkey
            REFERENCES identity.organizations (id) ON DELETE RESTRICT,
    -- The holder: who bought it and answers for it.
    user_id uuid NOT NULL
        CONSTRAINT licenses_user_id_fkey REFERENCES identity.users (id) ON DELETE RESTRICT,
    plan text NOT NULL
        CONSTRAINT licenses_plan_fkey REFERENCES licensing.plans (code) ON DELETE RESTRICT,
    status licensing.license_status NOT NULL DEFAULT 'active',
    seats integer NOT NULL
        CONSTRAINT licenses_seats_range CHECK (seats BETWEEN 1 AND 100000),
    -- Assignments holding a seat; kept by licensing.take_seat and licensing.free_seat.
    seats_assigned integer NOT NULL DEFAULT 0
        CONSTRAINT licenses_seats_assigned_nonnegative CHECK (seats_assigned >= 0),
    starts_at timestamptz NOT NULL DEFAULT now(),
    ends_at timestamptz NOT NULL,
    -- Overrides of the plan's features: {"cam": true} grants, {"cam": false} withholds.
    features jsonb NOT NULL DEFAULT '{}'::jsonb
        CONSTRAINT licenses_features_object
            CHECK (jsonb_typeof(features) = 'object'
                   AND CASE WHEN pg_column_compression(features) IS NULL
                            THEN pg_column_size(features)
                            ELSE octet_length(features::text) END <= 8192),
    auto_renew boolean NOT NULL DEFAULT false,
    renewed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT licenses_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT licenses_period CHECK (starts_at < ends_at),
    CONSTRAINT licenses_seats_in_use CHECK (seats_assigned <= seats)
);

CREATE INDEX licenses_user_id_idx ON licensing.licenses (user_id);
CREATE INDEX licenses_status_ends_at_idx ON licensing.licenses (status, ends_at);
CREATE INDEX licenses_plan_idx ON licensing.licenses (plan);
CREATE INDEX licenses_features_gin_idx ON licensing.licenses USING gin (features);

CREATE TRIGGER licenses_set_updated_at
    BEFORE UPDATE ON licensing.licenses
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

-- A seat of a licence held by a user.
CREATE TABLE licensing.license_assignments (
    organization_id uuid NOT NULL DEFAULT identity.current_org_id(),
    license_id uuid NOT NULL,
    user_id uuid NOT NULL
        CONSTRAINT license_assignments_user_id_fkey
            REFERENCES identity.users (id) ON DELETE RESTRICT,
    assigned_by uuid DEFAULT identity.current_user_id()
        CONSTRAINT license_assignments_assigned_by_fkey
            REFERENCES identity.users (id) ON DELETE SET NULL,
    assigned_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT license_assignments_pkey PRIMARY KEY (organization_id, license_id, user_id),
    CONSTRAINT license_assignments_license_id_fkey FOREIGN KEY (organization_id, license_id)
        REFERENCES licensing.licenses (organization_id, id) ON DELETE RESTRICT
);

-- The entitlement check's path: a user's seats in a tenant.
CREATE INDEX license_assignments_organization_id_user_id_idx
    ON licensing.license_assignments (organization_id, user_id) INCLUDE (license_id);
CREATE INDEX license_assignments_user_id_idx ON licensing.license_assignments (user_id);
CREATE INDEX license_assignments_assigned_by_idx ON licensing.license_assignments (assigned_by);

-- Whether a licence row grants entitlements now (trial or active, started, not ended;
-- an active auto-renewing one, which process_expirations renews, 3 days longer).
CREATE FUNCTION licensing.is_usable(l licensing.licenses) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT l.status IN ('trial', 'active')
       AND l.starts_at <= now()
       AND now() < l.ends_at + CASE WHEN l.auto_renew AND l.status = 'active'
                                   THEN interval '3 days' ELSE interval '0' END
$$;

-- Whether a user may hold licences and seats of an organization: an active member, an
-- active account not locked out, an active organization. The membership row is locked
-- (FOR SHARE) so that a suspension or removal racing with the caller waits for its
-- commit, and the caller's seat is then freed by free_seats_of_former_member.
CREATE FUNCTION licensing.is_active_member(p_organization_id uuid, p_user_id uuid)
RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog, licensing, pg_temp
AS $$
    SELECT EXISTS (
        SELECT
        FROM identity.organization_members m
        JOIN identity.users u ON u.id = m.user_id
        JOIN identity.organizations o ON o.id = m.organization_id
        WHERE m.organization_id = p_organization_id AND m.user_id = p_user_id
          AND m.status = 'active' AND u.status = 'active'
          AND (u.locked_until IS NULL OR u.locked_until <= now()) AND o.status = 'active'
        FOR SHARE OF m)
$$;

-- A licence's holder is an active member of its organization (WL003), which also keeps
-- one tenant from naming, or learning of, another tenant's users.
CREATE FUNCTION licensing.check_holder() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, licensing, pg_temp
AS $$
BEGIN
    IF NOT licensing.is_active_member(NEW.organization_id, NEW.user_id) THEN
        RAISE EXCEPTION 'the holder of a licence is an active member of its organization'
            USING ERRCODE = 'WL003';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER licenses_check_holder
    BEFORE INSERT OR UPDATE OF user_id ON licensing.licenses
    FOR EACH ROW EXECUTE FUNCTION licensing.check_holder();

-- An assignment is for an active member (WL003) of a licence's organization; checked
-- before the row is written, so an unknown user and a stranger look the same.
CREATE FUNCTION licensing.check_seat_holder() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, licensing, pg_temp
AS $$
BEGIN
    IF NOT licensing.is_active_member(NEW.organization_id, NEW.user_id) THEN
        RAISE EXCEPTION 'user % is not an active member of the licence''s organization', NEW.user_id
            USING ERRCODE = 'WL003';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER license_assignments_check_holder
    BEFORE INSERT ON licensing.license_assignments
    FOR EACH ROW EXECUTE FUNCTION licensing.check_seat_holder();

-- An assignment takes a seat (see the header), after the row is in (a row an INSERT
-- skips, ON CONFLICT DO NOTHING, takes none): refused on an unusable licence (WL002)
-- and when every seat is taken (WL001).
CREATE FUNCTION licensing.take_seat() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, licensing, pg_temp
AS $$
DECLARE
    lic licensing.licenses;
BEGIN
    UPDATE licensing.licenses l SET seats_assigned = l.seats_assigned + 1
    WHERE l.organization_id = NEW.organization_id AND l.id = NEW.license_id
      AND l.seats_assigned < l.seats AND licensing.is_usable(l)
    RETURNING * INTO lic;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    SELECT * INTO STRICT lic FROM licensing.licenses l
    WHERE l.organization_id = NEW.organization_id AND l.id = NEW.license_id;
    IF NOT licensing.is_usable(lic) THEN
        RAISE EXCEPTION 'licence % is % and grants no seats', lic.id,
            CASE WHEN lic.status IN ('trial', 'active') THEN 'outside its period'
                 ELSE lic.status::text END
            USING ERRCODE = 'WL002';
    END IF;
    RAISE EXCEPTION 'every seat of licence % is taken', lic.id
        USING ERRCODE = 'WL001', DETAIL = jsonb_build_object('seats', lic.seats)::text;
END
$$;

-- Named to run after the foreign-key checks (triggers fire in name order), which
-- report a licence that is not the tenant's.
CREATE TRIGGER z_license_assignments_take_seat
    AFTER INSERT ON licensing.license_assignments
    FOR EACH ROW EXECUTE FUNCTION licensing.take_seat();

CREATE FUNCTION licensing.free_seat() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, licensing, pg_temp
AS $$
BEGIN
    UPDATE licensing.licenses l SET seats_assigned = l.seats_assigned - 1
    WHERE l.organization_id = OLD.organization_id AND l.id = OLD.license_id;
    RETURN OLD;
END
$$;

CREATE TRIGGER license_assignments_free_seat
    AFTER DELETE ON licensing.license_assignments
    FOR EACH ROW EXECUTE FUNCTION licensing.free_seat();

-- The status moves of the header; WL004 otherwise.
CREATE FUNCTION licensing.check_status() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, licensing, pg_temp
AS $$
DECLARE
    allowed boolean := CASE OLD.status
        WHEN 'trial' THEN true
        WHEN 'active' THEN NEW.status IN ('suspended', 'expired', 'cancelled')
        WHEN 'suspended' THEN NEW.status IN ('active', 'expired', 'cancelled')
        WHEN 'expired' THEN NEW.status = 'active' AND NEW.ends_at > now()
        ELSE false
    END;
BEGIN
    IF NEW.status = OLD.status THEN
        RETURN NEW;
    ELSIF NOT allowed THEN
        RAISE EXCEPTION 'licence % cannot go from % to %', NEW.id, OLD.status, NEW.status
            USING ERRCODE = 'WL004';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER licenses_check_status
    BEFORE UPDATE OF status ON licensing.licenses
    FOR EACH ROW EXECUTE FUNCTION licensing.check_status();

-- A member who leaves the organization, or is no longer active in it, gives back the
-- seats held there.
CREATE FUNCTION licensing.free_seats_of_former_member() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, licensing, pg_temp
AS $$
BEGIN
    IF OLD.user_id IS NOT NULL AND (TG_OP = 'DELETE' OR NEW.status <> 'active') THEN
        DELETE FROM licensing.license_assignments a
        WHERE a.organization_id = OLD.organization_id AND a.user_id = OLD.user_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER organization_members_free_seats
    AFTER DELETE OR UPDATE OF status ON identity.organization_members
    FOR EACH ROW EXECUTE FUNCTION licensing.free_seats_of_former_member();

-- Whether user_id may use feature now in the current tenant (see the header): also an
-- active account, not locked out, in an active organization. A definer function, to
-- see the user's state; it reads the current tenant's rows only.
CREATE FUNCTION licensing.has_entitlement(user_id uuid, feature text) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, licensing, pg_temp
AS $$
BEGIN
    RETURN EXISTS (
        SELECT
        FROM licensing.license_assignments a
        JOIN licensing.licenses l ON l.organization_id = a.organization_id AND l.id = a.license_id
        JOIN licensing.plans p ON p.code = l.plan
        JOIN identity.users u ON u.id = a.user_id
        JOIN identity.organizations o ON o.id = a.organization_id
        WHERE a.organization_id = identity.current_org_id()
          AND a.user_id = has_entitlement.user_id
          AND u.status = 'active' AND (u.locked_until IS NULL OR u.locked_until <= now())
          AND o.status = 'active'
          AND licensing.is_usable(l)
          AND coalesce(l.features -> has_entitlement.feature,
                       p.features -> has_entitlement.feature) = 'true'::jsonb);
END
$$;

-- The limits of the best plan a user holds a usable seat of in an organization (an
-- active account in an active organization); no row without one. For the CAD triggers
-- (definer), which name the organization; as the application role, under row-level
-- security, the current tenant's only.
CREATE FUNCTION licensing.user_limits(p_organization_id uuid, p_user_id uuid,
                                      OUT max_models integer,
                                      OUT max_versions_per_model integer,
                                      OUT max_job_runtime interval)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, licensing, pg_temp
AS $$
    SELECT max(p.max_models), max(p.max_versions_per_model), max(p.max_job_runtime)
    FROM licensing.license_assignments a
    JOIN licensing.licenses l ON l.organization_id = a.organization_id AND l.id = a.license_id
    JOIN licensing.plans p ON p.code = l.plan
    JOIN identity.users u ON u.id = a.user_id
    JOIN identity.organizations o ON o.id = a.organization_id
    WHERE a.organization_id = p_organization_id AND a.user_id = p_user_id
      AND u.status = 'active' AND (u.locked_until IS NULL OR u.locked_until <= now())
      AND o.status = 'active'
      AND licensing.is_usable(l)
    HAVING count(*) > 0
$$;

-- Renews what auto-renews and expires the rest, for the current tenant; returns how many
-- licences changed.
CREATE FUNCTION licensing.process_expirations() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, licensing, pg_temp
AS $$
DECLARE
    step integer;
    expired integer;
BEGIN
    IF identity.current_org_id() IS NULL THEN
        RAISE EXCEPTION 'no tenant: set app.current_org_id' USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- A period at a time, until each renewed licence ends in the future (a run that
    -- comes late renews every missed period).
    LOOP
        UPDATE licensing.licenses l
        SET ends_at = l.ends_at + p.renewal_period, renewed_at = now()
        FROM licensing.plans p, identity.organizations o
        WHERE l.organization_id = identity.current_org_id() AND p.code = l.plan
          AND o.id = l.organization_id AND o.status = 'active'
          AND l.status = 'active' AND l.auto_renew AND l.ends_at <= now();
        GET DIAGNOSTICS step = ROW_COUNT;
        EXIT WHEN step = 0;
    END LOOP;
    UPDATE licensing.licenses l SET status = 'expired'
    WHERE l.organization_id = identity.current_org_id()
      AND l.status IN ('trial', 'active', 'suspended') AND l.ends_at <= now()
      AND NOT (l.status = 'active' AND l.auto_renew AND EXISTS (
          SELECT FROM identity.organizations o
          WHERE o.id = l.organization_id AND o.status = 'active'));
    GET DIAGNOSTICS expired = ROW_COUNT;
    -- A licence renewed several periods counts once.
    RETURN (SELECT count(*)::integer FROM licensing.licenses l
            WHERE l.organization_id = identity.current_org_id() AND l.renewed_at = now())
           + expired;
END
$$;

ALTER TABLE licensing.licenses ENABLE ROW LEVEL SECURITY;
CREATE POLICY licenses_tenant ON licensing.licenses
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

ALTER TABLE licensing.license_assignments ENABLE ROW LEVEL SECURITY;
CREATE POLICY license_assignments_tenant ON licensing.license_assignments
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

SELECT public.groundwork_set_owner('licensing', 'groundwork_owner');

-- Privileges: the application issues and changes its tenant's licences (never the seat
-- counter) and assigns and frees seats; licences are not deleted (cancel them).
GRANT USAGE ON SCHEMA licensing TO groundwork_app, groundwork_readonly;
GRANT SELECT ON licensing.plans, licensing.licenses, licensing.license_assignments
    TO groundwork_app, groundwork_readonly;
GRANT INSERT (id, user_id, plan, status, seats, starts_at, ends_at, features, auto_renew),
      UPDATE (plan, status, seats, ends_at, features, auto_renew)
    ON licensing.licenses TO groundwork_app;
GRANT INSERT (license_id, user_id), DELETE ON licensing.license_assignments TO groundwork_app;

REVOKE ALL ON FUNCTION licensing.is_usable(licensing.licenses),
    licensing.is_active_member(uuid, uuid), licensing.check_holder(),
    licensing.check_seat_holder(), licensing.take_seat(),
    licensing.free_seat(), licensing.free_seats_of_former_member(), licensing.check_status(),
    licensing.has_entitlement(uuid, text),
    licensing.user_limits(uuid, uuid), licensing.process_expirations()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION licensing.is_usable(licensing.licenses),
    licensing.has_entitlement(uuid, text)
    TO groundwork_app, groundwork_readonly;
GRANT EXECUTE ON FUNCTION licensing.process_expirations() TO groundwork_app;
