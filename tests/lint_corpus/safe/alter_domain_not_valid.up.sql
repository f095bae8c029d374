-- quiet: ban-alter-domain-with-add-constraint
ALTER DOMAIN positive_amount ADD CONSTRAINT positive_amount_small CHECK (VALUE < 1000000000) NOT VALID;
