-- expect: table-rewrite
DO $$
BEGIN
    EXECUTE 'ALTER TABLE accounts ALTER COLUMN balance TYPE numeric';
END
$$;
