-- expect: prefer-text-field
CREATE TABLE labels (id bigint PRIMARY KEY, name varchar(40) NOT NULL);
