-- Dollar quotes, semicolons inside the body, and a comment that says DROP TABLE users; none of it is a statement.
-- DIRECTION: up
CREATE OR REPLACE FUNCTION touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();  -- DROP TABLE users;
    RETURN NEW;
END;
$$;
CREATE TRIGGER orders_touch_updated_at BEFORE UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
COMMENT ON TABLE orders IS 'Customer orders; DELETE FROM orders is never allowed';

-- DIRECTION: down
DROP TRIGGER orders_touch_updated_at ON orders;
DROP FUNCTION touch_updated_at();
