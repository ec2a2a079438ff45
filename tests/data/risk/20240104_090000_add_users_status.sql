-- Constant defaults are metadata-only since PostgreSQL 11.
-- DIRECTION: up
ALTER TABLE users ADD COLUMN status TEXT NOT NULL DEFAULT 'active';

-- DIRECTION: down
ALTER TABLE users DROP COLUMN status;
