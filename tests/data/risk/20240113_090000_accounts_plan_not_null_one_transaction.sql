-- All three steps in one transaction: the CHECK's ACCESS EXCLUSIVE lock is held during validation.
-- DIRECTION: up
ALTER TABLE accounts ADD COLUMN billing_email TEXT;
ALTER TABLE accounts ADD CONSTRAINT accounts_billing_email_nn CHECK (billing_email IS NOT NULL) NOT VALID;
ALTER TABLE accounts VALIDATE CONSTRAINT accounts_billing_email_nn;
ALTER TABLE accounts ALTER COLUMN billing_email SET NOT NULL;

-- DIRECTION: down
ALTER TABLE accounts DROP COLUMN billing_email;
