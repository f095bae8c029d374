--- Idempotent.
--! subscription_ensure
INSERT INTO eventstore.subscriptions (name) VALUES (:name)
ON CONFLICT (organization_id, name) DO NOTHING;

--- Locks the checkpoint FOR UPDATE for the rest of the transaction: one consumer
--- instance of a subscription works at a time.
--! subscription_lock
SELECT position FROM eventstore.subscriptions
WHERE organization_id = identity.current_org_id() AND name = :name
FOR UPDATE;

--! subscription_advance
UPDATE eventstore.subscriptions SET position = :position
WHERE organization_id = identity.current_org_id() AND name = :name AND position < :position;

--! subscription_get
SELECT position FROM eventstore.subscriptions
WHERE organization_id = identity.current_org_id() AND name = :name;

--- The current tenant's notification channel (an unguessable name): LISTEN on it to
--- be woken when the tenant's appends commit. The payload is empty.
--! subscription_channel
SELECT eventstore.notification_channel() AS channel;
