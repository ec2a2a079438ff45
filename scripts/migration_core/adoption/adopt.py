"""import_migrations.py --adopt: take over the other tool's history in one transaction, under the runner lock.

Reads which versions the other tool applied, maps them through the same version mapping as the import, then in
ONE transaction: renames its table to <table>_before_adoption (rows kept), creates this tool's history, records
each adopted version as a baseline row noted 'adopted from TOOL', and records the live schema as the reference.
The rows and the snapshot are written by the baseline's own writer (commands.write_noted). The other tool's table
is locked (EXCLUSIVE: readers go on, writers wait) before its rows are read, so a still-running dbmate cannot record
a version between the read and the rename. A dry run reads only, takes no lock (its transaction is read-only: a
version recorded meanwhile changes the plan id, which the real run then refuses) and prints the plan id that
--plan-id confirms.
"""
from __future__ import annotations

from pathlib import Path

from psycopg2 import sql

from .. import config, db, history_shape, parsing, planning
from ..commands import (DEFAULT_READ_LOCK_TIMEOUT_MS, READ_STATEMENT_TIMEOUT_MS, locked_connection,
                        write_noted)
from ..errors import Refused, UsageError
from ..model import Migration, Step
from ..running import check_plan_id
from . import applied
from .report import AdoptResult, command_line
from .source import read_folder, version_key
from .versions import map_folder

SUFFIX = "_before_adoption"
RENAME_TABLE = "ALTER TABLE {table} RENAME TO {new_name}"
LOCK_FOREIGN_TABLE = "LOCK TABLE {table} IN EXCLUSIVE MODE"
RENAME_INDEX = "ALTER INDEX {index} RENAME TO {new_name}"
# The other table's indexes named after it (schema_migrations_pkey, flyway_schema_history_pk, ...) follow it, so
# this tool's new table can take its own names.
SELECT_OWN_INDEXES = """
SELECT c.relname FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = pg_catalog.to_regclass(pg_catalog.quote_ident(%s) || '.' || pg_catalog.quote_ident(%s))
  AND pg_catalog.left(c.relname, %s) = %s
"""
MAX_NAME = 63


def adopt(tool: str, source_dir: Path, migrations_dir: Path, lock_timeout_s: float, dry_run: bool = False,
          plan_id: str | None = None, invocation: tuple[str, ...] = ()) -> AdoptResult:
    """Record the versions the other tool applied as applied here, moving its history table aside (see above)."""
    folder = read_folder(tool, source_dir)
    stamps = map_folder(folder)
    by_key = {version_key(tool, m.source_version): m.source_version for m in folder.migrations}
    if not migrations_dir.is_dir():
        raise UsageError(f"Migrations directory {migrations_dir} does not exist: nothing imported to adopt against.",
                         code="no_migrations_dir", hint="Import first: the same command without --adopt (and "
                                                        "--migrations-dir DIR if the files go elsewhere).")
    migrations = parsing.load_migrations(migrations_dir)
    files = {m.version[:15]: m for m in migrations}
    with locked_connection(lock_timeout_s, dry_run) as conn, db.server_errors(conn, "adopting the history"):
        db.set_local_timeouts(conn, DEFAULT_READ_LOCK_TIMEOUT_MS, READ_STATEMENT_TIMEOUT_MS)
        found = find_history(conn, tool)
        if not dry_run:
            lock_foreign_table(conn, found)  # before the read, in the transaction that renames it
        keys = applied.applied_keys(tool, applied.read_rows(conn, found), list(by_key), found.qualified,
                                    lambda text: version_key(tool, text))
        chosen = select_adopted(keys, by_key, stamps, files, tool, migrations_dir)
        renamed = found.table + SUFFIX
        refuse_taken_name(conn, found, renamed)
        steps = [Step(m, "up") for m in chosen]
        computed = planning.compute_plan_id("adopt", planning.compute_plan(migrations, None), steps,
                                            f"{tool}:{found.qualified}")
        check_plan_id("adopt", plan_id, computed, command_line((*invocation, "--dry-run")))
        if not dry_run:
            move_aside_and_record(conn, found, renamed, chosen, tool)
    adopted = {m.version for m in chosen}
    return AdoptResult(tool, found.qualified, f"{found.schema}.{renamed}",
                       f"{config.history_schema()}.{config.history_table()}", [m.version for m in chosen],
                       [next(s for s in stamps if stamps[s] == m.version[:15]) for m in chosen],
                       [m.version for m in migrations if m.version not in adopted], dry_run, computed, invocation)


