--: Document(change_summary?, published_at?)

--- Writes version 1 with it.
--! document_create (change_summary?) : Document
INSERT INTO projects.documents (project_id, title, content, content_type, change_summary, tags, metadata)
VALUES (:project_id, :title, :content, :content_type, :change_summary, :tags, :metadata)
RETURNING id, organization_id, project_id, title, content, content_type, author_id, version,
          change_summary, status, tags, metadata, created_at, updated_at, published_at;

--! document_get : Document
SELECT id, organization_id, project_id, title, content, content_type, author_id, version,
       change_summary, status, tags, metadata, created_at, updated_at, published_at
FROM projects.documents
WHERE organization_id = identity.current_org_id() AND id = :id;

--- New content is the next version: the database bumps version and writes the
--- version row in the same statement; concurrent edits take turns, so versions have no
--- gaps or duplicates.
--! document_edit (change_summary?) : Document
UPDATE projects.documents SET content = :content, change_summary = :change_summary
WHERE organization_id = identity.current_org_id() AND id = :id
RETURNING id, organization_id, project_id, title, content, content_type, author_id, version,
          change_summary, status, tags, metadata, created_at, updated_at, published_at;

--- Publishing stamps published_at.
--! document_set_status : Document
UPDATE projects.documents SET status = :status
WHERE organization_id = identity.current_org_id() AND id = :id
RETURNING id, organization_id, project_id, title, content, content_type, author_id, version,
          change_summary, status, tags, metadata, created_at, updated_at, published_at;

--- A project's documents with their latest version's number, author and time. Keyset
--- pagination by id.
--! document_list_with_latest_version (after_id?) : (published_at?)
SELECT d.id, d.title, d.status, d.version, v.author_id AS version_author_id,
       v.created_at AS version_created_at, d.published_at
FROM projects.documents d
JOIN projects.document_versions v
  ON v.organization_id = d.organization_id AND v.document_id = d.id AND v.version_number = d.version
WHERE d.organization_id = identity.current_org_id() AND d.project_id = :project_id AND (:after_id::uuid IS NULL OR d.id > :after_id)
ORDER BY d.id
LIMIT :limit;

--! document_delete
DELETE FROM projects.documents WHERE organization_id = identity.current_org_id() AND id = :id;
