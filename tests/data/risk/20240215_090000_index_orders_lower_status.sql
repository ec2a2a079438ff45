-- DIRECTION: up
CREATE INDEX orders_open_idx ON orders (lower(status::text)) WHERE status <> 'shipped';

-- DIRECTION: down
DROP INDEX orders_open_idx;
