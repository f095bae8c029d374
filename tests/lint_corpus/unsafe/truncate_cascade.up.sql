-- expect: ban-truncate-cascade
TRUNCATE accounts CASCADE;
