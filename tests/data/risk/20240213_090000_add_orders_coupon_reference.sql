-- DIRECTION: up
ALTER TABLE orders ADD COLUMN coupon_id BIGINT REFERENCES coupons (id);

-- DIRECTION: down
ALTER TABLE orders DROP COLUMN coupon_id;
