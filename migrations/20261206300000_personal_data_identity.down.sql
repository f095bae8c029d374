-- Why: undoes 20261206300000_personal_data_identity. Phone and tax numbers go back to
-- their plaintext columns, decrypted with the master key (WI001 without it while
-- encrypted values exist). The role groundwork_privacy is cluster-wide and stays,
-- without its privileges here.

REVOKE USAGE ON SCHEMA identity FROM groundwork_privacy;

-- The plaintext columns take the values back (decrypting needs the master key: WI001).
ALTER TABLE identity.users
    DROP CONSTRAINT users_plaintext_removed,
    DROP CONSTRAINT users_tax_number_complete,
    DROP CONSTRAINT users_phone_complete;
UPDATE identity.users
SET phone = identity.personal_decrypt(id, phone_encrypted),
    tax_number = identity.personal_decrypt(id, tax_number_encrypted)
WHERE phone_encrypted IS NOT NULL OR tax_number_encrypted IS NOT NULL;
COMMENT ON COLUMN identity.users.phone IS NULL;
COMMENT ON COLUMN identity.users.tax_number IS NULL;
-- groundwork:lint allow constraint-missing-not-valid because it restores the validated constraints the up file dropped, before the first release
ALTER TABLE identity.users
    DROP COLUMN phone_encrypted,
    DROP COLUMN phone_blind,
    DROP COLUMN tax_number_encrypted,
    DROP COLUMN tax_number_blind,
    ADD CONSTRAINT users_phone_format CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    ADD CONSTRAINT users_phone_key UNIQUE (phone),
    ADD CONSTRAINT users_tax_number_valid
        CHECK ((tax_number IS NULL AND tax_number_kind IS NULL)
               OR identity.tax_number_is_valid(tax_number_kind, tax_number));

DROP TRIGGER events_seal_personal_data ON eventstore.events;

DROP FUNCTION identity.personal_rotate_master_key(text);
DROP FUNCTION identity.forget_user(uuid, text);
DROP FUNCTION identity.user_login_lookup_by_phone(text);
DROP FUNCTION identity.user_tax_number_set(uuid, identity.tax_number_kind, text);
DROP FUNCTION identity.user_phone_set(uuid, text);
DROP FUNCTION identity.events_seal_personal_data();
DROP FUNCTION identity.personal_reveal(jsonb);
DROP FUNCTION identity.personal_seal(jsonb);
DROP FUNCTION identity.personal_blind_index(text, text);
DROP FUNCTION identity.personal_decrypt(uuid, bytea);
DROP FUNCTION identity.personal_encrypt(uuid, text);
DROP FUNCTION identity.personal_data_key(uuid, boolean);
DROP FUNCTION identity.personal_current_version(bytea);
DROP FUNCTION identity.personal_open_bytes(bytea, bytea, bytea);
DROP FUNCTION identity.personal_seal_bytes(bytea, bytea, bytea);
DROP FUNCTION identity.personal_master_key();

DROP TABLE identity.erasures;
DROP TABLE identity.personal_data_keys;
DROP TABLE identity.personal_keyring;
DROP TABLE identity.personal_master_keys;
