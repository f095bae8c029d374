--: FormSubmission(title?, priority?, submitted_by?, submitted_at?, decided_at?)

--- To the form's active version (the definition given must be it); the data is
--- validated against its schema.
--! form_submission_create : FormSubmission
INSERT INTO forms.form_submissions (form_definition_id, data, status)
VALUES (:form_definition_id, :data, :status)
RETURNING id, organization_id, form_definition_id, form_version, data, status, title, priority,
          submitted_by, revision, created_at, updated_at, submitted_at, decided_at;

--- To the active version of the form named form_name (WF003 when none is active).
--! form_submission_create_by_form_name : FormSubmission
INSERT INTO forms.form_submissions (form_definition_id, data, status)
VALUES (forms.active_definition_id(:form_name), :data, :status)
RETURNING id, organization_id, form_definition_id, form_version, data, status, title, priority,
          submitted_by, revision, created_at, updated_at, submitted_at, decided_at;

--! form_submission_get : FormSubmission
SELECT id, organization_id, form_definition_id, form_version, data, status, title, priority,
       submitted_by, revision, created_at, updated_at, submitted_at, decided_at
FROM forms.form_submissions
WHERE organization_id = identity.current_org_id() AND id = :id;

--- One form's submissions in a status, oldest first; keyset pagination by
--- (created_at, id).
--! form_submission_list_by_form (after_created_at?, after_id?) : FormSubmission
SELECT id, organization_id, form_definition_id, form_version, data, status, title, priority,
       submitted_by, revision, created_at, updated_at, submitted_at, decided_at
FROM forms.form_submissions
WHERE organization_id = identity.current_org_id() AND form_definition_id = :form_definition_id
  AND status = :status
  AND (:after_created_at::timestamptz IS NULL
       OR (created_at, id) > (:after_created_at, coalesce(:after_id::uuid, '00000000-0000-0000-0000-000000000000')))
ORDER BY created_at, id
LIMIT :limit;

--- The tenant's submissions in a status, highest priority first (no priority last);
--- keyset pagination by (priority, id) descending.
--! form_submission_list_by_priority (after_priority?, after_id?) : FormSubmission
SELECT id, organization_id, form_definition_id, form_version, data, status, title, priority,
       submitted_by, revision, created_at, updated_at, submitted_at, decided_at
FROM forms.form_submissions
WHERE organization_id = identity.current_org_id() AND status = :status AND priority IS NOT NULL
  AND (:after_priority::integer IS NULL
       OR (priority, id) < (:after_priority, coalesce(:after_id::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff')))
ORDER BY priority DESC, id DESC
LIMIT :limit;

--- Draft -> submitted.
--! form_submission_submit : FormSubmission
UPDATE forms.form_submissions SET status = 'submitted'
WHERE organization_id = identity.current_org_id() AND id = :id
RETURNING id, organization_id, form_definition_id, form_version, data, status, title, priority,
          submitted_by, revision, created_at, updated_at, submitted_at, decided_at;

--- The database allows draft -> submitted | withdrawn and submitted -> approved |
--- rejected | withdrawn.
--! form_submission_transition : FormSubmission
UPDATE forms.form_submissions SET status = :status
WHERE organization_id = identity.current_org_id() AND id = :id
RETURNING id, organization_id, form_definition_id, form_version, data, status, title, priority,
          submitted_by, revision, created_at, updated_at, submitted_at, decided_at;

--- New data, validated against the submission's form version; not once decided.
--! form_submission_update_data : FormSubmission
UPDATE forms.form_submissions SET data = :data
WHERE organization_id = identity.current_org_id() AND id = :id
RETURNING id, organization_id, form_definition_id, form_version, data, status, title, priority,
          submitted_by, revision, created_at, updated_at, submitted_at, decided_at;
