"""The results of import and adoption, and how they read (output.py's extension_renderers hands them here).

Imports: stdlib, errors, source (for NotImported).
"""
from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MigrationError
from .source import NotImported

SCRIPT = "import_migrations.py"


@dataclass(frozen=True)
class ImportEntry:
    source_version: str
    version: str
    source_files: tuple[str, ...]
    notes: list[str]
    status: str                 # written, would_write, unchanged (already there after --merge)


@dataclass(frozen=True)
class ImportResult:
    tool: str
    source_dir: Path
    migrations_dir: Path
    entries: list[ImportEntry]
    not_imported: list[NotImported]
    dry_run: bool
    map_file: Path | None


@dataclass(frozen=True)
class AdoptResult:
    tool: str
    table: str                      # the other tool's history, schema-qualified
    renamed_to: str                 # where its rows stay, after adoption
    history_table: str              # this tool's history, schema-qualified
    recorded: list[str]             # versions recorded as applied (adopted from the other tool)
    source_versions: list[str]      # the other tool's applied versions, in the same order
    pending: list[str]              # versions of the folder left for apply
    dry_run: bool
    plan_id: str
    invocation: tuple[str, ...] = field(default_factory=tuple)   # argv words to repeat the command


def command_line(words: tuple[str, ...] | list[str]) -> str:
    """Return the command that runs this script again with these arguments, quoted for the shell."""
    ran = Path(sys.argv[0]) if sys.argv and Path(sys.argv[0]).name == SCRIPT else None
    path = ran or Path(__file__).resolve().parents[2] / SCRIPT
    return shlex.join(["python", str(path), *words])


def run_error(result: Any) -> MigrationError | None:
    return None  # a finished import or adoption is a success; refusals are raised before a result exists


def to_json_payload(result: ImportResult | AdoptResult) -> dict[str, Any]:
    if isinstance(result, AdoptResult):
        return {"tool": result.tool, "dry_run": result.dry_run, "plan_id": result.plan_id,
                "foreign_table": result.table, "renamed_to": result.renamed_to,
                "history_table": result.history_table, "adopted": result.recorded,
                "source_versions": result.source_versions, "pending": result.pending,
                "run_command": command_line((*result.invocation, "--plan-id", result.plan_id))
                if result.dry_run else None}
    return {"tool": result.tool, "source_dir": result.source_dir, "migrations_dir": result.migrations_dir,
            "dry_run": result.dry_run, "map_file": result.map_file,
            "migrations": [{"source_version": e.source_version, "version": e.version, "file": e.version + ".sql",
                            "source_files": list(e.source_files), "status": e.status, "notes": e.notes}
                           for e in result.entries],
            "not_imported": [{"file": n.file, "reason": n.reason} for n in result.not_imported]}


def to_human(result: ImportResult | AdoptResult) -> str:
    if isinstance(result, AdoptResult):
        return human_adoption(result)
    verb = "Would import" if result.dry_run else "Imported"
    fresh = [e for e in result.entries if e.status != "unchanged"]
    lines = [f"{verb} {len(fresh)} migration(s) from {result.tool} ({result.source_dir}) into "
             f"{result.migrations_dir}:"]
    width = max(len(e.source_version) for e in result.entries)
    for entry in result.entries:
        kept = "  (already there)" if entry.status == "unchanged" else ""
        lines.append(f"  {entry.source_version:>{width}} -> {entry.version}.sql{kept}")
        lines += [f"  {'':>{width}}    note: {note}" for note in entry.notes]
    for skipped in result.not_imported:
        lines.append(f"not imported: {skipped.file}: {skipped.reason}")
    lines.append(f"Mapping saved to {result.map_file}." if result.map_file else
                 "Nothing written (dry run): run again without --dry-run to write the files and the mapping.")
    if not result.dry_run:
        adopt = command_line(("--from", result.tool, str(result.source_dir.resolve()), "--migrations-dir",
                              str(result.migrations_dir.resolve()), "--adopt", "--dry-run"))
        lines.append(f"Next: review the files; on a database {result.tool} manages, preview the adoption of its "
                     f"history with {adopt}; elsewhere run plan_migrations.py.")
    return "\n".join(lines)


def human_adoption(result: AdoptResult) -> str:
    head = "Would adopt" if result.dry_run else "Adopted"
    lines = [f"{head} {len(result.recorded)} applied migration(s) from {result.tool}'s history {result.table}:"]
    lines += [f"  {source} -> {version}  (recorded as applied, not run)"
              for source, version in zip(result.source_versions, result.recorded)]
    lines.append(f"{result.table} {'would be' if result.dry_run else 'was'} renamed to {result.renamed_to} (rows "
                 f"kept); {result.history_table} {'would be' if result.dry_run else 'was'} created, and the live "
                 "schema recorded as the reference.")
    lines.append(f"Pending after adoption: {len(result.pending)}" + (f" ({', '.join(result.pending)})"
                                                                   if result.pending else "") + ".")
    if result.dry_run:
        lines.append(f"Plan id: {result.plan_id}")
        lines.append(f"To adopt exactly this: {command_line((*result.invocation, '--plan-id', result.plan_id))}")
    else:
        lines.append("Next: python scripts/plan_migrations.py, then apply the pending migrations.")
    return "\n".join(lines)
