-- TRANSACTION: none
-- Each statement commits on its own, so the validation runs under a weak lock.
-- DIRECTION: up
ALTER TABLE accounts ADD CONSTRAINT accounts_plan_nn CHECK (plan IS NOT NULL) NOT VALID;
ALTER TABLE accounts VALIDATE CONSTRAINT accounts_plan_nn;
ALTER TABLE accounts ALTER COLUMN plan SET NOT NULL;
ALTER TABLE accounts DROP CONSTRAINT accounts_plan_nn;

-- DIRECTION: down
ALTER TABLE accounts ALTER COLUMN plan DROP NOT NULL;
