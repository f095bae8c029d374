-- Reverts 20261122001000_messaging.up.sql.

DROP TABLE messaging.idempotency_keys;
DROP TYPE messaging.idempotency_status;
DROP TABLE messaging.outbox_messages;
DROP TYPE messaging.outbox_status;
DROP SCHEMA messaging;
