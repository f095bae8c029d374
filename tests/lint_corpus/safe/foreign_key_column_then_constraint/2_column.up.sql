-- quiet: adding-foreign-key-constraint
ALTER TABLE orders ADD COLUMN referrer_id bigint;
ALTER TABLE orders ADD CONSTRAINT orders_referrer_fk FOREIGN KEY (referrer_id) REFERENCES accounts (id) NOT VALID;
