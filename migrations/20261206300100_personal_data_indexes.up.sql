-- groundwork:no-transaction
-- Why: finishes 20261206300000_personal_data_identity without blocking writes. Phone
-- and tax numbers stored in plaintext by an earlier release are encrypted and their
-- plaintext columns emptied (this needs the master key: run the migration with
-- PGOPTIONS='-c groundwork.personal_data_key=<64 hex digits>' when such rows exist,
-- else it stops with WI001; afterwards VACUUM identity.users, since the old row
-- versions keep the plaintext until they are vacuumed). Then the blind indexes are
-- built concurrently and the constraints added NOT VALID are validated, which reads
-- the table under a lock that lets writes go on.
UPDATE identity.users
SET phone_encrypted = identity.personal_encrypt(id, phone),
    phone_blind = identity.personal_blind_index('phone', phone),
    tax_number_encrypted = identity.personal_encrypt(id, tax_number),
    tax_number_blind = identity.personal_blind_index('tax_number', tax_number),
    phone = NULL,
    tax_number = NULL
WHERE phone IS NOT NULL OR tax_number IS NOT NULL;
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_phone_blind_key
    ON identity.users (phone_blind);
CREATE INDEX CONCURRENTLY IF NOT EXISTS users_tax_number_blind_idx
    ON identity.users (tax_number_blind) WHERE tax_number_blind IS NOT NULL;
ALTER TABLE identity.users VALIDATE CONSTRAINT users_phone_complete;
ALTER TABLE identity.users VALIDATE CONSTRAINT users_tax_number_complete;
ALTER TABLE identity.users VALIDATE CONSTRAINT users_plaintext_removed;
