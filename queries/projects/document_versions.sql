--: DocumentVersion(change_summary?)

--- Newest first. Versions are written by the database only.
--! document_version_list : DocumentVersion
SELECT id, organization_id, project_id, document_id, version_number, content, change_summary,
       author_id, created_at
FROM projects.document_versions
WHERE organization_id = identity.current_org_id() AND document_id = :document_id
ORDER BY version_number DESC
LIMIT :limit;

--! document_version_get : DocumentVersion
SELECT id, organization_id, project_id, document_id, version_number, content, change_summary,
       author_id, created_at
FROM projects.document_versions
WHERE organization_id = identity.current_org_id() AND document_id = :document_id
  AND version_number = :version_number;
