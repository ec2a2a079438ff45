-- MIGRATION: add_index_on_users_email
-- Lower-case email lookups (login is case-insensitive).
-- DIRECTION: up
CREATE INDEX idx_users_email_lower ON users (lower(email));

-- DIRECTION: down
DROP INDEX IF EXISTS idx_users_email_lower;
