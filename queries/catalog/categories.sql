-- catalog.categories (migrations/20261206100000_catalog.up.sql): id, organization_id,
-- parent_id, name, slug, description, position, active, created_at, updated_at. A tree
-- per tenant: a move that would close a cycle is refused (SQLSTATE WC001); a category
-- with sub-categories is not deleted (23503).

--: Category(parent_id?, description?)

--! category_create (parent_id?, description?) : Category
INSERT INTO catalog.categories (parent_id, name, slug, description, position)
VALUES (:parent_id, :name, :slug, :description, :position)
RETURNING id, organization_id, parent_id, name, slug, description, position, active,
          created_at, updated_at;

--! category_get : Category
SELECT id, organization_id, parent_id, name, slug, description, position, active,
       created_at, updated_at
FROM catalog.categories
WHERE organization_id = identity.current_org_id() AND id = :id;

--! category_get_by_slug : Category
SELECT id, organization_id, parent_id, name, slug, description, position, active,
       created_at, updated_at
FROM catalog.categories
WHERE organization_id = identity.current_org_id() AND slug = :slug;

--- The children of a category (parent_id NULL: the roots), in menu order.
--! category_list_children (parent_id?) : Category
SELECT id, organization_id, parent_id, name, slug, description, position, active,
       created_at, updated_at
FROM catalog.categories
WHERE organization_id = identity.current_org_id() AND parent_id IS NOT DISTINCT FROM :parent_id
ORDER BY position, id;

--- Moves a category under another (NULL: to the top). Refused with WC001 when the new
--- parent is the category itself or one of its descendants; moves of one tenant take
--- turns, so two concurrent moves cannot close a cycle between them.
--! category_move (parent_id?) : Category
UPDATE catalog.categories SET parent_id = :parent_id
WHERE organization_id = identity.current_org_id() AND id = :id
RETURNING id, organization_id, parent_id, name, slug, description, position, active,
          created_at, updated_at;

--- Null arguments keep the current value.
--! category_update (name?, slug?, description?, position?, active?) : Category
UPDATE catalog.categories
SET name = COALESCE(:name, name),
    slug = COALESCE(:slug, slug),
    description = COALESCE(:description, description),
    position = COALESCE(:position, position),
    active = COALESCE(:active, active)
WHERE organization_id = identity.current_org_id() AND id = :id
RETURNING id, organization_id, parent_id, name, slug, description, position, active,
          created_at, updated_at;

--- Its products lose their category; refused (23503) while it has sub-categories.
--! category_delete
DELETE FROM catalog.categories WHERE organization_id = identity.current_org_id() AND id = :id;
