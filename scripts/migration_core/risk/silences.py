"""Silencing: `-- risk: ignore RULE because REASON` comments, and the statements each one covers (issue 5).

Pure: stdlib and pglast's scanner (imported only when a section mentions "risk").
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import InvalidMigrationFile
from .nodes import Statement
from .rules import RULES_BY_ID

DIRECTIVE = re.compile(r"^--\s*risk\s*:", re.IGNORECASE)
IGNORE = re.compile(r"^--\s*risk\s*:\s*ignore\s+(?P<rules>[a-z0-9_]+(?:\s*,\s*[a-z0-9_]+)*)"
                    r"(?:\s+because\b\s*(?P<reason>.*?))?\s*$", re.IGNORECASE)


def read_silences(sql: str, first_line: int, path: Path,
                  statements: list[Statement]) -> dict[int, dict[str, str]]:
    """Return, per statement index, the rules silenced for it and why."""
    if "risk" not in sql.lower():
        return {}  # the common case: no directive, no scan
    from pglast.parser import scan
    silences: dict[int, dict[str, str]] = {}
    for token in scan(sql):
        text = sql[token.start: token.end + 1]
        if token.name != "SQL_COMMENT" or not DIRECTIVE.match(text):
            continue
        line = first_line + sql.count("\n", 0, token.start)
        rules, reason = parse_directive(text, path, line)
        for index in silenced_statements(sql, first_line, line, statements, path):
            silences.setdefault(index, {}).update(dict.fromkeys(rules, reason))
    return silences


def parse_directive(text: str, path: Path, line: int) -> tuple[list[str], str]:
    """Return the rule ids and reason of a `-- risk: ignore` comment; anything malformed is an error."""
    match = IGNORE.match(text.strip())
    if not match:
        raise InvalidMigrationFile(f"{path}:{line}: unrecognised risk comment {text.strip()!r}.",
                                   hint="Write '-- risk: ignore RULE_ID because REASON'.")
    rules = [r.strip().lower() for r in match["rules"].split(",")]
    unknown = [r for r in rules if r not in RULES_BY_ID]
    if unknown:
        raise InvalidMigrationFile(f"{path}:{line}: unknown risk rule {unknown[0]!r}.",
                                   hint="Known rules: " + ", ".join(RULES_BY_ID) + ".")
    if not (match["reason"] or "").strip():
        raise InvalidMigrationFile(f"{path}:{line}: silencing {', '.join(rules)} needs a reason.",
                                   hint=f"Write '-- risk: ignore {', '.join(rules)} because <why it is safe here>'.")
    return rules, match["reason"].strip()


def silenced_statements(sql: str, first_line: int, line: int, statements: list[Statement],
                        path: Path) -> list[int]:
    """Return the statements a directive on this line covers: the ones on its line, else those starting just below."""
    same = [i for i, s in enumerate(statements) if s.line <= line <= s.last_line]
    if same:
        return same
    below = next((i for i, s in enumerate(statements) if s.line > line), None)
    lines = sql.split("\n")
    between = lines[line - first_line + 1: statements[below].line - first_line] if below is not None else []
    if below is None or any(not text.strip() for text in between):
        raise InvalidMigrationFile(f"{path}:{line}: a '-- risk: ignore' comment must sit directly above (or on) "
                                   f"the statement it silences.",
                                   hint="Move it to the line just above the statement, with no blank line between.")
    return [i for i, s in enumerate(statements) if s.line == statements[below].line]
