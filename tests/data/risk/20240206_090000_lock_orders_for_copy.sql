-- DIRECTION: up
LOCK TABLE orders IN ACCESS EXCLUSIVE MODE;
INSERT INTO orders_archive SELECT * FROM orders WHERE placed_at < '2023-01-01';
DELETE FROM orders WHERE placed_at < '2023-01-01';
