-- DIRECTION: up
DELETE FROM audit_log WHERE created_at < now() - interval '2 years';
