-- ops.retention_policies: how long finished and expired rows are kept, applied by
-- ops.apply_retention() (migrations/20261206400000_ops.up.sql).
--
-- CREATE TABLE ops.retention_policies (
--     name text PRIMARY KEY,     -- finished_jobs, delivered_outbox_messages, ...
--     description text NOT NULL,
--     keep interval NOT NULL,    -- after a row finished or expired
--     batch_size integer NOT NULL,
--     enabled boolean NOT NULL DEFAULT true);

--- Retention across tenants (a member of groundwork_worker, or the owner): deletes one
--- batch per enabled policy, skipping rows other transactions lock, and returns how
--- many rows each deleted; call again while a policy deleted a full batch.
--! retention_apply
SELECT policy, deleted, batch FROM ops.apply_retention();

