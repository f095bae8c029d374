-- quiet: lock-held-while-scanning
ALTER TABLE orders VALIDATE CONSTRAINT orders_referrer_fk;