def find_history(conn: db.Connection, tool: str) -> history_shape.ForeignHistory:
    """Return the other tool's history table where this tool's goes; refuse when there is none, or another's."""
    found = history_shape.find_foreign_history(conn) or find_default_named(conn)
    if found is None:
        ours = db.history_table_exists(conn)
        raise Refused(f"There is no {tool} history to adopt in schema {config.history_schema()}"
                      + (" (this tool's history is already there: adopted before?)" if ours else "")
                      + "; nothing was changed.", code="nothing_to_adopt",
                      hint="Check DB_URL, --history-schema and --history-table; on a database no other tool "
                           "manages, run python scripts/apply_migrations.py --baseline VERSION instead.")
    if found.tool != tool:
        raise UsageError(f"The history table {found.qualified} looks like {found.tool}'s, not {tool}'s; nothing "
                         "was changed.", code="adopt_wrong_tool",
                         hint=f"Pass --from {found.tool} with that tool's migrations folder"
                              if found.tool != "unknown" else "Only dbmate, golang-migrate, goose and Flyway "
                                                              "histories can be adopted.")
    # Found beside this tool's history (--history-table names another table): adopting would create it again.
    if found.table != config.history_table() and db.history_table_exists(conn):
        ours = f"{config.history_schema()}.{config.history_table()}"
        raise Refused(f"This tool's history {ours} already exists beside {tool}'s {found.qualified}, so there is "
                      "nothing to adopt into it; nothing was changed.", code="nothing_to_adopt",
                      hint="Adoption is for a database this tool does not manage yet; here both tools keep a "
                           f"history: keep {found.qualified} as it is, or drop it after review.")
    return found


def lock_foreign_table(conn: db.Connection, found: history_shape.ForeignHistory) -> None:
    """Lock the other tool's table against writes until the adoption commits (a running tool waits for it)."""
    with conn.cursor() as cur:
        cur.execute(sql.SQL(LOCK_FOREIGN_TABLE).format(table=sql.Identifier(found.schema, found.table)))


def find_default_named(conn: db.Connection) -> history_shape.ForeignHistory | None:
    """Return dbmate's or golang-migrate's schema_migrations when this tool's history has another name
    (--history-table): the two tools then coexist, and adoption still finds the other one's table."""
    default = config.DEFAULT_HISTORY_TABLE
    if config.history_table() == default:
        return None
    shapes = history_shape.read_shapes(conn, config.history_schema(), default)
    if default not in shapes:
        return None
    kind, columns = shapes[default]
    tool = history_shape.classify(columns, kind)
    return None if tool is None else history_shape.ForeignHistory(tool, config.history_schema(), default,
                                                                  tuple(c.name for c in columns))


def select_adopted(keys: list[tuple[int, ...]], by_key: dict[tuple[int, ...], str], stamps: dict[str, str],
                   files: dict[str, Migration], tool: str, migrations_dir: Path) -> list[Migration]:
    """Return the imported migrations of the versions the other tool applied; refuse any it applied that is missing."""
    missing = [".".join(map(str, k)) for k in keys
               if k not in by_key or stamps[by_key[k]] not in files]
    if missing:
        raise Refused(f"{tool} applied version(s) {', '.join(missing)}, which have no imported file in "
                      f"{migrations_dir}; nothing was changed.", code="adopt_missing_versions",
                      hint="Import the folder that holds every applied migration (the one the other tool runs "
                           "from), then adopt again.")
    return sorted((files[stamps[by_key[k]]] for k in keys), key=lambda m: m.version)


def refuse_taken_name(conn: db.Connection, found: history_shape.ForeignHistory, renamed: str) -> None:
    """Refuse when the table's new name is taken (an earlier adoption left it?) before anything changes."""
    with conn.cursor() as cur:
        cur.execute(db.TABLE_EXISTS, (found.schema, renamed))
        taken = cur.fetchone()[0] is not None
    if taken:
        raise Refused(f"{found.schema}.{renamed} already exists, so {found.qualified} cannot be moved aside to it; "
                      "nothing was changed.", code="nothing_to_adopt",
                      hint=f"Rename or drop {found.schema}.{renamed} after review, then adopt again.")


def move_aside_and_record(conn: db.Connection, found: history_shape.ForeignHistory, renamed: str,
                          chosen: list[Migration], tool: str) -> None:
    """Rename the other tool's table and its indexes, then write the baseline rows and the snapshot; one commit."""
    with conn.cursor() as cur:
        cur.execute(SELECT_OWN_INDEXES, (found.schema, found.table, len(found.table) + 1, found.table + "_"))
        indexes = [name for (name,) in cur.fetchall()]
        cur.execute(sql.SQL(RENAME_TABLE).format(table=sql.Identifier(found.schema, found.table),
                                                 new_name=sql.Identifier(renamed)))
        for index in indexes:
            new_name = renamed + index[len(found.table):]
            if len(new_name) <= MAX_NAME:
                cur.execute(sql.SQL(RENAME_INDEX).format(index=sql.Identifier(found.schema, index),
                                                         new_name=sql.Identifier(new_name)))
    note = (f"adopted from {tool}: recorded as applied without running (the {tool} history, now "
            f"{found.schema}.{renamed}, showed it applied)")
    db.create_history_table(conn)
    write_noted(conn, chosen, note, [], "baseline")
    conn.commit()
