-- MIGRATION: add_index_on_users_email
-- DIRECTION: up
CREATE INDEX idx_users_email ON users(email);

-- DIRECTION: down
DROP INDEX IF EXISTS idx_users_email;
