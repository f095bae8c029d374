-- expect: statement-failed
DO $$
BEGIN
    EXECUTE 'ALTER TABLE accounts ADD COLUMN plan text NOT NULL';
END
$$;
