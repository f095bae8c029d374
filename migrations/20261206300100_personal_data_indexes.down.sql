-- groundwork:no-transaction
-- Why: undoes 20261206300100_personal_data_indexes: the blind indexes go, and the
-- constraints are back to NOT VALID (dropped and added again unvalidated). The values
-- stay encrypted; the down file of 20261206300000_personal_data_identity decrypts them.
ALTER TABLE identity.users DROP CONSTRAINT IF EXISTS users_plaintext_removed;
ALTER TABLE identity.users
    ADD CONSTRAINT users_plaintext_removed
        CHECK (phone IS NULL AND tax_number IS NULL) NOT VALID;
ALTER TABLE identity.users DROP CONSTRAINT IF EXISTS users_tax_number_complete;
ALTER TABLE identity.users
    ADD CONSTRAINT users_tax_number_complete
        CHECK ((tax_number_encrypted IS NULL) = (tax_number_blind IS NULL)
               AND (tax_number_encrypted IS NULL) = (tax_number_kind IS NULL)) NOT VALID;
ALTER TABLE identity.users DROP CONSTRAINT IF EXISTS users_phone_complete;
ALTER TABLE identity.users
    ADD CONSTRAINT users_phone_complete
        CHECK ((phone_encrypted IS NULL) = (phone_blind IS NULL)) NOT VALID;
DROP INDEX CONCURRENTLY IF EXISTS identity.users_tax_number_blind_idx;
DROP INDEX CONCURRENTLY IF EXISTS identity.users_phone_blind_key;
