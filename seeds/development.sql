-- Development seed data: an organization "Acme (development)" with its owner
-- (dev@acme.test), a published "Service request" form (the shared fixture's schema,
-- with UI hints) and submissions in every status, written the way the application
-- writes them: validated, with their events. Loaded by `groundwork db seed`; does
-- nothing when the organization exists.

DO $seed$
DECLARE
    org uuid := '00000000-0000-4000-8000-00000000ac01';
    owner uuid := '00000000-0000-4000-8000-00000000ac02';
    form uuid;
    item jsonb;
    n integer := 0;
    submission uuid;
BEGIN
    IF EXISTS (SELECT FROM identity.organizations WHERE id = org) THEN
        RAISE NOTICE 'development seed data already loaded';
        RETURN;
    END IF;
    INSERT INTO identity.users (id, email, username, first_name, last_name, email_verified)
    VALUES (owner, 'dev@acme.test', 'acme-dev', 'Ada', 'Developer', true);
    INSERT INTO identity.organizations (id, name, slug)
    VALUES (org, 'Acme (development)', 'acme-development');
    INSERT INTO identity.organization_members (organization_id, user_id, role, status)
    VALUES (org, owner, 'owner', 'active');
    PERFORM set_config('app.current_org_id', org::text, true);
    PERFORM set_config('app.current_user_id', owner::text, true);

    INSERT INTO forms.form_definitions (name, definition)
    VALUES ('Service request', $definition${
 "schema": {
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "Service request",
  "type": "object",
  "required": [
   "title",
   "priority",
   "requester",
   "category",
   "items"
  ],
  "additionalProperties": false,
  "properties": {
   "title": {
    "type": "string",
    "minLength": 3,
    "maxLength": 120
   },
   "priority": {
    "type": "integer",
    "minimum": 1,
    "maximum": 5
   },
   "category": {
    "enum": [
     "hardware",
     "software",
     "access",
     "facilities",
     "other"
    ]
   },
   "description": {
    "type": "string",
    "maxLength": 4000
   },
   "due_date": {
    "type": "string",
    "format": "date"
   },
   "budget": {
    "type": "number",
    "exclusiveMinimum": 0,
    "multipleOf": 0.01
   },
   "urgent": {
    "type": "boolean"
   },
   "tags": {
    "type": "array",
    "items": {
     "type": "string",
     "pattern": "^[a-z0-9-]{1,32}$"
    },
    "uniqueItems": true,
    "maxItems": 10
   },
   "requester": {
    "type": "object",
    "required": [
     "name",
     "email"
    ],
    "additionalProperties": false,
    "properties": {
     "name": {
      "type": "string",
      "minLength": 1,
      "maxLength": 100
     },
     "email": {
      "type": "string",
      "format": "email",
      "pattern": "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$"
     },
     "phone": {
      "type": "string",
      "pattern": "^\\+[1-9][0-9]{6,14}$"
     },
     "department": {
      "type": "string"
     }
    }
   },
   "address": {
    "$ref": "#/$defs/address"
   },
   "items": {
    "type": "array",
    "minItems": 1,
    "maxItems": 20,
    "items": {
     "$ref": "#/$defs/line_item"
    }
   },
   "approver": {
    "type": [
     "string",
     "null"
    ],
    "format": "uuid"
   },
   "contact_preference": {
    "oneOf": [
     {
      "const": "email"
     },
     {
      "const": "phone"
     },
     {
      "const": "none"
     }
    ]
   },
   "notes": {
    "type": "array",
    "items": {
     "type": "string",
     "maxLength": 500
    }
   },
   "attachments": {
    "type": "array",
    "items": {
     "type": "object",
     "required": [
      "name",
      "size"
     ],
     "properties": {
      "name": {
       "type": "string"
      },
      "size": {
       "type": "integer",
       "minimum": 1,
       "maximum": 10485760
      }
     }
    }
   },
   "shipping": {
    "type": "object",
    "properties": {
     "method": {
      "enum": [
       "standard",
       "express"
      ]
     },
     "cost": {
      "type": "number",
      "minimum": 0
     }
    },
    "if": {
     "properties": {
      "method": {
       "const": "express"
      }
     }
    },
    "then": {
     "required": [
      "cost"
     ]
    }
   }
  },
  "$defs": {
   "address": {
    "type": "object",
    "required": [
     "street",
     "city",
     "country"
    ],
    "properties": {
     "street": {
      "type": "string"
     },
     "city": {
      "type": "string"
     },
     "postcode": {
      "type": "string",
      "maxLength": 12
     },
     "country": {
      "type": "string",
      "pattern": "^[A-Z]{2}$"
     }
    }
   },
   "line_item": {
    "type": "object",
    "required": [
     "sku",
     "quantity"
    ],
    "additionalProperties": false,
    "properties": {
     "sku": {
      "type": "string",
      "pattern": "^[A-Z0-9-]{3,20}$"
     },
     "quantity": {
      "type": "integer",
      "minimum": 1,
      "maximum": 1000
     },
     "unit_price": {
      "type": "number",
      "minimum": 0
     },
     "note": {
      "type": "string",
      "maxLength": 200
     }
    }
   }
  }
 },
 "ui": {
  "order": [
   "title",
   "category",
   "priority",
   "requester",
   "items",
   "due_date",
   "description"
  ],
  "widgets": {
   "description": "textarea",
   "due_date": "date"
  }
 }
}$definition$)
    RETURNING id INTO form;
    PERFORM forms.form_definition_publish(form);

    -- Twelve requests: the shared fixture's valid submission with its own title,
    -- category, priority and number of line items.
    FOR item IN
        SELECT jsonb_set(jsonb_set(jsonb_set(jsonb_set(
                   CASE WHEN r.n % 3 = 1 THEN base.doc - 'shipping' ELSE base.doc END,
                   '{title}', to_jsonb(r.title)),
                   '{category}', to_jsonb(r.category)),
                   '{priority}', to_jsonb(1 + (r.n - 1) * 3 % 5)),
                   '{items}', (SELECT jsonb_agg(i.value ORDER BY i.n)
                               FROM jsonb_array_elements(base.doc -> 'items') WITH ORDINALITY i(value, n)
                               WHERE i.n <= 1 + (r.n - 1) % 5))
        FROM (VALUES
            (1, 'Replace broken laptop screen', 'hardware'),
            (2, 'New starter: laptop and accounts', 'hardware'),
            (3, 'VPN access for contractor', 'access'),
            (4, 'Second monitor for design team', 'hardware'),
            (5, 'Fix leaking tap in kitchen', 'facilities'),
            (6, 'Renew design software licences', 'software'),
            (7, 'Badge access to lab 3', 'access'),
            (8, 'Printer on floor 2 jams', 'hardware'),
            (9, 'Upgrade meeting-room display', 'facilities'),
            (10, 'Ergonomic chair request', 'other'),
            (11, 'Reset MFA for field engineer', 'access'),
            (12, 'Move desk to north wing', 'facilities')
        ) AS r(n, title, category),
        (SELECT $submission${
         "title": "Replace broken laptop screen",
         "priority": 2,
         "category": "hardware",
         "description": "The screen flickers and has a dead column of pixels since Monday.",
         "due_date": "2026-12-01",
         "budget": 349.99,
         "urgent": false,
         "tags": [
          "laptop",
          "screen",
          "warranty"
         ],
         "requester": {
          "name": "Ada Lovelace",
          "email": "ada@example.com",
          "phone": "+441234567890",
          "department": "Research"
         },
         "address": {
          "street": "12 Analytical Row",
          "city": "London",
          "postcode": "N1 9GU",
          "country": "GB"
         },
         "items": [
          {
           "sku": "SCR-1440",
           "quantity": 1,
           "unit_price": 299.0
          },
          {
           "sku": "TOOL-KIT",
           "quantity": 1,
           "unit_price": 25.5
          },
          {
           "sku": "ADH-STRIP",
           "quantity": 4,
           "unit_price": 2.0
          },
          {
           "sku": "SHIP-EXP",
           "quantity": 1,
           "unit_price": 15.0
          },
          {
           "sku": "WRNTY-EXT",
           "quantity": 1,
           "unit_price": 0,
           "note": "extended cover"
          }
         ],
         "approver": "6f1c2a8e-3b4d-4c5e-8f90-1a2b3c4d5e6f",
         "contact_preference": "email",
         "notes": [
          "call before 5pm"
         ],
         "attachments": [
          {
           "name": "photo.jpg",
           "size": 204800
          }
         ],
         "shipping": {
          "method": "express",
          "cost": 15.0
         }
        }$submission$::jsonb AS doc) AS base
        ORDER BY r.n
    LOOP
        n := n + 1;
        INSERT INTO forms.form_submissions (form_definition_id, data, status)
        VALUES (form, item, CASE WHEN n % 4 = 0 THEN 'draft' ELSE 'submitted' END)
        RETURNING id INTO submission;
        IF n % 4 = 1 THEN
            UPDATE forms.form_submissions SET status = 'approved' WHERE id = submission;
        ELSIF n % 4 = 2 THEN
            UPDATE forms.form_submissions SET status = 'rejected' WHERE id = submission;
        ELSIF n = 12 THEN
            UPDATE forms.form_submissions SET status = 'withdrawn' WHERE id = submission;
        END IF;
    END LOOP;
    RAISE NOTICE 'loaded organization %, user %, form % with % submissions', org, owner, form, n;
