-- MIGRATION: add_user_status_column
-- DIRECTION: up
ALTER TABLE users ADD COLUMN status TEXT NOT NULL DEFAULT 'active';

-- DIRECTION: down
ALTER TABLE users DROP COLUMN status;
