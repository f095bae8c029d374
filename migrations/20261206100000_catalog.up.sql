-- Why: the product catalog of seed 002 (docs/REQUIREMENTS.md, "catalog"), per tenant:
-- a category tree, products with full-text search, reviews and images. Stock lives in
-- the inventory schema (the next migration), which also defines the two read
-- functions that join both: catalog.search_products and catalog.get_product_details.
--
-- * categories form a tree: a category's parent is a category of the same tenant, and
--   no move may close a cycle of any length, also when transactions move categories
--   concurrently. Every move first updates the tenant's guard row
--   (catalog.category_tree_guards), so moves take turns per tenant (never across
--   tenants), and the check then sees every committed move. A cycle is SQLSTATE WC001.
--   Slugs are unique per tenant; a category with sub-categories cannot be deleted
--   (23503); its products lose their category.
-- * products: sku unique per tenant, price numeric >= 0 in a three-letter currency,
--   tags (at most 50, each 1 to 50 characters), metadata a JSON object of at most 64
--   KiB, and a generated tsvector (name and sku weight A, tags B, description C) with a
--   GIN index. The seed's composite and partial indexes: (category, active), price of
--   active products, tags and metadata (GIN). The seed's "active + in stock" partial
--   index is not built: stock is inventory.stock_levels, whose rows take every
--   reservation, and an index over on_hand or reserved would cost those updates their
--   HOT path (docs/BENCHMARKS.md); search checks stock by primary key instead.
-- * product_reviews: rating 1 to 5, one per user and product (the user is always the
--   current user: the application cannot set user_id), an approval state (pending,
--   approved, rejected) and verified_purchase, which only the database's owner sets
--   (the sales schema will, from orders).
-- * product_images: ordered by position; exactly one primary image per product while
--   it has images: a partial unique index allows at most one, the first image becomes
--   primary, making another image primary demotes the old one, deleting the primary
--   promotes the next by position, and unsetting the primary directly is WC002.

CREATE SCHEMA catalog;

CREATE TYPE catalog.review_status AS ENUM ('pending', 'approved', 'rejected');

CREATE TABLE catalog.categories (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL DEFAULT identity.current_org_id()
        CONSTRAINT categories_organization_id_fkey
            REFERENCES identity.organizations (id) ON DELETE CASCADE,
    parent_id uuid,
    name text NOT NULL
        CONSTRAINT categories_name_length CHECK (char_length(btrim(name)) BETWEEN 1 AND 200),
    slug text NOT NULL
        CONSTRAINT categories_slug_format
            CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND char_length(slug) <= 100),
    description text
        CONSTRAINT categories_description_length CHECK (char_length(description) <= 10000),
    position integer NOT NULL DEFAULT 0,
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT categories_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT categories_slug_key UNIQUE (organization_id, slug),
    -- A category with sub-categories stays until they are moved or deleted.
    CONSTRAINT categories_parent_id_fkey FOREIGN KEY (organization_id, parent_id)
        REFERENCES catalog.categories (organization_id, id) ON DELETE RESTRICT,
    CONSTRAINT categories_not_own_parent CHECK (parent_id <> id)
);

-- Children of a category, in order (the tree walk and the menu).
CREATE INDEX categories_parent_id_idx ON catalog.categories (organization_id, parent_id, position);

-- One row per tenant: category moves update it first, so they take turns.
CREATE TABLE catalog.category_tree_guards (
    organization_id uuid NOT NULL
        CONSTRAINT category_tree_guards_organization_id_fkey
            REFERENCES identity.organizations (id) ON DELETE CASCADE,
    moves bigint NOT NULL DEFAULT 0,
    CONSTRAINT category_tree_guards_pkey PRIMARY KEY (organization_id)
);

COMMENT ON TABLE catalog.category_tree_guards IS
    'Serialises category moves per tenant (the cycle check); owner only';

