-- DIRECTION: up
-- A DO block runs its statements like any other: this one rewrites orders under an ACCESS EXCLUSIVE lock.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_name = 'orders' AND column_name = 'total_cents' AND data_type = 'integer') THEN
        ALTER TABLE orders ALTER COLUMN total_cents TYPE BIGINT;
    END IF;
END
$$;

-- DIRECTION: down
SELECT 1;
