-- DIRECTION: up
CREATE TYPE order_status AS ENUM ('new', 'paid', 'shipped');
ALTER TABLE orders ALTER COLUMN status DROP DEFAULT;
ALTER TABLE orders ALTER COLUMN status TYPE order_status USING status::order_status;
ALTER TABLE orders ALTER COLUMN status SET DEFAULT 'new';

-- DIRECTION: down
ALTER TABLE orders ALTER COLUMN status TYPE TEXT USING status::text;
DROP TYPE order_status;
