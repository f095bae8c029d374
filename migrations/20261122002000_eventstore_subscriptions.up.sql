-- Why: durable, named subscription checkpoints for event-store consumers, and a
-- notification when events commit so that caught-up consumers wake without polling.

CREATE TABLE eventstore.subscriptions (
    organization_id uuid NOT NULL DEFAULT identity.current_org_id()
        CONSTRAINT subscriptions_organization_id_fkey
            REFERENCES identity.organizations (id) ON DELETE CASCADE,
    name text NOT NULL
        CONSTRAINT subscriptions_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
    position bigint NOT NULL DEFAULT 0
        CONSTRAINT subscriptions_position_nonnegative CHECK (position >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT subscriptions_pkey PRIMARY KEY (organization_id, name)
);

CREATE TRIGGER subscriptions_set_updated_at
    BEFORE UPDATE ON eventstore.subscriptions
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

ALTER TABLE eventstore.subscriptions ENABLE ROW LEVEL SECURITY;
CREATE POLICY subscriptions_tenant ON eventstore.subscriptions
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

GRANT SELECT, INSERT, UPDATE ON eventstore.subscriptions TO groundwork_app;
GRANT SELECT ON eventstore.subscriptions TO groundwork_readonly;

-- One notification per appending statement, delivered at commit; the payload is the
-- organization, so consumers of other tenants can ignore it.
CREATE FUNCTION eventstore.notify_appended() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('eventstore_events', organization_id::text)
    FROM (SELECT DISTINCT organization_id FROM appended) orgs;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_notify_appended
    AFTER INSERT ON eventstore.events
    REFERENCING NEW TABLE AS appended
    FOR EACH STATEMENT EXECUTE FUNCTION eventstore.notify_appended();
