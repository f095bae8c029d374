-- The tables every case of the corpus changes. The linter's trace fills them with
-- rows before it runs the case, so each case meets populated tables.
CREATE TABLE accounts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL,
    name text,
    balance bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id bigint NOT NULL,
    total numeric(12, 2) NOT NULL,
    note varchar(50), -- groundwork:lint allow prefer-text-field because the corpus changes its length
    status text NOT NULL DEFAULT 'new'
);

CREATE INDEX orders_status_idx ON orders (status);

CREATE TABLE events_log (
    id bigint NOT NULL,
    body text
);

CREATE TABLE bookings (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    during tstzrange
);

CREATE DOMAIN positive_amount AS numeric CHECK (VALUE >= 0);
