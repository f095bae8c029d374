-- Reverts base.up.sql
DROP TABLE bookings, events_log, orders, accounts;
DROP DOMAIN positive_amount;
