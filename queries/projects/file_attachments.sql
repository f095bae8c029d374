--: FileAttachment(task_id?, document_id?)

--- The entity (the project itself, or one of its tasks or documents) must be in the
--- project; the attachment goes when it goes.
--! file_attachment_create : FileAttachment
INSERT INTO projects.file_attachments (project_id, entity_type, entity_id, filename, original_filename,
                                       file_size, mime_type, storage_path, metadata)
VALUES (:project_id, :entity_type, :entity_id, :filename, :original_filename, :file_size,
        :mime_type, :storage_path, :metadata)
RETURNING id, organization_id, project_id, entity_type, entity_id, task_id, document_id, filename,
          original_filename, file_size, mime_type, storage_path, uploader_id, metadata, created_at;

--! file_attachment_list_by_entity : FileAttachment
SELECT id, organization_id, project_id, entity_type, entity_id, task_id, document_id, filename,
       original_filename, file_size, mime_type, storage_path, uploader_id, metadata, created_at
FROM projects.file_attachments
WHERE organization_id = identity.current_org_id() AND project_id = :project_id
  AND entity_type = :entity_type AND entity_id = :entity_id
ORDER BY created_at, id;

--! file_attachment_delete
DELETE FROM projects.file_attachments WHERE organization_id = identity.current_org_id() AND id = :id;
