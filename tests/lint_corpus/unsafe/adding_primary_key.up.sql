-- expect: adding-serial-primary-key-field lock-held-while-scanning
ALTER TABLE events_log ADD PRIMARY KEY (id);
