-- Why: personal data encrypted at rest and erasable on request, also inside the
-- append-only event log (crypto-shredding; docs/SECURITY.md, "Personal data").
--
-- Key model:
-- * The master key (32 bytes) is the service's: it is set per transaction in
--   groundwork.personal_data_key (64 hexadecimal digits, set_config(..., true) with a
--   bind parameter: groundwork::identity::set_master_key). It is never stored; the
--   database keeps only its check value (an HMAC of a fixed text under the key) to
--   refuse a wrong one (WI002). The first key used is registered as version 1.
-- * Each subject (a user) has a data key (32 random bytes) wrapped by the master key in
--   identity.personal_data_keys. Personal values are encrypted with it: AES-256-CBC
--   under a key derived from the data key, then an HMAC-SHA256 (truncated to 16 bytes)
--   over the subject, the IV and the ciphertext (encrypt-then-MAC): a value moved to
--   another subject or altered fails its check (WI003).
-- * Lookups and uniqueness go through a blind index: HMAC-SHA256 of "field:value" under
--   one random blind-index key, itself wrapped by the master key
--   (identity.personal_keyring). users.phone_blind is unique; login by phone looks it up.
-- * Rotation (identity.personal_rotate_master_key) rewraps the data keys and the
--   blind-index key under a new master key; no row holding personal values changes.
-- * Erasure (identity.forget_user, role groundwork_privacy) deletes the user's data key:
--   every value encrypted with it, in tables and in event payloads, is unreadable from
--   then on. The user row is kept (foreign keys stay valid) with every personal column
--   cleared or replaced by an anonymous marker, their profile and sessions are deleted,
--   and identity.erasures records who erased whom, when and why. No new personal value
--   can be written for a forgotten subject (WI004).
-- * Events: a JSON value {"$personal": <value>, "$subject": "<uuid>"} anywhere in an
--   event's data is sealed when the event is written, to {"$sealed": "<base64>",
--   "$subject": "<uuid>"} (trigger events_seal_personal_data). identity.personal_reveal
--   turns sealed values back into {"$personal": ..., "$subject": ...}, or into
--   {"$erased": true, "$subject": ...} once the subject was forgotten.
--
-- users.phone and users.tax_number move to phone_encrypted / phone_blind and
-- tax_number_encrypted / tax_number_blind (the plaintext columns stay, always null,
-- until a later release drops them). The application writes them with
-- identity.user_phone_set and identity.user_tax_number_set (which keep the format and
-- check-digit rules, 23514 users_phone_format / users_tax_number_valid) and reads them
-- with identity.personal_decrypt. A database holding plaintext phone or tax numbers is
-- encrypted by the next migration when it runs with the master key set
-- (PGOPTIONS='-c groundwork.personal_data_key=...'); without it, that one refuses (WI001).

DO $$
BEGIN
    CREATE ROLE groundwork_privacy NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

