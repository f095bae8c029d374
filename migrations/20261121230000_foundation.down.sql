-- Reverts 20261121230000_foundation.up.sql.

DROP TABLE identity.users;
DROP TYPE identity.user_status;
DROP TABLE identity.organizations;
DROP TYPE identity.organization_status;
DROP SCHEMA identity;
DROP FUNCTION public.set_updated_at();
DROP EXTENSION IF EXISTS pgcrypto;
