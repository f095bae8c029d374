-- expect: lock-held-while-scanning
CREATE FUNCTION add_balance_check() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    ALTER TABLE accounts ADD CONSTRAINT accounts_balance_nonnegative CHECK (balance >= 0);
END
$$;
SELECT add_balance_check();
DROP FUNCTION add_balance_check();
