-- quiet: constraint-missing-not-valid lock-held-while-scanning
ALTER TABLE orders VALIDATE CONSTRAINT orders_account_fk;
ALTER TABLE accounts VALIDATE CONSTRAINT accounts_balance_nonnegative;