END
$seed$;

-- The catalog and its stock: a category tree (8 departments of 4 categories), 5
-- suppliers and 10,000 products whose names and descriptions come from a shop's
-- vocabulary (so that search has something to rank), 9 in 10 of them with stock,
-- received through the ledger, and reorder points. Skipped when the organization has
-- products already.
DO $catalog$
DECLARE
    org uuid := '00000000-0000-4000-8000-00000000ac01';
    owner uuid := '00000000-0000-4000-8000-00000000ac02';
BEGIN
    IF EXISTS (SELECT FROM catalog.products WHERE organization_id = org) THEN
        RAISE NOTICE 'development catalog already loaded';
        RETURN;
    END IF;
    PERFORM set_config('app.current_org_id', org::text, true);
    PERFORM set_config('app.current_user_id', owner::text, true);
    PERFORM setseed(0.2026);

    INSERT INTO catalog.categories (name, slug, position)
    SELECT d.name, lower(d.name), d.ord
    FROM unnest(ARRAY['Audio', 'Computers', 'Home', 'Kitchen', 'Outdoor', 'Clothing', 'Office', 'Sport'])
         WITH ORDINALITY AS d(name, ord);
    INSERT INTO catalog.categories (parent_id, name, slug, position)
    SELECT parent.id, parent.name || ' ' || sub.name, parent.slug || '-' || lower(sub.name), sub.ord
    FROM catalog.categories parent,
         unnest(ARRAY['Essentials', 'Premium', 'Accessories', 'Clearance']) WITH ORDINALITY AS sub(name, ord)
    WHERE parent.organization_id = org AND parent.parent_id IS NULL;

    INSERT INTO inventory.suppliers (name, email, lead_time_days)
    SELECT s.name, lower(replace(s.name, ' ', '.')) || '@suppliers.test', s.days
    FROM (VALUES ('Nordic Goods', 5), ('Pacific Trading', 21), ('Alpine Works', 10),
                 ('Harbor Supply', 7), ('Sunrise Manufacturing', 30)) AS s(name, days);

    CREATE TEMP TABLE seed_words ON COMMIT DROP AS SELECT
        ARRAY['wireless', 'compact', 'premium', 'classic', 'ergonomic', 'portable', 'vintage',
              'smart', 'heavy-duty', 'lightweight', 'organic', 'waterproof', 'handmade', 'modern',
              'rustic', 'foldable', 'adjustable', 'insulated', 'rechargeable', 'minimalist'] AS adjectives,
        ARRAY['oak', 'walnut', 'steel', 'aluminium', 'leather', 'cotton', 'wool', 'glass', 'copper',
              'linen', 'silicone', 'bamboo'] AS materials,
        ARRAY['headphones', 'desk', 'chair', 'lamp', 'backpack', 'kettle', 'blender', 'speaker',
              'keyboard', 'mouse', 'monitor', 'jacket', 'boots', 'tent', 'bicycle', 'helmet',
              'watch', 'wallet', 'mug', 'teapot', 'knife', 'pan', 'pillow', 'blanket', 'rug'] AS nouns,
        ARRAY['for everyday use', 'built to last', 'with a two-year warranty',
              'designed in Copenhagen', 'for travel and the office', 'easy to clean',
              'for small apartments', 'with fast charging', 'for outdoor adventures',
              'a bestseller this season', 'with noise cancelling', 'made from recycled materials'] AS phrases,
        ARRAY['home', 'office', 'outdoor', 'kitchen', 'audio', 'travel', 'sport', 'gift', 'sale',
              'new', 'eco', 'kids'] AS tags;

    INSERT INTO catalog.products (category_id, sku, name, description, price, tags, metadata, active)
    SELECT c.id,
           'ACME-' || lpad(k.g::text, 5, '0'),
           initcap(w.adjectives[k.a] || ' ' || w.materials[k.m] || ' ' || w.nouns[k.n]),
           'A ' || w.adjectives[k.a] || ' ' || w.nouns[k.n] || ' in ' || w.materials[k.m] || ', '
               || w.phrases[k.p1] || '. ' || initcap(w.phrases[k.p2]) || '.',
           k.price,
           ARRAY[w.tags[k.t1], w.tags[k.t2]],
           jsonb_build_object('weight_g', 100 + k.g % 4900, 'origin', (ARRAY['DK', 'DE', 'PT', 'JP', 'US'])[1 + k.g % 5]),
           k.g % 50 <> 0
    FROM (SELECT g, 1 + floor(random() * 20)::int AS a, 1 + floor(random() * 12)::int AS m,
                 1 + floor(random() * 25)::int AS n, 1 + floor(random() * 12)::int AS p1,
                 1 + floor(random() * 12)::int AS p2, 1 + floor(random() * 12)::int AS t1,
                 1 + floor(random() * 12)::int AS t2, round((5 + random() * 495)::numeric, 2) AS price,
                 floor(random() * 32)::int AS cat
          FROM generate_series(1, 10000) g) k
    CROSS JOIN seed_words w
    JOIN (SELECT id, row_number() OVER (ORDER BY slug) - 1 AS n FROM catalog.categories
          WHERE organization_id = org AND parent_id IS NOT NULL) c ON c.n = k.cat;

    -- Stock arrives through the ledger, as the application receives it.
    PERFORM inventory.receive_stock(p.id, 1 + (abs(hashtext(p.sku)) % 200))
    FROM catalog.products p
    WHERE p.organization_id = org AND abs(hashtext(p.sku)) % 10 <> 0;
    UPDATE inventory.stock_levels s
    SET reorder_point = 10, reorder_quantity = 50,
        supplier_id = (SELECT id FROM inventory.suppliers
                       WHERE organization_id = org ORDER BY name
                       OFFSET abs(hashtext(s.product_id::text)) % 5 LIMIT 1),
        unit_cost = round(p.price * 0.6, 2)
    FROM catalog.products p
    WHERE s.organization_id = org AND p.organization_id = org AND p.id = s.product_id;
    RAISE NOTICE 'loaded the catalog: % categories, % products, % with stock',
        (SELECT count(*) FROM catalog.categories WHERE organization_id = org),
        (SELECT count(*) FROM catalog.products WHERE organization_id = org),
        (SELECT count(*) FROM inventory.stock_levels WHERE organization_id = org);
END
$catalog$;
