-- Why: undoes 20261201000200_eventstore: everything it made lives in the eventstore
-- schema, but for the trigger that gives each new organization its keys.

DROP TRIGGER organizations_event_store_keys ON identity.organizations;
DROP SCHEMA eventstore CASCADE;
