-- quiet: adding-exclusion-constraint ban-drop-not-null require-concurrent-index-creation constraint-missing-not-valid adding-not-nullable-field renaming-column disallowed-unique-constraint adding-foreign-key-constraint prefer-bigint-over-int prefer-identity prefer-text-field prefer-timestamptz ban-char-field
-- A table created in this file is new: nothing reads or writes it yet.
CREATE TABLE invoices (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts (id),
    number text NOT NULL,
    memo text,
    issued_at timestamptz NOT NULL DEFAULT now(),
    valid_during tstzrange
);
CREATE INDEX invoices_account_idx ON invoices (account_id);
ALTER TABLE invoices ADD CONSTRAINT invoices_number_key UNIQUE (number);
ALTER TABLE invoices ADD CONSTRAINT invoices_number_check CHECK (number <> '');
ALTER TABLE invoices ALTER COLUMN memo SET NOT NULL;
ALTER TABLE invoices RENAME COLUMN memo TO note;
ALTER TABLE invoices ALTER COLUMN number DROP NOT NULL;
ALTER TABLE invoices ADD CONSTRAINT invoices_no_overlap EXCLUDE USING gist (valid_during WITH &&);
