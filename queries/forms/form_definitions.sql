--: FormDefinition(created_by?, published_at?, archived_at?)

--- Archives a draft or the active version (then no version of the name is active).
--! form_definition_archive : FormDefinition
UPDATE forms.form_definitions SET status = 'archived'
WHERE organization_id = identity.current_org_id() AND id = :id
RETURNING id, organization_id, name, version, definition, status, assert_formats, created_by,
          revision, created_at, updated_at, published_at, archived_at;

--- A draft, numbered one above the name's highest version (1 for a new name); two
--- concurrent creates of one name conflict on (organization_id, name, version).
--! form_definition_create : FormDefinition
INSERT INTO forms.form_definitions (name, version, definition, assert_formats)
SELECT :name, coalesce(max(d.version), 0) + 1, :definition, :assert_formats
FROM forms.form_definitions d
WHERE d.organization_id = identity.current_org_id() AND d.name = :name
RETURNING id, organization_id, name, version, definition, status, assert_formats, created_by,
          revision, created_at, updated_at, published_at, archived_at;

--! form_definition_get : FormDefinition
SELECT id, organization_id, name, version, definition, status, assert_formats, created_by,
       revision, created_at, updated_at, published_at, archived_at
FROM forms.form_definitions
WHERE organization_id = identity.current_org_id() AND id = :id;

--! form_definition_get_active : FormDefinition
SELECT id, organization_id, name, version, definition, status, assert_formats, created_by,
       revision, created_at, updated_at, published_at, archived_at
FROM forms.form_definitions
WHERE organization_id = identity.current_org_id() AND name = :name AND status = 'active';

--- Keyset pagination by (name, version).
--! form_definition_list (status?, after_name?, after_version?) : FormDefinition
SELECT id, organization_id, name, version, definition, status, assert_formats, created_by,
       revision, created_at, updated_at, published_at, archived_at
FROM forms.form_definitions
WHERE organization_id = identity.current_org_id()
  AND (:status::text IS NULL OR status = :status)
  AND (:after_name::text IS NULL OR (name, version) > (:after_name, coalesce(:after_version::integer, 0)))
ORDER BY name, version
LIMIT :limit;

--- A draft copy of a definition as the name's next version.
--! form_definition_new_version : FormDefinition
INSERT INTO forms.form_definitions (name, version, definition, assert_formats)
SELECT d.name,
       (SELECT max(v.version) + 1 FROM forms.form_definitions v
        WHERE v.organization_id = d.organization_id AND v.name = d.name),
       d.definition, d.assert_formats
FROM forms.form_definitions d
WHERE d.organization_id = identity.current_org_id() AND d.id = :id
RETURNING id, organization_id, name, version, definition, status, assert_formats, created_by,
          revision, created_at, updated_at, published_at, archived_at;

--- Draft -> active, archiving the name's active version in the same transaction;
--- publishes of one name lock its versions and take turns.
--! form_definition_publish : FormDefinition
SELECT id, organization_id, name, version, definition, status, assert_formats, created_by,
       revision, created_at, updated_at, published_at, archived_at
FROM forms.form_definition_publish(:id);

--- Drafts only; the new schema is checked.
--! form_definition_update : FormDefinition
UPDATE forms.form_definitions SET definition = :definition, assert_formats = :assert_formats
WHERE organization_id = identity.current_org_id() AND id = :id
RETURNING id, organization_id, name, version, definition, status, assert_formats, created_by,
          revision, created_at, updated_at, published_at, archived_at;

--- Every error the data would have as a submission to this definition; writes nothing.
--! form_definition_validate
SELECT forms.json_schema_errors(d.definition -> 'schema', :data, d.assert_formats) AS errors
FROM forms.form_definitions d
WHERE d.organization_id = identity.current_org_id() AND d.id = :id;
