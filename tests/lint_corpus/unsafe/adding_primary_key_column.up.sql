-- expect: adding-serial-primary-key-field adding-field-with-default prefer-identity table-rewrite
ALTER TABLE events_log ADD COLUMN seq bigserial PRIMARY KEY;
