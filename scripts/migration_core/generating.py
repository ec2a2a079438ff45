"""generate: write a new migration file. Touches no database, so it never loads the driver (psycopg2).

Imports: stdlib, parsing, statements (pglast, on demand), model, errors.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from . import parsing
from .model import GenerateResult, Migration

# --up/--down are checked with the parser of this PostgreSQL version (the newest supported); apply checks them
# again against the real server's version before anything runs.
GENERATE_SERVER_VERSION = 180000


def generate(migrations_dir: Path, name: str, up: str | None = None, down: str | None = None,
             now: datetime | None = None) -> GenerateResult:
    """Create YYYYMMDD_HHMMSS_NAME.sql (UTC); never overwrite, moving the timestamp on instead."""
    parsing.check_name(name)
    migrations_dir.mkdir(parents=True, exist_ok=True)
    moment = now or datetime.now(timezone.utc)
    text = migration_template(name, up, down)
    taken = {p.name[:15] for p in migrations_dir.glob("*.sql")}
    while True:
        stamp = moment.strftime("%Y%m%d_%H%M%S")
        path = migrations_dir / f"{stamp}_{name}.sql"
        if stamp not in taken:
            # Validate before writing, so a bad --up never leaves an invalid file behind.
            migration = parsing.parse_migration_text(text, path, name) if up else None
            if migration:
                check_sql(migration)
            parsing.check_file_name(path)
            try:
                with open(path, "x", encoding="utf-8") as handle:  # "x": never overwrite
                    handle.write(text)
                break
            except FileExistsError:
                pass
        moment += timedelta(seconds=1)
    return GenerateResult(path, path.stem, migration.reversible if migration else None)


def check_sql(migration: Migration) -> None:
    """Parse both sections with the PostgreSQL parser (pglast): a typo is an invalid migration, naming file:line."""
    from .statements import check_transaction_mode  # pglast loads only when there is SQL to check
    check_transaction_mode(migration, "up", GENERATE_SERVER_VERSION)
    if migration.reversible:
        check_transaction_mode(migration, "down", GENERATE_SERVER_VERSION)


def migration_template(name: str, up: str | None, down: str | None) -> str:
    """Return the text of a new migration; the placeholders are comments so an unedited file is invalid."""
    up_body = up.strip() if up else (
        "-- Write the forward change here, e.g.\n-- ALTER TABLE users ADD COLUMN status TEXT;")
    down_body = down.strip() if down else (
        "-- Write the SQL that undoes the up section, e.g.\n-- ALTER TABLE users DROP COLUMN status;\n"
        "-- Leave only comments here if the change cannot be undone (the migration is then irreversible).")
    return f"-- MIGRATION: {name}\n-- DIRECTION: up\n{up_body}\n\n-- DIRECTION: down\n{down_body}\n"