-- The master key's check values. One version is current (retired_at null).
CREATE TABLE identity.personal_master_keys (
    version bigint PRIMARY KEY
        CONSTRAINT personal_master_keys_version_positive CHECK (version > 0),
    check_value bytea NOT NULL
        CONSTRAINT personal_master_keys_check_value_length CHECK (octet_length(check_value) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    retired_at timestamptz
);
CREATE UNIQUE INDEX personal_master_keys_current_key ON identity.personal_master_keys ((true))
    WHERE retired_at IS NULL;
COMMENT ON TABLE identity.personal_master_keys IS
    'Check values of the personal-data master keys: the keys themselves are never stored';

-- Keys of the whole database, wrapped by the master key.
CREATE TABLE identity.personal_keyring (
    name text PRIMARY KEY
        CONSTRAINT personal_keyring_name_known CHECK (name IN ('blind_index')),
    wrapped bytea NOT NULL,
    master_version bigint NOT NULL
        REFERENCES identity.personal_master_keys (version) ON DELETE RESTRICT
);
COMMENT ON TABLE identity.personal_keyring IS
    'The blind-index key, wrapped by the master key';

-- One data key per subject, wrapped by the master key. Deleting the row forgets the
-- subject. Global: a person's key serves every tenant they appear in.
CREATE TABLE identity.personal_data_keys (
    subject_id uuid PRIMARY KEY,
    wrapped bytea NOT NULL,
    master_version bigint NOT NULL
        REFERENCES identity.personal_master_keys (version) ON DELETE RESTRICT,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX personal_data_keys_master_version_idx ON identity.personal_data_keys (master_version);
COMMENT ON TABLE identity.personal_data_keys IS
    'Per-subject data keys wrapped by the master key; deleting one erases the subject';

CREATE TABLE identity.erasures (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL
        CONSTRAINT erasures_user_id_key UNIQUE
        REFERENCES identity.users (id) ON DELETE RESTRICT,
    -- The login role that called forget_user, and the acting user when one was set.
    erased_by text NOT NULL,
    requested_by uuid,
    reason text NOT NULL
        CONSTRAINT erasures_reason_length CHECK (char_length(btrim(reason)) BETWEEN 1 AND 1000),
    erased_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE identity.erasures IS
    'Who erased which user, when and why (identity.forget_user)';

-- Only the functions below read or write these tables.
ALTER TABLE identity.personal_master_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE identity.personal_keyring ENABLE ROW LEVEL SECURITY;
ALTER TABLE identity.personal_data_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE identity.erasures ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON identity.personal_master_keys, identity.personal_keyring,
    identity.personal_data_keys, identity.erasures FROM PUBLIC;
GRANT SELECT ON identity.erasures TO groundwork_privacy;
CREATE POLICY erasures_privacy ON identity.erasures TO groundwork_privacy USING (true);

-- The transaction's master key, checked against the current version. Raises WI001
-- when none is set, WI002 when it is malformed or not the current one.
CREATE FUNCTION identity.personal_master_key() RETURNS bytea
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    setting text := current_setting('groundwork.personal_data_key', true);
    key bytea;
    key_check bytea;
    current_key identity.personal_master_keys;
BEGIN
    IF setting IS NULL OR setting = '' THEN
        RAISE EXCEPTION 'no personal-data master key is set in this transaction'
            USING ERRCODE = 'WI001',
                  HINT = 'set groundwork.personal_data_key for the transaction (groundwork::identity::set_master_key)';
    ELSIF setting !~ '^[0-9a-fA-F]{64}$' THEN
        RAISE EXCEPTION 'the personal-data master key is not 64 hexadecimal digits'
            USING ERRCODE = 'WI002';
    END IF;
    key := decode(setting, 'hex');
    key_check := public.hmac(convert_to('groundwork personal-data master key', 'UTF8'), key, 'sha256');
    SELECT * INTO current_key FROM identity.personal_master_keys WHERE retired_at IS NULL;
    IF NOT FOUND THEN
        INSERT INTO identity.personal_master_keys (version, check_value)
        SELECT coalesce(max(version), 0) + 1, key_check FROM identity.personal_master_keys
        ON CONFLICT DO NOTHING;
        SELECT * INTO current_key FROM identity.personal_master_keys WHERE retired_at IS NULL;
    END IF;
    IF current_key.check_value IS DISTINCT FROM key_check THEN
        RAISE EXCEPTION 'the personal-data master key is not the current one (version %)', current_key.version
            USING ERRCODE = 'WI002';
    END IF;
    RETURN key;
END
$$;

-- Encrypt-then-MAC under a 32-byte key: 0x01, IV (16), AES-256-CBC ciphertext, and
-- the first 16 bytes of HMAC-SHA256 over the context, the IV and the ciphertext.
CREATE FUNCTION identity.personal_seal_bytes(p_key bytea, p_context bytea, p_plain bytea)
RETURNS bytea
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT '\x01'::bytea || c.iv || c.ct
           || substring(public.hmac(p_context || c.iv || c.ct,
                                    public.hmac('\x02'::bytea, p_key, 'sha256'), 'sha256') FROM 1 FOR 16)
    FROM (SELECT r.iv, public.encrypt_iv(p_plain, public.hmac('\x01'::bytea, p_key, 'sha256'),
                                         r.iv, 'aes-cbc/pad:pkcs') AS ct
          FROM (SELECT public.gen_random_bytes(16) AS iv) r) c
$$;

-- The inverse of personal_seal_bytes; WI003 when the value fails its check.
CREATE FUNCTION identity.personal_open_bytes(p_key bytea, p_context bytea, p_sealed bytea)
RETURNS bytea
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer := octet_length(p_sealed);
    iv bytea;
    ct bytea;
BEGIN
    IF n < 49 OR (n - 33) % 16 <> 0 OR get_byte(p_sealed, 0) <> 1 THEN
        RAISE EXCEPTION 'an encrypted personal value is malformed' USING ERRCODE = 'WI003';
    END IF;
    iv := substring(p_sealed FROM 2 FOR 16);
    ct := substring(p_sealed FROM 18 FOR n - 33);
    IF substring(public.hmac(p_context || iv || ct, public.hmac('\x02'::bytea, p_key, 'sha256'), 'sha256')
                 FROM 1 FOR 16) <> substring(p_sealed FROM n - 15) THEN
        RAISE EXCEPTION 'an encrypted personal value failed its integrity check' USING ERRCODE = 'WI003';
    END IF;
    RETURN public.decrypt_iv(ct, public.hmac('\x01'::bytea, p_key, 'sha256'), iv, 'aes-cbc/pad:pkcs');
END
$$;

-- The current master version, locked against a concurrent rotation until the
-- transaction ends; WI002 when the transaction's key is not the current one.
CREATE FUNCTION identity.personal_current_version(p_master bytea) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v bigint;
BEGIN
    SELECT k.version INTO v FROM identity.personal_master_keys k
    WHERE k.retired_at IS NULL
      AND k.check_value = public.hmac(convert_to('groundwork personal-data master key', 'UTF8'), p_master, 'sha256')
    FOR SHARE;
    IF v IS NULL THEN
        RAISE EXCEPTION 'the personal-data master key was rotated' USING ERRCODE = 'WI002';
    END IF;
    RETURN v;
END
$$;

-- The subject's data key: made when p_create and the subject has none (WI004 if the
-- subject was forgotten), null when it has none otherwise.
CREATE FUNCTION identity.personal_data_key(p_subject uuid, p_create boolean) RETURNS bytea
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    master bytea := identity.personal_master_key();
    wrapped_key bytea;
    data_key bytea;
BEGIN
    SELECT k.wrapped INTO wrapped_key FROM identity.personal_data_keys k WHERE k.subject_id = p_subject;
    IF FOUND THEN
        RETURN identity.personal_open_bytes(master, uuid_send(p_subject), wrapped_key);
    ELSIF NOT p_create THEN
        RETURN NULL;
    END IF;
    -- A key made while the subject is being forgotten would outlive the erasure:
    -- forget_user holds the user's row FOR UPDATE, so this waits for it and then
    -- (a new statement, a new snapshot) sees its erasure.
    PERFORM FROM identity.users u WHERE u.id = p_subject FOR KEY SHARE;
    IF EXISTS (SELECT FROM identity.erasures e WHERE e.user_id = p_subject) THEN
        RAISE EXCEPTION 'subject % was forgotten: no personal data is written for it', p_subject
            USING ERRCODE = 'WI004';
    END IF;
    data_key := public.gen_random_bytes(32);
    INSERT INTO identity.personal_data_keys (subject_id, wrapped, master_version)
    VALUES (p_subject, identity.personal_seal_bytes(master, uuid_send(p_subject), data_key),
            identity.personal_current_version(master))
    ON CONFLICT (subject_id) DO NOTHING;
    IF FOUND THEN
        RETURN data_key;
    END IF;
    -- Made by a concurrent transaction that committed first.
    SELECT k.wrapped INTO wrapped_key FROM identity.personal_data_keys k WHERE k.subject_id = p_subject;
    RETURN identity.personal_open_bytes(master, uuid_send(p_subject), wrapped_key);
END
$$;

-- Encrypts a text value of a subject (null stays null).
CREATE FUNCTION identity.personal_encrypt(p_subject uuid, p_value text) RETURNS bytea
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_value IS NULL THEN
        RETURN NULL;
    ELSIF p_subject IS NULL THEN
        RAISE EXCEPTION 'a personal value needs its subject' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    RETURN identity.personal_seal_bytes(identity.personal_data_key(p_subject, true), uuid_send(p_subject),
                                        convert_to(p_value, 'UTF8'));
END
$$;

-- Decrypts a value of a subject; null when the value is null or the subject was
-- forgotten. Needs the master key (WI001) when there is something to decrypt.
CREATE FUNCTION identity.personal_decrypt(p_subject uuid, p_value bytea) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    data_key bytea;
BEGIN
    IF p_value IS NULL THEN
        RETURN NULL;
    END IF;
    data_key := identity.personal_data_key(p_subject, false);
    IF data_key IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN convert_from(identity.personal_open_bytes(data_key, uuid_send(p_subject), p_value), 'UTF8');
END
$$;

-- The blind index of a value: HMAC-SHA256 of "field:value" under the blind-index key.
CREATE FUNCTION identity.personal_blind_index(p_field text, p_value text) RETURNS bytea
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    master bytea;
    wrapped_key bytea;
    blind_key bytea;
BEGIN
    IF p_value IS NULL THEN
        RETURN NULL;
    ELSIF p_field IS NULL OR p_field !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'a blind index field is a lower-case identifier' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    master := identity.personal_master_key();
    SELECT k.wrapped INTO wrapped_key FROM identity.personal_keyring k WHERE k.name = 'blind_index';
    IF NOT FOUND THEN
        blind_key := public.gen_random_bytes(32);
        INSERT INTO identity.personal_keyring (name, wrapped, master_version)
        VALUES ('blind_index', identity.personal_seal_bytes(master, convert_to('blind_index', 'UTF8'), blind_key),
                identity.personal_current_version(master))
        ON CONFLICT (name) DO NOTHING;
        SELECT k.wrapped INTO wrapped_key FROM identity.personal_keyring k WHERE k.name = 'blind_index';
    END IF;
    blind_key := identity.personal_open_bytes(master, convert_to('blind_index', 'UTF8'), wrapped_key);
    RETURN public.hmac(convert_to(p_field || ':' || p_value, 'UTF8'), blind_key, 'sha256');
END
$$;

-- Seals every {"$personal": <value>, "$subject": "<uuid>"} inside a JSON value.
-- Values that already look sealed are refused: only the database seals.
CREATE FUNCTION identity.personal_seal(p_value jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    subject uuid;
BEGIN
    IF jsonb_typeof(p_value) = 'object' THEN
        IF p_value ? '$sealed' THEN
            RAISE EXCEPTION 'an event cannot carry a "$sealed" value: write {"$personal": <value>, "$subject": "<uuid>"}'
                USING ERRCODE = 'invalid_parameter_value';
        ELSIF p_value ? '$personal' THEN
            IF jsonb_typeof(p_value -> '$subject') IS DISTINCT FROM 'string'
               OR p_value ->> '$subject' !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
               OR (SELECT count(*) FROM jsonb_object_keys(p_value)) <> 2 THEN
                RAISE EXCEPTION 'a personal value is {"$personal": <value>, "$subject": "<uuid>"} and nothing else'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            subject := (p_value ->> '$subject')::uuid;
            RETURN jsonb_build_object(
                '$sealed', translate(encode(identity.personal_seal_bytes(
                    identity.personal_data_key(subject, true), uuid_send(subject),
                    convert_to((p_value -> '$personal')::text, 'UTF8')), 'base64'), E'\n', ''),
                '$subject', subject);
        END IF;
        RETURN (SELECT jsonb_object_agg(e.key, CASE WHEN e.value @? '$.**."$personal"' OR e.value @? '$.**."$sealed"'
                                                    THEN identity.personal_seal(e.value) ELSE e.value END)
                FROM jsonb_each(p_value) e);
    ELSIF jsonb_typeof(p_value) = 'array' THEN
        RETURN (SELECT jsonb_agg(CASE WHEN e.value @? '$.**."$personal"' OR e.value @? '$.**."$sealed"'
                                      THEN identity.personal_seal(e.value) ELSE e.value END ORDER BY e.n)
                FROM jsonb_array_elements(p_value) WITH ORDINALITY e(value, n));
    END IF;
    RETURN p_value;
END
$$;

-- The inverse of personal_seal: each sealed value becomes {"$personal": <value>,
-- "$subject": ...}, or {"$erased": true, "$subject": ...} once its subject was
-- forgotten. Needs the master key (WI001) when something is sealed.
CREATE FUNCTION identity.personal_reveal(p_value jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    subject uuid;
    data_key bytea;
BEGIN
    IF p_value IS NULL OR NOT p_value @? '$.**."$sealed"' THEN
        RETURN p_value;
    ELSIF jsonb_typeof(p_value) = 'object' THEN
        IF jsonb_typeof(p_value -> '$sealed') = 'string' AND jsonb_typeof(p_value -> '$subject') = 'string' THEN
            subject := (p_value ->> '$subject')::uuid;
            data_key := identity.personal_data_key(subject, false);
            IF data_key IS NULL THEN
                RETURN jsonb_build_object('$erased', true, '$subject', subject);
            END IF;
            RETURN jsonb_build_object(
                '$personal', convert_from(identity.personal_open_bytes(data_key, uuid_send(subject),
                                                                       decode(p_value ->> '$sealed', 'base64')),
                                          'UTF8')::jsonb,
                '$subject', subject);
        END IF;
        RETURN (SELECT jsonb_object_agg(e.key, identity.personal_reveal(e.value)) FROM jsonb_each(p_value) e);
    ELSIF jsonb_typeof(p_value) = 'array' THEN
        RETURN (SELECT jsonb_agg(identity.personal_reveal(e.value) ORDER BY e.n)
                FROM jsonb_array_elements(p_value) WITH ORDINALITY e(value, n));
    END IF;
    RETURN p_value;
END
$$;

-- Events: personal values are sealed before the row is written, so no plaintext of
-- them reaches the table, its indexes or the WAL.
CREATE FUNCTION identity.events_seal_personal_data() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.data := identity.personal_seal(NEW.data);
    RETURN NEW;
END
$$;

CREATE TRIGGER events_seal_personal_data
    BEFORE INSERT ON eventstore.events
    FOR EACH ROW
    WHEN (NEW.data @? '$.**."$personal"' OR NEW.data @? '$.**."$sealed"')
    EXECUTE FUNCTION identity.events_seal_personal_data();

-- users: phone and tax number encrypted, with their blind indexes. Adding nullable
-- columns and dropping constraints reads no row; the existing values are encrypted, the
-- plaintext columns emptied and the blind indexes built without blocking writes by the
-- next migration (20261206300100_personal_data_indexes, outside a transaction). The
-- plaintext columns stay, always null (users_plaintext_removed), so that the previous
-- release's queries still prepare during a rolling deploy; a later release drops them.
ALTER TABLE identity.users
    ADD COLUMN phone_encrypted bytea,
    ADD COLUMN phone_blind bytea,
    ADD COLUMN tax_number_encrypted bytea,
    ADD COLUMN tax_number_blind bytea,
    DROP CONSTRAINT users_phone_key,
    DROP CONSTRAINT users_phone_format,
    DROP CONSTRAINT users_tax_number_valid,
    ADD CONSTRAINT users_phone_complete
        CHECK ((phone_encrypted IS NULL) = (phone_blind IS NULL)) NOT VALID,
    ADD CONSTRAINT users_tax_number_complete
        CHECK ((tax_number_encrypted IS NULL) = (tax_number_blind IS NULL)
               AND (tax_number_encrypted IS NULL) = (tax_number_kind IS NULL)) NOT VALID,
    ADD CONSTRAINT users_plaintext_removed
        CHECK (phone IS NULL AND tax_number IS NULL) NOT VALID;
COMMENT ON COLUMN identity.users.phone IS
    'Always null: the phone is in phone_encrypted. Kept for the previous release''s queries';
COMMENT ON COLUMN identity.users.tax_number IS
    'Always null: the tax number is in tax_number_encrypted. Kept for the previous release''s queries';
COMMENT ON COLUMN identity.users.phone_encrypted IS
    'Personal: the phone number, encrypted with the user''s data key (identity.personal_decrypt)';
COMMENT ON COLUMN identity.users.tax_number_encrypted IS
    'Personal: the tax number, encrypted with the user''s data key (identity.personal_decrypt)';
COMMENT ON COLUMN identity.users.phone_blind IS 'Blind index of the phone number (unique)';
COMMENT ON COLUMN identity.users.tax_number_blind IS 'Blind index of the tax number';

-- The ciphertext is readable where the row is; writes go through the setters.
GRANT SELECT (phone_encrypted, tax_number_encrypted) ON identity.users
    TO groundwork_app, groundwork_readonly;

-- Sets (or with null clears) the current user's phone: E.164, unique by its blind index
-- (23505 users_phone_blind_key). Returns the user id.
CREATE FUNCTION identity.user_phone_set(p_user_id uuid, p_phone text) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_user_id IS NULL OR p_user_id IS DISTINCT FROM identity.current_user_id() THEN
        RAISE EXCEPTION 'a user sets only their own phone' USING ERRCODE = 'insufficient_privilege';
    ELSIF p_phone !~ '^\+[1-9][0-9]{6,14}$' THEN
        RAISE EXCEPTION 'new row for relation "users" violates check constraint "users_phone_format"'
            USING ERRCODE = 'check_violation', SCHEMA = 'identity', TABLE = 'users',
                  CONSTRAINT = 'users_phone_format';
    END IF;
    UPDATE identity.users
    SET phone_encrypted = identity.personal_encrypt(id, p_phone),
        phone_blind = identity.personal_blind_index('phone', p_phone)
    WHERE id = p_user_id AND status <> 'deleted';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such user' USING ERRCODE = 'no_data_found';
    END IF;
    RETURN p_user_id;
END
$$;

-- Sets (or with nulls clears) the current user's tax number and its kind: a VKN of 10
-- digits or a TCKN of 11, checked by their check digits (23514
-- users_tax_number_valid). Returns the user id.
CREATE FUNCTION identity.user_tax_number_set(
    p_user_id uuid, p_kind identity.tax_number_kind, p_number text)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_user_id IS NULL OR p_user_id IS DISTINCT FROM identity.current_user_id() THEN
        RAISE EXCEPTION 'a user sets only their own tax number' USING ERRCODE = 'insufficient_privilege';
    ELSIF NOT ((p_kind IS NULL AND p_number IS NULL)
               OR coalesce(identity.tax_number_is_valid(p_kind, p_number), false)) THEN
        RAISE EXCEPTION 'new row for relation "users" violates check constraint "users_tax_number_valid"'
            USING ERRCODE = 'check_violation', SCHEMA = 'identity', TABLE = 'users',
                  CONSTRAINT = 'users_tax_number_valid';
    END IF;
    UPDATE identity.users
    SET tax_number_encrypted = identity.personal_encrypt(id, p_number),
        tax_number_blind = identity.personal_blind_index('tax_number', p_number),
        tax_number_kind = p_kind
    WHERE id = p_user_id AND status <> 'deleted';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such user' USING ERRCODE = 'no_data_found';
    END IF;
    RETURN p_user_id;
END
$$;

-- What a login by phone needs before anyone is authenticated: as user_login_lookup.
CREATE FUNCTION identity.user_login_lookup_by_phone(p_phone text)
RETURNS TABLE (user_id uuid, password_hash text, status identity.user_status,
               locked_until timestamptz, failed_login_attempts integer)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, identity, pg_temp
AS $$
    SELECT u.id,
           CASE WHEN u.status = 'active' AND (u.locked_until IS NULL OR u.locked_until <= now())
                THEN u.password_hash END,
           u.status, u.locked_until, u.failed_login_attempts
    FROM identity.users u
    -- A subquery, computed once: the volatile function in the condition itself would
    -- be called for every row instead of probing users_phone_blind_key.
    WHERE u.phone_blind = (SELECT identity.personal_blind_index('phone', p_phone))
$$;

-- Erases a user: deletes their data key (every value encrypted with it, in tables and
-- events, is unreadable from then on), clears or anonymises every personal column of
-- their row, deletes their profile and sessions and the e-mail of their invitations,
-- and records the erasure. Idempotent: a second call returns the first erasure's id.
CREATE FUNCTION identity.forget_user(p_user_id uuid, p_reason text) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    erasure uuid;
    marker text := replace(p_user_id::text, '-', '');
BEGIN
    IF p_reason IS NULL OR char_length(btrim(p_reason)) NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'an erasure needs a reason of 1 to 1000 characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM FROM identity.users u WHERE u.id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such user' USING ERRCODE = 'no_data_found';
    END IF;
    SELECT e.id INTO erasure FROM identity.erasures e WHERE e.user_id = p_user_id;
    IF FOUND THEN
        RETURN erasure;
    END IF;
    DELETE FROM identity.personal_data_keys WHERE subject_id = p_user_id;
    UPDATE identity.users
    SET email = 'erased-' || marker || '@erased.invalid',
        username = 'erased_' || marker,
        password_hash = NULL,
        first_name = NULL,
        last_name = NULL,
        avatar_url = NULL,
        metadata = '{}',
        phone_encrypted = NULL,
        phone_blind = NULL,
        tax_number_encrypted = NULL,
        tax_number_blind = NULL,
        tax_number_kind = NULL,
        company_name = NULL,
        company_tax_office = NULL,
        last_login_ip = NULL,
        mfa_enabled = false,
        mfa_method = NULL,
        status = 'deleted'
    WHERE id = p_user_id;
    DELETE FROM identity.user_profiles WHERE user_id = p_user_id;
    DELETE FROM identity.sessions WHERE user_id = p_user_id;
    UPDATE identity.organization_members SET invitation_email = NULL
    WHERE user_id = p_user_id AND invitation_email IS NOT NULL;
    INSERT INTO identity.erasures (user_id, erased_by, requested_by, reason)
    VALUES (p_user_id, session_user, identity.current_user_id(), btrim(p_reason))
    RETURNING id INTO erasure;
    RETURN erasure;
END
$$;

-- Rewraps every data key and the blind-index key under a new master key and makes it
-- the current one. The transaction's key must be the current one; set the new key for
-- the transactions that follow. Returns the new version.
CREATE FUNCTION identity.personal_rotate_master_key(p_new_key text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    old_key bytea := identity.personal_master_key();
    new_key bytea;
    old_version bigint;
BEGIN
    IF p_new_key IS NULL OR p_new_key !~ '^[0-9a-fA-F]{64}$' THEN
        RAISE EXCEPTION 'the new personal-data master key is not 64 hexadecimal digits'
            USING ERRCODE = 'WI002';
    END IF;
    new_key := decode(p_new_key, 'hex');
    IF new_key = old_key THEN
        RAISE EXCEPTION 'the new personal-data master key is the current one' USING ERRCODE = 'WI002';
    END IF;
    -- Waits for transactions that are making keys under the old version.
    SELECT k.version INTO old_version FROM identity.personal_master_keys k
    WHERE k.retired_at IS NULL FOR UPDATE;
    UPDATE identity.personal_master_keys SET retired_at = now() WHERE version = old_version;
    INSERT INTO identity.personal_master_keys (version, check_value)
    VALUES (old_version + 1,
            public.hmac(convert_to('groundwork personal-data master key', 'UTF8'), new_key, 'sha256'));
    UPDATE identity.personal_data_keys k
    SET wrapped = identity.personal_seal_bytes(new_key, uuid_send(k.subject_id),
                      identity.personal_open_bytes(old_key, uuid_send(k.subject_id), k.wrapped)),
        master_version = old_version + 1;
    UPDATE identity.personal_keyring k
    SET wrapped = identity.personal_seal_bytes(new_key, convert_to(k.name, 'UTF8'),
                      identity.personal_open_bytes(old_key, convert_to(k.name, 'UTF8'), k.wrapped)),
        master_version = old_version + 1;
    RETURN old_version + 1;
END
$$;

REVOKE ALL ON FUNCTION identity.personal_master_key(),
    identity.personal_seal_bytes(bytea, bytea, bytea),
    identity.personal_open_bytes(bytea, bytea, bytea),
    identity.personal_current_version(bytea),
    identity.personal_data_key(uuid, boolean),
    identity.personal_encrypt(uuid, text),
    identity.personal_decrypt(uuid, bytea),
    identity.personal_blind_index(text, text),
    identity.personal_seal(jsonb),
    identity.personal_reveal(jsonb),
    identity.events_seal_personal_data(),
    identity.user_phone_set(uuid, text),
    identity.user_tax_number_set(uuid, identity.tax_number_kind, text),
    identity.user_login_lookup_by_phone(text),
    identity.forget_user(uuid, text),
    identity.personal_rotate_master_key(text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION identity.personal_encrypt(uuid, text),
    identity.personal_decrypt(uuid, bytea),
    identity.personal_blind_index(text, text),
    identity.personal_seal(jsonb),
    identity.personal_reveal(jsonb),
    identity.user_phone_set(uuid, text),
    identity.user_tax_number_set(uuid, identity.tax_number_kind, text)
    TO groundwork_app;
GRANT EXECUTE ON FUNCTION identity.personal_decrypt(uuid, bytea),
    identity.personal_reveal(jsonb)
    TO groundwork_readonly;
GRANT EXECUTE ON FUNCTION identity.user_login_lookup_by_phone(text) TO groundwork_auth;
GRANT USAGE ON SCHEMA identity TO groundwork_privacy;
GRANT EXECUTE ON FUNCTION identity.forget_user(uuid, text),
    identity.personal_rotate_master_key(text),
    identity.personal_decrypt(uuid, bytea),
    identity.personal_reveal(jsonb)
    TO groundwork_privacy;

SELECT public.groundwork_set_owner('identity', 'groundwork_owner');
