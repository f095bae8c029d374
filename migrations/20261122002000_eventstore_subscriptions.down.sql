-- Reverts 20261122002000_eventstore_subscriptions.up.sql.

DROP TRIGGER events_notify_appended ON eventstore.events;
DROP FUNCTION eventstore.notify_appended();
DROP TABLE eventstore.subscriptions;
