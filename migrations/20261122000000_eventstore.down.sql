-- Reverts 20261122000000_eventstore.up.sql.

DROP SCHEMA eventstore CASCADE;
