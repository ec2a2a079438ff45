-- DIRECTION: up
CREATE INDEX orders_placed_at_idx ON orders (placed_at);

-- DIRECTION: down
DROP INDEX orders_placed_at_idx;
