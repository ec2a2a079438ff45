-- DIRECTION: up
UPDATE orders SET updated_at = placed_at WHERE id BETWEEN 1 AND 10000 AND updated_at IS NULL;

-- DIRECTION: down
SELECT 1;
