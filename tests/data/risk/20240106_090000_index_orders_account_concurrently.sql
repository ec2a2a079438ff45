-- TRANSACTION: none
-- DIRECTION: up
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_account_id_idx ON orders (account_id);

-- DIRECTION: down
DROP INDEX CONCURRENTLY IF EXISTS orders_account_id_idx;
