"""import_migrations.py without --adopt: read the other tool's folder, map, render, check, write all or nothing.

Touches no database. Imports: stdlib, source, the readers, versions, writer, report (never psycopg2).
"""
from __future__ import annotations

from pathlib import Path

from .report import ImportEntry, ImportResult
from .source import read_folder
from .versions import map_folder
from .writer import check_target, render, write_files


def import_folder(tool: str, source_dir: Path, migrations_dir: Path, dry_run: bool = False,
                  merge: bool = False) -> ImportResult:
    """Write one migration file per source migration into migrations_dir (a dry run writes nothing)."""
    folder = read_folder(tool, source_dir)
    stamps = map_folder(folder)
    files = [render(tool, m, stamps[m.source_version]) for m in folder.migrations]  # every file checked first
    todo = check_target(migrations_dir, files, merge)
    entries = [ImportEntry(f.source_version, f.version, f.source_files, f.notes,
                           "unchanged" if f not in todo else ("would_write" if dry_run else "written"))
               for f in files]
    mapping = {"tool": tool, "source": str(source_dir.resolve()),
               "versions": {f.source_version: f.version for f in files}}
    map_file = None if dry_run else write_files(migrations_dir, todo, mapping)
    return ImportResult(tool, source_dir, migrations_dir, entries, folder.not_imported, dry_run, map_file)
