-- DIRECTION: up
ALTER TABLE orders ADD COLUMN archived BOOLEAN NOT NULL DEFAULT false;
UPDATE orders SET archived = true; -- risk: ignore update_without_where because orders was emptied by 20240206 and is read-only until deploy

-- DIRECTION: down
ALTER TABLE orders DROP COLUMN archived;
