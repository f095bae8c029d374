--- Sets the tenant context for the rest of the current transaction only (SET LOCAL
--- semantics), so a pooled connection never carries it to its next user. Null
--- clears a setting.
--! tenant_context_set (organization_id?, user_id?) : (organization_id?, user_id?)
SELECT set_config('app.current_org_id', COALESCE(:organization_id::uuid::text, ''), true) AS organization_id,
       set_config('app.current_user_id', COALESCE(:user_id::uuid::text, ''), true) AS user_id;
