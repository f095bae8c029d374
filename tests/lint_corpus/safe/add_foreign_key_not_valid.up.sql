-- quiet: adding-foreign-key-constraint lock-held-while-scanning
ALTER TABLE orders ADD CONSTRAINT orders_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id) NOT VALID;
