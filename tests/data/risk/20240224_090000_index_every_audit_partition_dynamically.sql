-- DIRECTION: up
-- Statements built at run time cannot be judged: reported, not trusted.
DO $$
DECLARE
    part record;
BEGIN
    FOR part IN SELECT relname FROM pg_class WHERE relname LIKE 'audit_log_%' LOOP
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (created_at)', part.relname || '_at_idx', part.relname);
    END LOOP;
END
$$;

-- DIRECTION: down
SELECT 1;
