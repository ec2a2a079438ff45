"""Every error the tool reports, each with its exit code and stable JSON code. Imports: stdlib only."""
from __future__ import annotations

from typing import Any


class MigrationError(Exception):
    """Base class: a failure whose message is already fit to show a user."""

    exit_code = 1
    code = "error"

    def __init__(self, message: str, *, hint: str = "", code: str | None = None,
                 details: dict[str, Any] | None = None, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if code:
            self.code = code
        self.sqlstate = sqlstate  # the server's SQLSTATE, when the server raised it
        # Partial results (e.g. versions applied before the failure) ride along for the JSON output.
        self.details = details or {}


class MigrationFailed(MigrationError):
    """A migration's SQL failed on the server; it was rolled back and recorded."""

    exit_code = 1
    code = "migration_failed"


class UnexpectedError(MigrationError):
    exit_code = 1
    code = "unexpected_error"


class Interrupted(MigrationError):
    """SIGINT or SIGTERM arrived: the running statement was cancelled and its transaction rolled back."""

    exit_code = 1
    code = "interrupted"


class Stopped(MigrationError):
    """A fleet rollout asked this run to stop between migrations (its stop file appeared): the ones done stay
    applied, the rest were not started."""

    exit_code = 1
    code = "stopped"


class ServerError(MigrationError):
    """One of the tool's own statements failed on the server (a timeout, a read-only server, a missing privilege)."""

    exit_code = 1
    code = "server_error"


class UsageError(MigrationError):
    exit_code = 2
    code = "usage"


class InvalidMigrationFile(MigrationError):
    """A migration file breaks the naming or section rules; names the file and line."""

    exit_code = 2
    code = "invalid_migration"


class Refused(MigrationError):
    """The tool refused to act because acting would be unsafe; nothing was changed."""

    exit_code = 3
    code = "refused"


class ConfigError(MigrationError):
    """DB_URL missing or wrong, server unreachable, or the connection was lost."""

    exit_code = 4
    code = "config_error"


class ForeignHistoryTable(Refused):
    """Another tool's history table (or a table of unknown shape) is where the history goes; nothing was touched."""

    code = "foreign_history_table"

    def __init__(self, message: str, *, tool: str, table: str, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.tool = tool        # "dbmate", "golang-migrate", "goose", "flyway" or "unknown"
        self.table = table      # schema-qualified, as the message names it
