-- expect: prefer-bigint-over-smallint
CREATE TABLE kinds (id smallint PRIMARY KEY, name text NOT NULL);
