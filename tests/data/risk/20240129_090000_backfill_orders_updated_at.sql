-- DIRECTION: up
UPDATE orders SET updated_at = placed_at;

-- DIRECTION: down
SELECT 1;
