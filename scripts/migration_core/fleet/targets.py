"""Targets of a fleet run: the targets file, --targets-query and --shard I/N.

parse_targets, select_shard and check_targets_query are pure (text and environment in, targets out); only
targets_from_query reads a database. No message ever quotes a line of the file: a line holds a URL, and a URL may
hold a password.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from .. import config
from ..errors import UsageError

VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/@+-]*")
SHARD = re.compile(r"([0-9]+)/([0-9]+)")
MAX_TARGETS = 100_000   # a targets file longer than this is a mistake (a log file passed by accident)
DATA_MODIFYING = ("InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt")


@dataclass(frozen=True)
class Target:
    """One database of the fleet: its name in the output, and its URL (which never leaves the process)."""

    name: str
    url: str


def bad_targets(where: str, problem: str) -> UsageError:
    """Return the one-line error of an unusable targets file or query (exit 2), naming the place, never the text."""
    return UsageError(f"{where}: {problem}", code="bad_targets",
                      hint="Write one target per line: NAME URL, or just URL; '#' starts a comment; "
                           "${VAR} takes VAR from the environment (see docs/fleet.md).")


def read_targets_file(path: Path, environ: Mapping[str, str]) -> list[Target]:
    """Read and parse the targets file at path."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = "it is not UTF-8 text" if isinstance(err, UnicodeDecodeError) else \
            (err.strerror or type(err).__name__).lower()
        raise bad_targets(str(path), f"cannot read the targets file ({reason}).") from None
    return parse_targets(text, environ, str(path))


def parse_targets(text: str, environ: Mapping[str, str], source: str = "targets") -> list[Target]:
    """Parse a targets file: one `NAME URL` or `URL` per line, '#' comments, ${VAR} from environ."""
    targets: list[Target] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = strip_comment(raw)
        if not line:
            continue
        targets.append(parse_line(line, environ, f"{source}:{number}"))
    if not targets:
        raise bad_targets(source, "no targets (every line is empty or a comment).")
    if len(targets) > MAX_TARGETS:
        raise bad_targets(source, f"more than {MAX_TARGETS} targets.")
    refuse_duplicates(targets, source)
    return targets


def strip_comment(line: str) -> str:
    """Remove a comment: '#' at the start of a word (a '#' inside a URL's password is part of it)."""
    return re.split(r"(?:^|\s)#", line, maxsplit=1)[0].strip()


def parse_line(line: str, environ: Mapping[str, str], where: str) -> Target:
    """Parse one non-empty line into a target; ${VAR} is expanded word by word, so a value never splits a line."""
    words = line.split()
    if len(words) > 2:
        raise bad_targets(where, f"expected NAME URL or URL, found {len(words)} words.")
    words = [expand(word, environ, where) for word in words]
    name, url = (None, words[0]) if len(words) == 1 else words
    if not url.startswith(config.SCHEMES):
        raise bad_targets(where, "the URL must start with postgresql:// or postgres://"
                                 + (" (a NAME comes first, then the URL)." if name is None and "://" in line
                                    else "."))
    try:
        config.normalise_db_url(url, "the URL")
    except Exception as err:  # config raises ConfigError naming no password; here it is a usage error
        raise bad_targets(where, getattr(err, "message", "the URL is malformed.").rstrip(".") + ".") from None
    if name is not None and not NAME.fullmatch(name):
        raise bad_targets(where, "a NAME is letters, digits and _ . : / @ + - (starting with a letter or digit).")
    return Target(name or default_name(url), url)


def expand(word: str, environ: Mapping[str, str], where: str) -> str:
    """Replace each ${VAR} in word by its value in environ; an unset variable is an error naming it."""
    def value(match: re.Match[str]) -> str:
        if match.group(1) not in environ:
            raise bad_targets(where, f"${{{match.group(1)}}} is not set in the environment.")
        return environ[match.group(1)]
    return VARIABLE.sub(value, word)


def default_name(url: str) -> str:
    """Name a target given by URL alone: host[:port]/database (never the user or password)."""
    parts = config.parse_db_url(url)
    host = unquote(parts.netloc) or ",".join(config.query_values(parts.query, "host")) or "localhost"
    dbname = (config.query_values(parts.query, "dbname") or [unquote((parts.path or "/")[1:])])[0]
    return f"{host}/{dbname}"


