"""Private core of the migration assistant; the scripts reach it only through migration_utils."""
