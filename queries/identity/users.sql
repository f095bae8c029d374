--: User(password_hash?, first_name?, last_name?, avatar_url?, last_login_at?)

--! user_create (password_hash?, first_name?, last_name?) : User
INSERT INTO identity.users (email, username, password_hash, first_name, last_name)
VALUES (:email, :username, :password_hash, :first_name, :last_name)
RETURNING id, email, username, password_hash, first_name, last_name, avatar_url,
          email_verified, status, metadata, last_login_at, created_at, updated_at;

--! user_get : User
SELECT id, email, username, password_hash, first_name, last_name, avatar_url,
       email_verified, status, metadata, last_login_at, created_at, updated_at
FROM identity.users
WHERE id = :id;

--- Case-insensitive, matching the unique index on lower(email).
--! user_get_by_email : User
SELECT id, email, username, password_hash, first_name, last_name, avatar_url,
       email_verified, status, metadata, last_login_at, created_at, updated_at
FROM identity.users
WHERE lower(email) = lower(:email);

--- Keyset pagination in (created_at, id) order: pass the last row's values, or nulls
--- for the first page.
--! user_list (after_created_at?, after_id?) : User
SELECT id, email, username, password_hash, first_name, last_name, avatar_url,
       email_verified, status, metadata, last_login_at, created_at, updated_at
FROM identity.users
WHERE :after_created_at::timestamptz IS NULL
   OR (created_at, id) > (:after_created_at, :after_id::uuid)
ORDER BY created_at, id
LIMIT :limit;

--- Null arguments keep the current value.
--! user_update (first_name?, last_name?, avatar_url?, status?, metadata?) : User
UPDATE identity.users
SET first_name = COALESCE(:first_name, first_name),
    last_name = COALESCE(:last_name, last_name),
    avatar_url = COALESCE(:avatar_url, avatar_url),
    status = COALESCE(:status, status),
    metadata = COALESCE(:metadata, metadata)
WHERE id = :id
RETURNING id, email, username, password_hash, first_name, last_name, avatar_url,
          email_verified, status, metadata, last_login_at, created_at, updated_at;
