BEGIN;
ALTER TABLE users ADD COLUMN name text;
UPDATE users SET name = split_part(email, '@', 1) WHERE name IS NULL;
COMMIT;
