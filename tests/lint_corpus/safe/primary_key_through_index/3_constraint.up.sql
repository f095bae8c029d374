-- quiet: adding-serial-primary-key-field
ALTER TABLE events_log ADD CONSTRAINT events_log_pkey PRIMARY KEY USING INDEX events_log_pkey;
