-- DIRECTION: up
ALTER TABLE accounts ADD COLUMN slug TEXT;
ALTER TABLE accounts ADD CONSTRAINT accounts_slug_key UNIQUE (slug);

-- DIRECTION: down
ALTER TABLE accounts DROP COLUMN slug;
