-- expect: prefer-identity prefer-bigint-over-int
CREATE TABLE notes (id serial PRIMARY KEY, body text);
