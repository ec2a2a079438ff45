-- TRANSACTION: none
-- DIRECTION: up
REINDEX INDEX CONCURRENTLY orders_placed_at_idx;
ANALYZE orders;
