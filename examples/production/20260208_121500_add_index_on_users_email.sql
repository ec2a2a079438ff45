-- MIGRATION: add_index_on_users_email
-- Lower-case email lookups (login is case-insensitive).
-- Production-safe form: CONCURRENTLY builds the index without blocking writes, which PostgreSQL only allows
-- outside a transaction, hence TRANSACTION: none. IF [NOT] EXISTS makes a rerun after a failure safe; if a
-- concurrent build failed, drop the INVALID index it leaves (the down section does) before re-applying.
-- TRANSACTION: none
-- DIRECTION: up
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_users_email_lower ON users (lower(email));

-- DIRECTION: down
DROP INDEX CONCURRENTLY IF EXISTS idx_users_email_lower;
