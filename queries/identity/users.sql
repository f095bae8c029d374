--: User(first_name?, last_name?, avatar_url?, last_login_at?, mfa_method?, locked_until?, last_login_ip?, password_changed_at?, created_by?, updated_by?, company_name?, company_tax_office?, tax_number_kind?)

--- Pass an id to create the user the tenant context already names (the app role may
--- only insert itself); null generates one. The password hash is written, never read
--- back: the application role cannot select it.
--! user_create (id?, password_hash?, first_name?, last_name?) : User
INSERT INTO identity.users (id, email, username, password_hash, first_name, last_name,
                            password_changed_at)
VALUES (COALESCE(:id, gen_random_uuid()), :email, :username, :password_hash, :first_name,
        :last_name, CASE WHEN :password_hash::text IS NOT NULL THEN now() END)
RETURNING id, email, username, first_name, last_name, avatar_url, email_verified,
          status, metadata, last_login_at, locale, timezone, mfa_enabled,
          mfa_method, failed_login_attempts, locked_until, last_login_ip, password_changed_at,
          created_by, updated_by, created_at, updated_at, role, company_name,
          company_tax_office, tax_number_kind;

--! user_get : User
SELECT id, email, username, first_name, last_name, avatar_url, email_verified,
       status, metadata, last_login_at, locale, timezone, mfa_enabled,
       mfa_method, failed_login_attempts, locked_until, last_login_ip, password_changed_at,
       created_by, updated_by, created_at, updated_at, role, company_name,
          company_tax_office, tax_number_kind
FROM identity.users
WHERE id = :id;

--- Case-insensitive, matching the unique index on lower(email).
--! user_get_by_email : User
SELECT id, email, username, first_name, last_name, avatar_url, email_verified,
       status, metadata, last_login_at, locale, timezone, mfa_enabled,
       mfa_method, failed_login_attempts, locked_until, last_login_ip, password_changed_at,
       created_by, updated_by, created_at, updated_at, role, company_name,
          company_tax_office, tax_number_kind
FROM identity.users
WHERE lower(email) = lower(:email);

--- Keyset pagination in (created_at, id) order: pass the last row's values, or nulls
--- for the first page.
--! user_list (after_created_at?, after_id?) : User
SELECT id, email, username, first_name, last_name, avatar_url, email_verified,
       status, metadata, last_login_at, locale, timezone, mfa_enabled,
       mfa_method, failed_login_attempts, locked_until, last_login_ip, password_changed_at,
       created_by, updated_by, created_at, updated_at, role, company_name,
          company_tax_office, tax_number_kind
FROM identity.users
WHERE :after_created_at::timestamptz IS NULL
   OR (created_at, id) > (:after_created_at, :after_id::uuid)
ORDER BY created_at, id
LIMIT :limit;

--- Null arguments keep the current value.
--! user_update (first_name?, last_name?, avatar_url?, metadata?, locale?, timezone?, company_name?, company_tax_office?, updated_by?) : User
UPDATE identity.users
SET first_name = COALESCE(:first_name, first_name),
    last_name = COALESCE(:last_name, last_name),
    avatar_url = COALESCE(:avatar_url, avatar_url),
    metadata = COALESCE(:metadata, metadata),
    locale = COALESCE(:locale, locale),
    timezone = COALESCE(:timezone, timezone),
    company_name = COALESCE(:company_name, company_name),
    company_tax_office = COALESCE(:company_tax_office, company_tax_office),
    updated_by = COALESCE(:updated_by, updated_by)
WHERE id = :id
RETURNING id, email, username, first_name, last_name, avatar_url, email_verified,
          status, metadata, last_login_at, locale, timezone, mfa_enabled,
          mfa_method, failed_login_attempts, locked_until, last_login_ip, password_changed_at,
          created_by, updated_by, created_at, updated_at, role, company_name,
          company_tax_office, tax_number_kind;

--- Administration (the owner connection): suspends, reactivates or deletes an account.
--- The application role cannot change a user's status.
--! user_status_set : User
UPDATE identity.users
SET status = :status
WHERE id = :id
RETURNING id, email, username, first_name, last_name, avatar_url, email_verified,
          status, metadata, last_login_at, locale, timezone, mfa_enabled,
          mfa_method, failed_login_attempts, locked_until, last_login_ip, password_changed_at,
          created_by, updated_by, created_at, updated_at, role, company_name,
          company_tax_office, tax_number_kind;

--: UserPersonal(phone?, tax_number?, tax_number_kind?)

--- Personal data, stored encrypted with the user's data key (phone_encrypted,
--- tax_number_encrypted) and decrypted here: needs the master key in the transaction
--- (WI001, groundwork::identity::set_master_key). Null values once the user was
--- forgotten.
--! user_personal_get : UserPersonal
SELECT identity.personal_decrypt(id, phone_encrypted) AS phone,
       identity.personal_decrypt(id, tax_number_encrypted) AS tax_number,
       tax_number_kind
FROM identity.users
WHERE id = :id;

--- Sets (or with null clears) the current user's phone, encrypted (needs the master
--- key): E.164 (23514 users_phone_format), unique through its blind index (23505
--- users_phone_blind_key).
--! user_phone_set (phone?)
SELECT identity.user_phone_set(:id, :phone) AS id;

--- Sets (or with nulls clears) the current user's tax number and its kind, encrypted
--- (needs the master key): a VKN of 10 digits or a TCKN of 11, checked by their check
--- digits (23514 users_tax_number_valid).
--! user_tax_number_set (tax_number?, tax_number_kind?)
SELECT identity.user_tax_number_set(:id, :tax_number_kind, :tax_number) AS id;

--- Administration (the owner connection): a user's platform role. The application role
--- cannot change it.
--! user_role_set : User
UPDATE identity.users
SET role = :role
WHERE id = :id
RETURNING id, email, username, first_name, last_name, avatar_url, email_verified,
          status, metadata, last_login_at, locale, timezone, mfa_enabled,
          mfa_method, failed_login_attempts, locked_until, last_login_ip, password_changed_at,
          created_by, updated_by, created_at, updated_at, role, company_name,
          company_tax_office, tax_number_kind;

--! user_password_set
UPDATE identity.users
SET password_hash = :password_hash, password_changed_at = now()
WHERE id = :id;

--: LoginCandidate(password_hash?, locked_until?)

--- Before authentication (groundwork_auth only): by email, case-insensitive. The hash
--- is present only for an active account that is not locked out.
--! user_login_lookup : LoginCandidate
SELECT user_id, password_hash, status, locked_until, failed_login_attempts
FROM identity.user_login_lookup(:email);

--- Before authentication (groundwork_auth only): by phone, through its blind index
--- (needs the master key). As user_login_lookup.
--! user_login_lookup_by_phone : LoginCandidate
SELECT user_id, password_hash, status, locked_until, failed_login_attempts
FROM identity.user_login_lookup_by_phone(:phone);

--- Counts a failure under the database's lock-out policy (identity.auth_policy);
--- changes nothing while the account is locked. No row: unknown user.
--! user_login_failed : (locked_until?)
SELECT failed_login_attempts, locked_until
FROM identity.user_login_failed(:user_id);

--- Resets the failure count of an active, unlocked account; false otherwise.
--! user_login_succeeded (ip?)
SELECT identity.user_login_succeeded(:user_id, :ip) AS recorded;
