-- Why: undoes 20261206600100_payments: the payments schema, its event trigger and the
-- trigger on sales.orders that closes an order's authorization.

DROP EVENT TRIGGER IF EXISTS payments_refuse_card_numbers;
DROP TRIGGER orders_close_payments ON sales.orders;
DROP SCHEMA payments CASCADE;
