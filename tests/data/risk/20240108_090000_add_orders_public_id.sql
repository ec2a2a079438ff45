-- DIRECTION: up
ALTER TABLE orders ADD COLUMN public_id UUID NOT NULL DEFAULT gen_random_uuid();

-- DIRECTION: down
ALTER TABLE orders DROP COLUMN public_id;
