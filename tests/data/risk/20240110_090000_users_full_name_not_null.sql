-- DIRECTION: up
UPDATE users SET full_name = '' WHERE full_name IS NULL;
ALTER TABLE users ALTER COLUMN full_name SET NOT NULL;

-- DIRECTION: down
ALTER TABLE users ALTER COLUMN full_name DROP NOT NULL;
