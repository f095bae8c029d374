ALTER TABLE eventstore.events
    ALTER COLUMN type TYPE text,
    ALTER COLUMN metadata TYPE jsonb,
    ALTER COLUMN aggregate_version TYPE integer,
    ADD CONSTRAINT events_type_format
        CHECK (type ~ '^[A-Za-z][A-Za-z0-9_.:-]*$' AND octet_length(type) <= 200),
    ADD CONSTRAINT events_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
    ADD CONSTRAINT events_aggregate_version_positive CHECK (aggregate_version > 0);

DROP DOMAIN eventstore.event_type;
DROP DOMAIN eventstore.json_object;
DROP DOMAIN eventstore.stream_version;
