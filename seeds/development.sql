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
