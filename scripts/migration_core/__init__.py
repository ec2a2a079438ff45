"""Private core of the migration assistant; the scripts reach it only through migration_utils."""

__version__ = "1.0.0"  # the one version of the tool (the MCP server reports it)
