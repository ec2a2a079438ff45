-- DIRECTION: up
ALTER TABLE users ADD CONSTRAINT users_phone_key UNIQUE USING INDEX users_phone_key_idx;

-- DIRECTION: down
ALTER TABLE users DROP CONSTRAINT users_phone_key;
