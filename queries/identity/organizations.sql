--: Organization(created_by?, updated_by?)

--- Pass an id to create the organization the tenant context already names (the app
--- role may only insert its current organization); null generates one.
--! organization_create (id?, created_by?) : Organization
INSERT INTO identity.organizations (id, name, slug, settings, metadata, created_by, updated_by)
VALUES (COALESCE(:id, gen_random_uuid()), :name, :slug, :settings, :metadata, :created_by, :created_by)
RETURNING id, name, slug, status, settings, metadata, created_by, updated_by, created_at, updated_at;

--- An organization of the CAD platform: its users default to seed 001's Turkish locale
--- and Istanbul time.
--! organization_create_cad_platform (id?, created_by?) : Organization
INSERT INTO identity.organizations (id, name, slug, settings, metadata, created_by, updated_by,
                                    default_locale, default_timezone)
VALUES (COALESCE(:id, gen_random_uuid()), :name, :slug, :settings, :metadata, :created_by,
        :created_by, 'tr', 'Europe/Istanbul')
RETURNING id, name, slug, status, settings, metadata, created_by, updated_by, created_at, updated_at;

--- Many in one statement, returned in the order given.
--! organization_create_many : Organization
INSERT INTO identity.organizations (name, slug, settings, metadata)
SELECT t.name, t.slug, '{}', '{}'
FROM unnest(:names::text[], :slugs::text[]) WITH ORDINALITY AS t(name, slug, n)
ORDER BY t.n
RETURNING id, name, slug, status, settings, metadata, created_by, updated_by, created_at, updated_at;

--! organization_get : Organization
SELECT id, name, slug, status, settings, metadata, created_by, updated_by, created_at, updated_at
FROM identity.organizations
WHERE id = :id;

--! organization_get_by_slug : Organization
SELECT id, name, slug, status, settings, metadata, created_by, updated_by, created_at, updated_at
FROM identity.organizations
WHERE slug = :slug;

--- Keyset pagination in (created_at, id) order: pass the last row's values, or nulls
--- for the first page.
--! organization_list (after_created_at?, after_id?) : Organization
SELECT id, name, slug, status, settings, metadata, created_by, updated_by, created_at, updated_at
FROM identity.organizations
WHERE :after_created_at::timestamptz IS NULL
   OR (created_at, id) > (:after_created_at, :after_id::uuid)
ORDER BY created_at, id
LIMIT :limit;

--- Null arguments keep the current value.
--! organization_update (name?, status?, settings?, metadata?, updated_by?) : Organization
UPDATE identity.organizations
SET name = COALESCE(:name, name),
    status = COALESCE(:status, status),
    settings = COALESCE(:settings, settings),
    metadata = COALESCE(:metadata, metadata),
    updated_by = COALESCE(:updated_by, updated_by)
WHERE id = :id
RETURNING id, name, slug, status, settings, metadata, created_by, updated_by, created_at, updated_at;

--! organization_delete
DELETE FROM identity.organizations WHERE id = :id;
