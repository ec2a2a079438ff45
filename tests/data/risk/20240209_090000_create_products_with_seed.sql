-- A new table has no rows and no traffic yet: indexes, constraints and backfills on it are safe.
-- DIRECTION: up
CREATE TABLE products (
    id BIGSERIAL,
    sku TEXT NOT NULL,
    name TEXT NOT NULL,
    price_cents INTEGER NOT NULL
);
ALTER TABLE products ADD PRIMARY KEY (id);
ALTER TABLE products ADD CONSTRAINT products_price_positive CHECK (price_cents > 0);
CREATE UNIQUE INDEX products_sku_idx ON products (sku);
INSERT INTO products (sku, name, price_cents) VALUES ('TSHIRT', 'T-shirt', 1500), ('MUG', 'Mug', 900);
UPDATE products SET name = initcap(name);
ALTER TABLE products ADD COLUMN uuid UUID NOT NULL DEFAULT gen_random_uuid();

-- DIRECTION: down
DROP TABLE products;
