"""Benchmark how plan and lint scale: with the number of migration files, and with the statements in one file.

Files: for N = 100, 1,000, 10,000 it writes N one-table-plus-index migrations, creates their tables in one
transaction and records them with `apply --baseline` (history rows and a schema snapshot, as after N applies), then
times `plan` (all applied, live-schema check on), `plan --no-schema-check` and the plan floor of
bench_migrations.py (a bare Python process that imports psycopg2, connects and reads the N history rows). The
figure that matters is the tool's own time beyond the floor, in total and per file.

Statements: for S = 1,000, 10,000, 100,000, 200,000 it writes one migration that creates a table and inserts S
rows, one INSERT a statement (a seed file), and times `lint` (offline: parse and risk rules) and `plan` (the file
pending on an empty database: parsed and judged too). Time per statement should stay the same at every S.

Usage: .venv/bin/python bench/bench_scaling.py [--files 100,1000,10000] [--statements 1000,10000,100000,200000]
                                               [--repeat 3] [--json results.json]
Server: BENCH_DB_URL or DB_URL (an admin URL: the bench creates and drops databases), else embedded PostgreSQL.
"""
from __future__ import annotations

import argparse
import compileall
import json
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg2

from bench_migrations import SCRIPTS, create_database, drop_database, floor, timed, tool, write_migrations
from bench_server import start_server


def create_tables(url: str, n: int) -> None:
    """Create the N tables and indexes of write_migrations's files, 500 to a transaction (faster than N applies;
    one transaction for all would run out of lock slots)."""
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            for i in range(n):
                cur.execute(f"CREATE TABLE bench_{i:05d} (id BIGSERIAL PRIMARY KEY, email TEXT NOT NULL, "
                            f"created_at TIMESTAMPTZ NOT NULL DEFAULT now());"
                            f"CREATE INDEX idx_bench_{i:05d}_email ON bench_{i:05d} (email);")
                if i % 500 == 499:
                    conn.commit()
        conn.commit()
    finally:
        conn.close()


def measure_files(admin_url: str, n: int, repeat: int, workdir: Path) -> dict:
    """Time plan with N files all applied, against its floor; return one result row."""
    print(f"files: N={n} ...", file=sys.stderr, flush=True)
    migrations = workdir / f"files_{n}"
    migrations.mkdir()
    paths = write_migrations(migrations, n)
    url = create_database(admin_url)
    try:
        create_tables(url, n)
        tool("apply", url, migrations, "--baseline", paths[-1].stem)
        tool("plan", url, migrations)  # untimed warm-up
        checked, unchecked, floors = [], [], []
        for _ in range(repeat):
            checked.append(tool("plan", url, migrations))
            unchecked.append(tool("plan", url, migrations, "--no-schema-check"))
            floors.append(floor("read", url, migrations))
    finally:
        drop_database(admin_url, url)
    plan, bare, base = statistics.median(checked), statistics.median(unchecked), statistics.median(floors)
    return {"kind": "files", "n": n, "plan_s": plan, "plan_no_check_s": bare, "floor_s": base,
            "beyond_floor_s": plan - base, "beyond_floor_ms_per_file": (plan - base) * 1000 / n,
            "ratio": plan / base, "ratio_no_check": bare / base}


def write_seed(directory: Path, statements: int) -> Path:
    """Write one migration that creates a table and inserts `statements` rows, one INSERT each."""
    directory.mkdir()
    path = directory / "20240101_000000_seed_data.sql"
    rows = "".join(f"INSERT INTO seed_data (id, name) VALUES ({i}, 'name {i}');\n" for i in range(statements))
    path.write_text("-- MIGRATION: seed_data\n-- DIRECTION: up\n"
                    "CREATE TABLE seed_data (id BIGINT PRIMARY KEY, name TEXT NOT NULL);\n" + rows +
                    "\n-- DIRECTION: down\nDROP TABLE seed_data;\n", encoding="utf-8")
    return path


def measure_statements(admin_url: str, statements: int, repeat: int, workdir: Path) -> dict:
    """Time lint and plan of one file of `statements` INSERTs; return one result row."""
    print(f"statements: S={statements} ...", file=sys.stderr, flush=True)
    migrations = workdir / f"statements_{statements}"
    size = write_seed(migrations, statements).stat().st_size
    lint_argv = [sys.executable, str(SCRIPTS / "lint_migrations.py"), "--migrations-dir", str(migrations)]
    url = create_database(admin_url)
    try:
        lints, plans = [], []
        for _ in range(repeat):
            lints.append(timed(lint_argv, url, migrations.parent))
            plans.append(tool("plan", url, migrations))
    finally:
        drop_database(admin_url, url)
    lint, plan = statistics.median(lints), statistics.median(plans)
    return {"kind": "statements", "n": statements, "bytes": size, "lint_s": lint, "plan_s": plan,
            "lint_us_per_statement": lint * 1e6 / statements, "plan_us_per_statement": plan * 1e6 / statements}


def table(rows: list[dict]) -> str:
    """Return the results as two markdown tables."""
    lines = ["| files | plan | plan --no-schema-check | floor | plan / floor | our time beyond the floor | per file |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['n']:,} | {r['plan_s']:.3f} s | {r['plan_no_check_s']:.3f} s | {r['floor_s']:.3f} s | "
              f"{r['ratio']:.2f}x | {r['beyond_floor_s'] * 1000:.0f} ms | {r['beyond_floor_ms_per_file']:.3f} ms |"
              for r in rows if r["kind"] == "files"]
    lines += ["", "| statements in one file | file size | lint | per statement | plan (file pending) | per statement |",
              "|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['n']:,} | {r['bytes'] / 1e6:.1f} MB | {r['lint_s']:.2f} s | {r['lint_us_per_statement']:.0f} µs | "
              f"{r['plan_s']:.2f} s | {r['plan_us_per_statement']:.0f} µs |" for r in rows if r["kind"] == "statements"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", default="100,1000,10000", help="numbers of files (comma-separated)")
    parser.add_argument("--statements", default="1000,10000,100000,200000", help="statements in the one file")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per figure (the median is kept)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    compileall.compile_dir(str(SCRIPTS), quiet=1)  # as installed: no run pays for compiling the tool's modules
    admin_url, cleanup = start_server("migbench-scaling-")
    started = time.monotonic()
    rows: list[dict] = []
    try:
        with tempfile.TemporaryDirectory(prefix="migbench-scaling-") as tmp:
            for n in (int(x) for x in args.files.split(",") if x):
                rows.append(measure_files(admin_url, n, args.repeat, Path(tmp)))
                print(f"  {rows[-1]}", file=sys.stderr, flush=True)
            for s in (int(x) for x in args.statements.split(",") if x):
                rows.append(measure_statements(admin_url, s, args.repeat, Path(tmp)))
                print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    finally:
        cleanup()
    print(f"Scaling, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()} "
          f"({platform.machine()}, Python {platform.python_version()}), medians of {args.repeat}, "
          f"{time.monotonic() - started:.0f} s in all:\n")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
