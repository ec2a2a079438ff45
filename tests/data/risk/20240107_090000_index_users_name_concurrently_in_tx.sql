-- Forgot the TRANSACTION header: PostgreSQL refuses CONCURRENTLY inside a transaction block.
-- DIRECTION: up
CREATE INDEX CONCURRENTLY users_full_name_idx ON users (full_name);

-- DIRECTION: down
DROP INDEX CONCURRENTLY users_full_name_idx;
