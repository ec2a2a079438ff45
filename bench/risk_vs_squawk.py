"""Compare our risk rules with squawk (https://squawkhq.com) on the corpus in tests/data/risk/ (issue 5).

squawk reads plain SQL, so each migration's up section goes to a temporary file of the same name. Transactional
migrations are checked with --assume-in-transaction (as our runner wraps each one in a transaction), those with
'-- TRANSACTION: none' without it. Findings are compared per file and rule: a squawk rule counts as the same
finding as ours when it maps to one of our rules that fired on the same file (see SAME_AS). Our silenced findings
count as found (squawk has no reason-carrying silence). Down sections are ours alone (squawk sees one file of SQL).

The last column, "context removed a false alarm", counts the (file, rule) pairs of ours that are gone when the
corpus is judged as plan and apply judge a run (issue 10): every file applied in order to an empty database, so a
table an earlier file created is new and empty. Both tools judge SQL text alone, and raise these on a fresh install.

Usage: .venv/bin/python bench/risk_vs_squawk.py [--squawk PATH] [--pg-version 18] [--details]
Install squawk in a throwaway venv: python3 -m venv /tmp/sqvenv && /tmp/sqvenv/bin/pip install squawk-cli
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from migration_core import parsing
from migration_core.model import Migration
from migration_core.risk import RULES, analyze_migration, assess_run, parse_pg_version

CORPUS = ROOT / "tests" / "data" / "risk"
# squawk rule -> our rules that report the same hazard
SAME_AS: dict[str, tuple[str, ...]] = {
    "require-concurrent-index-creation": ("adding_index_non_concurrently",),
    "adding-field-with-default": ("adding_column_with_default",),
    "adding-not-nullable-field": ("setting_not_null",),
    "constraint-missing-not-valid": ("constraint_missing_not_valid", "constraint_validated_in_same_transaction"),
    "adding-foreign-key-constraint": ("constraint_missing_not_valid",),
    "changing-column-type": ("changing_column_type",),
    "adding-serial-primary-key-field": ("constraint_without_using_index",),
    "disallowed-unique-constraint": ("constraint_without_using_index",),
    "ban-concurrent-index-creation-in-transaction": ("cannot_run_in_transaction",),
    "renaming-column": ("renaming_column",),
    "renaming-table": ("renaming_table",),
    "ban-drop-column": ("dropping_column",),
    "ban-drop-table": ("dropping_table",),
    "ban-truncate-cascade": ("truncating_table",),
    "prefer-repack": ("vacuum_full", "clustering_table"),
}
Pairs = Counter[tuple[str, str]]   # (our rule or squawk rule, file) -> 1


def our_findings(migrations: list[Migration], pg_version: int) -> tuple[dict[str, set[str]], int, float]:
    """Return our up-section rules per file, the number of down-section findings, and the seconds it took."""
    import pglast.parser  # noqa: F401  (import once, outside the timing, as a long-lived plan process would)
    started = time.perf_counter()
    per_file, down = {}, 0
    for migration in migrations:
        findings = analyze_migration(migration, pg_version)
        per_file[migration.path.name] = {f.rule for f in findings if f.direction == "up"}
        down += sum(1 for f in findings if f.direction == "down")
    return per_file, down, time.perf_counter() - started


def context_removed(migrations: list[Migration], ours: dict[str, set[str]], pg_version: int) -> Pairs:
    """Return our (rule, file) pairs that judging the corpus as one run on an empty database removes."""
    risks = assess_run(migrations, pg_version)
    in_run = {m.path.name: {f.rule for f in risks[m.version].findings if f.direction == "up"} for m in migrations}
    return Counter((rule, name) for name, rules in ours.items() for rule in rules - in_run[name])


def squawk_findings(squawk: str, migrations: list[Migration], pg_version: int) -> tuple[dict[str, set[str]], float]:
    """Run squawk over the up sections; return its rules per file and the seconds it took."""
    per_file: dict[str, set[str]] = {m.path.name: set() for m in migrations}
    elapsed = 0.0
    with tempfile.TemporaryDirectory() as directory:
        for transactional in (True, False):
            batch = [m for m in migrations if getattr(m, "transactional", True) is transactional]
            paths = [write_up_section(Path(directory), m) for m in batch]
            if not paths:
                continue
            command = [squawk, "--reporter", "json", f"--pg-version={pg_version // 10000}.0", *map(str, paths)]
            if transactional:
                command.insert(1, "--assume-in-transaction")
            started = time.perf_counter()
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            elapsed += time.perf_counter() - started
            for item in json.loads(result.stdout or "[]"):
                per_file[Path(item["file"]).name].add(item["rule_name"])
    return per_file, elapsed


def write_up_section(directory: Path, migration: Migration) -> Path:
    path = directory / migration.path.name
    path.write_text(migration.up_sql, encoding="utf-8")
    return path


def compare(ours: dict[str, set[str]], theirs: dict[str, set[str]]) -> tuple[Pairs, Pairs, Pairs]:
    """Return (both, only ours, only squawk) as (rule, file) pairs; 'both' is keyed by our rule."""
    both, only_ours, only_squawk = Counter(), Counter(), Counter()
    for name, our_rules in ours.items():
        matched: set[str] = set()
        for rule in theirs[name]:
            same = set(SAME_AS.get(rule, ())) & our_rules
            if same:
                matched |= same
            else:
                only_squawk[(rule, name)] += 1
        both.update((rule, name) for rule in matched)
        only_ours.update((rule, name) for rule in our_rules - matched)
    return both, only_ours, only_squawk


def count_by_rule(pairs: Pairs) -> Counter[str]:
    return Counter(rule for rule, _ in pairs)


def render_table(both: Pairs, only_ours: Pairs, only_squawk: Pairs, removed: Pairs) -> list[str]:
    """Return a markdown table: one row per rule of ours (with its squawk twins), then squawk's other rules.

    A squawk twin that fired where ours did not is counted in the row of the first rule it maps to.
    """
    b, o, s, c = count_by_rule(both), count_by_rule(only_ours), count_by_rule(only_squawk), count_by_rule(removed)
    lines = ["| our rule | squawk rule(s) | both | only ours | only squawk | context removed a false alarm |",
             "|---|---|---:|---:|---:|---:|"]
    for rule in (r.id for r in RULES):
        twins = [sq for sq, mapped in SAME_AS.items() if rule in mapped]
        missed = sum(s[sq] for sq in twins if SAME_AS[sq][0] == rule)
        lines.append(f"| `{rule}` | {', '.join(f'`{t}`' for t in twins) or '—'} | {b[rule]} | {o[rule]} "
                     f"| {missed} | {c[rule]} |")
    for rule in sorted(set(s) - set(SAME_AS), key=lambda r: (-s[r], r)):
        lines.append(f"| — | `{rule}` | 0 | 0 | {s[rule]} | — |")
    lines.append(f"| **total** (file, rule) pairs | | **{sum(b.values())}** | **{sum(o.values())}** "
                 f"| **{sum(s.values())}** | **{sum(c.values())}** |")
    return lines


def render_details(only_ours: Pairs, only_squawk: Pairs) -> list[str]:
    lines = ["", "Only ours:"] + [f"  {name}: {rule}" for rule, name in sorted(only_ours, key=lambda p: p[1])]
    lines += ["", "Only squawk:"] + [f"  {name}: {rule}" for rule, name in sorted(only_squawk, key=lambda p: p[1])]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--squawk", default=os.environ.get("SQUAWK") or shutil.which("squawk") or
                        "/tmp/sqvenv/bin/squawk", help="path of the squawk executable")
    parser.add_argument("--pg-version", type=parse_pg_version, default=180000)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--details", action="store_true", help="also list each file's one-sided findings")
    args = parser.parse_args()
    if not Path(args.squawk).exists() and not shutil.which(args.squawk):
        print(f"squawk not found at {args.squawk}; see the docstring to install it.", file=sys.stderr)
        return 2
    version = subprocess.run([args.squawk, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    migrations = [parsing.parse_migration_file(p) for p in parsing.list_migration_files(args.corpus)]
    ours, down_count, our_seconds = our_findings(migrations, args.pg_version)
    theirs, squawk_seconds = squawk_findings(args.squawk, migrations, args.pg_version)
    both, only_ours, only_squawk = compare(ours, theirs)
    removed = context_removed(migrations, ours, args.pg_version)
    corpus = args.corpus.relative_to(ROOT) if args.corpus.is_relative_to(ROOT) else args.corpus
    print(f"Corpus: {len(migrations)} migrations in {corpus}; PostgreSQL {args.pg_version // 10000}; {version}.")
    print(f"Time: ours {our_seconds * 1000:.0f} ms in-process (parse + rules, after a ~25 ms pglast import), "
          f"squawk {squawk_seconds * 1000:.0f} ms (two processes).")
    print(f"Up sections compared per (file, rule); our down-section findings, which squawk cannot see: {down_count}.\n")
    print("\n".join(render_table(both, only_ours, only_squawk, removed)))
    shared = sum(1 for pair in removed if pair in both)
    print(f"\nContext removed {sum(removed.values())} of our {sum(both.values()) + sum(only_ours.values())} up-section "
          f"findings on a fresh install ({shared} of them raised by squawk too): each on a table an earlier file "
          f"creates.")
    if args.details:
        print("\n".join(render_details(only_ours, only_squawk)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