def refuse_duplicates(targets: list[Target], source: str) -> None:
    """Refuse two targets with one name: output, plan ids and resumes are keyed by name."""
    seen: set[str] = set()
    for target in targets:
        if target.name in seen:
            raise bad_targets(source, f"the target name {target.name!r} appears twice; give each line its own NAME.")
        seen.add(target.name)


def parse_shard(text: str) -> tuple[int, int]:
    """Parse --shard I/N (1 <= I <= N)."""
    match = SHARD.fullmatch(text.strip())
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise UsageError(f"--shard expects I/N with 1 <= I <= N (e.g. 2/4), got {text!r}.", code="usage",
                         hint="Give each of N CI jobs its own I from 1 to N.")
    return int(match.group(1)), int(match.group(2))


def select_shard(targets: list[Target], index: int, count: int) -> list[Target]:
    """Return every count-th target starting at the index-th (1-based): N shards cover each target exactly once."""
    return targets[index - 1::count]


def check_targets_query(sql_text: str) -> None:
    """Refuse --targets-query unless it is exactly one plain SELECT (no data-modifying WITH, no SELECT INTO).

    One statement is what keeps it inside the read-only, time-bounded transaction: a COMMIT in a second statement
    would end that transaction, and what follows would run read-write and unbounded.
    """
    from pglast import ast
    from pglast.parser import ParseError, parse_sql
    from pglast.visitors import Visitor
    where = "--targets-query"
    try:
        statements = parse_sql(sql_text)
    except ParseError as err:
        raise bad_targets(where, f"the query does not parse ({str(err).splitlines()[0]}).") from None
    if len(statements) != 1:
        raise bad_targets(where, f"expected exactly one SELECT statement, found {len(statements)} statements.")
    if not isinstance(statements[0].stmt, ast.SelectStmt):
        raise bad_targets(where, f"expected a SELECT statement, found {type(statements[0].stmt).__name__}.")
    if statements[0].stmt.intoClause is not None:
        raise bad_targets(where, "SELECT ... INTO creates a table; give a plain SELECT.")

    class DataModifying(Visitor):  # finds a WITH query that writes, at any depth
        found = False

        def visit_CommonTableExpr(self, ancestors: Any, node: Any) -> None:
            self.found = self.found or type(node.ctequery).__name__ in DATA_MODIFYING

    visitor = DataModifying()
    visitor(statements[0])
    if visitor.found:
        raise bad_targets(where, "a WITH query of the SELECT inserts, updates, deletes or merges; give a plain SELECT.")


def check_query_names(names: list[Any]) -> None:
    """Refuse database names the targets file would refuse as NAMEs: they are shown, and key plan ids and resumes."""
    for number, name in enumerate(names, start=1):
        if not isinstance(name, str) or not name:
            raise bad_targets("--targets-query", "the query must return database names (text, not null).")
        if not NAME.fullmatch(name):
            raise bad_targets(f"--targets-query row {number}", "a database name used as a target name is letters, "
                                                               "digits and _ . : / @ + - (starting with a letter "
                                                               "or digit).")


def targets_from_query(db_url: str, sql_text: str) -> list[Target]:
    """Run --targets-query on DB_URL (read-only, bounded); each returned database becomes a target there."""
    from contextlib import closing

    check_targets_query(sql_text)  # before connecting: a refused query never reaches the server

    from .. import db
    from ..errors import MigrationError
    conn = db.connect(db_url, read_only=True)
    with closing(conn):
        try:
            with db.server_errors(conn, "running --targets-query"):
                db.set_local_timeouts(conn, 5000, 60_000)
                with conn.cursor() as cur:
                    cur.execute(sql_text)
                    if cur.description is None or len(cur.description) != 1:
                        raise bad_targets("--targets-query", "the query must return exactly one column: the "
                                                             "database names.")
                    names = [row[0] for row in cur.fetchall()]
                conn.rollback()
        except MigrationError as err:
            if err.code == "bad_targets" or err.exit_code == 4:
                raise
            raise bad_targets("--targets-query", err.message) from None
    if not names:
        raise bad_targets("--targets-query", "the query returned no databases.")
    check_query_names(names)
    targets = [Target(name, config.with_database(db_url, name)) for name in names]
    refuse_duplicates(targets, "--targets-query")
    return targets
