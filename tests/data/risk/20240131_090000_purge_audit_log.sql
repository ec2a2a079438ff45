-- DIRECTION: up
DELETE FROM audit_log;