-- The tags as one text, for the search document.
CREATE FUNCTION catalog.tags_text(tags text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(array_to_string(tags, ' '), '');

-- At most 50 tags of 1 to 50 characters each, none NULL.
CREATE FUNCTION catalog.tags_valid(tags text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN cardinality(tags) <= 50 AND array_position(tags, NULL) IS NULL
       AND (SELECT bool_and(char_length(t) BETWEEN 1 AND 50) FROM unnest(tags) t) IS NOT FALSE;

CREATE TABLE catalog.products (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL DEFAULT identity.current_org_id()
        CONSTRAINT products_organization_id_fkey
            REFERENCES identity.organizations (id) ON DELETE CASCADE,
    category_id uuid,
    sku text NOT NULL
        CONSTRAINT products_sku_format
            CHECK (sku ~ '^[A-Za-z0-9][A-Za-z0-9._-]*$' AND char_length(sku) <= 64),
    name text NOT NULL
        CONSTRAINT products_name_length CHECK (char_length(btrim(name)) BETWEEN 1 AND 255),
    description text NOT NULL DEFAULT ''
        CONSTRAINT products_description_length CHECK (char_length(description) <= 20000),
    price numeric(12, 2) NOT NULL
        CONSTRAINT products_price_nonnegative CHECK (price >= 0),
    currency text NOT NULL DEFAULT 'USD'
        CONSTRAINT products_currency_format CHECK (currency ~ '^[A-Z]{3}$'),
    tags text[] NOT NULL DEFAULT '{}'
        CONSTRAINT products_tags_valid CHECK (catalog.tags_valid(tags)),
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb
        CONSTRAINT products_metadata_object
            CHECK (jsonb_typeof(metadata) = 'object'
                   AND CASE WHEN pg_column_compression(metadata) IS NULL
                            THEN pg_column_size(metadata)
                            ELSE octet_length(metadata::text) END <= 65536),
    active boolean NOT NULL DEFAULT true,
    search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english'::regconfig, name), 'A')
        || setweight(to_tsvector('simple'::regconfig, sku), 'A')
        || setweight(to_tsvector('english'::regconfig, catalog.tags_text(tags)), 'B')
        || setweight(to_tsvector('english'::regconfig, description), 'C')) STORED,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT products_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT products_sku_key UNIQUE (organization_id, sku),
    CONSTRAINT products_category_id_fkey FOREIGN KEY (organization_id, category_id)
        REFERENCES catalog.categories (organization_id, id) ON DELETE SET NULL (category_id)
);

CREATE INDEX products_search_idx ON catalog.products USING gin (search_vector);
-- A category's products, active ones first (the seed's category + active).
CREATE INDEX products_category_id_active_idx ON catalog.products (organization_id, category_id, active);
-- Price ranges over what is for sale (the seed's price index, partial on active).
CREATE INDEX products_active_price_idx ON catalog.products (organization_id, price) WHERE active;
CREATE INDEX products_tags_idx ON catalog.products USING gin (tags);
CREATE INDEX products_metadata_idx ON catalog.products USING gin (metadata jsonb_path_ops);

CREATE TABLE catalog.product_reviews (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL DEFAULT identity.current_org_id(),
    product_id uuid NOT NULL,
    user_id uuid NOT NULL DEFAULT identity.current_user_id()
        CONSTRAINT product_reviews_user_id_fkey REFERENCES identity.users (id) ON DELETE CASCADE,
    rating smallint NOT NULL
        CONSTRAINT product_reviews_rating_range CHECK (rating BETWEEN 1 AND 5),
    title text
        CONSTRAINT product_reviews_title_length CHECK (char_length(btrim(title)) BETWEEN 1 AND 200),
    body text
        CONSTRAINT product_reviews_body_length CHECK (char_length(body) <= 10000),
    status catalog.review_status NOT NULL DEFAULT 'pending',
    verified_purchase boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT product_reviews_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT product_reviews_product_id_fkey FOREIGN KEY (organization_id, product_id)
        REFERENCES catalog.products (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT product_reviews_product_id_user_id_key UNIQUE (organization_id, product_id, user_id)
);

-- A product's approved reviews, newest first (the rating summary and the listing).
CREATE INDEX product_reviews_product_id_status_idx
    ON catalog.product_reviews (organization_id, product_id, status, created_at);
CREATE INDEX product_reviews_user_id_idx ON catalog.product_reviews (user_id);

CREATE TABLE catalog.product_images (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL DEFAULT identity.current_org_id(),
    product_id uuid NOT NULL,
    url text NOT NULL
        CONSTRAINT product_images_url_format
            CHECK (url ~ '^(https?://|/)[^[:space:]]+$' AND char_length(url) <= 2048),
    alt_text text
        CONSTRAINT product_images_alt_text_length CHECK (char_length(alt_text) <= 500),
    position integer NOT NULL DEFAULT 0
        CONSTRAINT product_images_position_nonnegative CHECK (position >= 0),
    is_primary boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT product_images_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT product_images_product_id_fkey FOREIGN KEY (organization_id, product_id)
        REFERENCES catalog.products (organization_id, id) ON DELETE CASCADE
);

CREATE INDEX product_images_product_id_position_idx
    ON catalog.product_images (organization_id, product_id, position, id);
-- At most one primary image per product; the triggers keep exactly one.
CREATE UNIQUE INDEX product_images_one_primary_idx
    ON catalog.product_images (organization_id, product_id) WHERE is_primary;

CREATE TRIGGER categories_set_updated_at BEFORE UPDATE ON catalog.categories
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER products_set_updated_at BEFORE UPDATE ON catalog.products
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER product_reviews_set_updated_at BEFORE UPDATE ON catalog.product_reviews
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER product_images_set_updated_at BEFORE UPDATE ON catalog.product_images
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

-- No category cycles: the new parent may not be the category or one of its
-- descendants. A new category has no descendants, so only moves are checked.
CREATE FUNCTION catalog.check_category_parent() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, catalog, pg_temp
AS $$
BEGIN
    -- Being one's own parent is the CHECK categories_not_own_parent's to report.
    IF NEW.parent_id IS NULL OR NEW.parent_id = NEW.id THEN
        RETURN NEW;
    END IF;
    -- Moves take turns per tenant; a REPEATABLE READ or SERIALIZABLE transaction that
    -- raced another gets 40001 here instead of deciding on an old snapshot.
    INSERT INTO catalog.category_tree_guards AS g (organization_id, moves)
    VALUES (NEW.organization_id, 1)
    ON CONFLICT (organization_id) DO UPDATE SET moves = g.moves + 1;
    IF EXISTS (
        WITH RECURSIVE ancestors(id) AS (
            SELECT NEW.parent_id
            UNION
            SELECT c.parent_id FROM catalog.categories c JOIN ancestors a ON c.id = a.id
            WHERE c.organization_id = NEW.organization_id AND c.parent_id IS NOT NULL
        )
        SELECT FROM ancestors WHERE id = NEW.id) THEN
        RAISE EXCEPTION 'category % cannot move under category %: that would make a cycle',
            NEW.id, NEW.parent_id USING ERRCODE = 'WC001';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER categories_check_parent BEFORE UPDATE OF parent_id ON catalog.categories
    FOR EACH ROW EXECUTE FUNCTION catalog.check_category_parent();

-- The primary image: the first image of a product becomes primary, a new primary
-- demotes the old one, and the primary is not unset directly.
CREATE FUNCTION catalog.keep_primary_image() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, catalog, pg_temp
AS $$
BEGIN
    -- The demotion below, issued by this function.
    IF pg_trigger_depth() > 1 THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.product_id IS DISTINCT FROM OLD.product_id THEN
        RAISE EXCEPTION 'an image cannot move to another product' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.is_primary AND NOT NEW.is_primary THEN
        RAISE EXCEPTION 'image % is the primary image of product %: make another image primary instead',
            OLD.id, OLD.product_id USING ERRCODE = 'WC002';
    END IF;
    -- An image whose id is taken is not inserted (a unique violation, or skipped by ON
    -- CONFLICT): it demotes nothing.
    IF TG_OP = 'INSERT' AND EXISTS (SELECT FROM catalog.product_images i
                                    WHERE i.organization_id = NEW.organization_id
                                      AND i.id = NEW.id) THEN
        RETURN NEW;
    END IF;
    IF NEW.is_primary AND (TG_OP = 'INSERT' OR NOT OLD.is_primary) THEN
        UPDATE catalog.product_images i SET is_primary = false
        WHERE i.organization_id = NEW.organization_id AND i.product_id = NEW.product_id
          AND i.is_primary AND i.id <> NEW.id;
    ELSIF TG_OP = 'INSERT' AND NOT EXISTS (
        SELECT FROM catalog.product_images i
        WHERE i.organization_id = NEW.organization_id AND i.product_id = NEW.product_id
          AND i.is_primary) THEN
        NEW.is_primary := true;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER product_images_keep_primary BEFORE INSERT OR UPDATE OF is_primary, product_id
    ON catalog.product_images
    FOR EACH ROW EXECUTE FUNCTION catalog.keep_primary_image();

-- Deleting the primary image promotes the next one by position.
CREATE FUNCTION catalog.promote_next_image() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, catalog, pg_temp
AS $$
BEGIN
    IF OLD.is_primary THEN
        UPDATE catalog.product_images i SET is_primary = true
        WHERE i.organization_id = OLD.organization_id
          AND i.id = (SELECT n.id FROM catalog.product_images n
                      WHERE n.organization_id = OLD.organization_id AND n.product_id = OLD.product_id
                      ORDER BY n.position, n.id
                      LIMIT 1);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER product_images_promote_next AFTER DELETE ON catalog.product_images
    FOR EACH ROW EXECUTE FUNCTION catalog.promote_next_image();

-- Row-level security: the tenant.
ALTER TABLE catalog.categories ENABLE ROW LEVEL SECURITY;
CREATE POLICY categories_tenant ON catalog.categories
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

ALTER TABLE catalog.category_tree_guards ENABLE ROW LEVEL SECURITY;
CREATE POLICY category_tree_guards_tenant ON catalog.category_tree_guards
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

ALTER TABLE catalog.products ENABLE ROW LEVEL SECURITY;
CREATE POLICY products_tenant ON catalog.products
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

ALTER TABLE catalog.product_reviews ENABLE ROW LEVEL SECURITY;
CREATE POLICY product_reviews_tenant ON catalog.product_reviews
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

ALTER TABLE catalog.product_images ENABLE ROW LEVEL SECURITY;
CREATE POLICY product_images_tenant ON catalog.product_images
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

SELECT public.groundwork_set_owner('catalog', 'groundwork_owner');

GRANT USAGE ON SCHEMA catalog TO groundwork_app, groundwork_readonly;
GRANT SELECT ON catalog.categories, catalog.products, catalog.product_reviews,
    catalog.product_images
    TO groundwork_app, groundwork_readonly;
GRANT INSERT (id, parent_id, name, slug, description, position, active),
      UPDATE (parent_id, name, slug, description, position, active),
      DELETE
    ON catalog.categories TO groundwork_app;
GRANT INSERT (id, category_id, sku, name, description, price, currency, tags, metadata, active),
      UPDATE (category_id, sku, name, description, price, currency, tags, metadata, active),
      DELETE
    ON catalog.products TO groundwork_app;
-- The reviewer is the current user; verified_purchase is the database's.
GRANT INSERT (id, product_id, rating, title, body),
      UPDATE (rating, title, body, status),
      DELETE
    ON catalog.product_reviews TO groundwork_app;
GRANT INSERT (id, product_id, url, alt_text, position, is_primary),
      UPDATE (url, alt_text, position, is_primary),
      DELETE
    ON catalog.product_images TO groundwork_app;

REVOKE ALL ON FUNCTION catalog.check_category_parent(), catalog.keep_primary_image(),
    catalog.promote_next_image()
    FROM PUBLIC;
