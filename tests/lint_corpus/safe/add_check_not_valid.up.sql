-- quiet: constraint-missing-not-valid lock-held-while-scanning
ALTER TABLE accounts ADD CONSTRAINT accounts_balance_nonnegative CHECK (balance >= 0) NOT VALID;
