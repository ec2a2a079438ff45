-- DIRECTION: up
TRUNCATE TABLE login_attempts;
