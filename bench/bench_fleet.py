"""Benchmark fleet runs: plan across N databases, and apply of M migrations to N databases, --parallel 1 vs 8.

Every target is a database on one server; the fleet runs this project's scripts as it does for a user
(plan/apply_migrations.py --targets FILE), one subprocess per target, so the figures include each target's
interpreter start, connection, plan and (apply) its dry run first. Between apply runs every database is emptied.

Usage: .venv/bin/python bench/bench_fleet.py [--targets 100] [--migrations 10] [--parallel 1,8] [--json out.json]
Server: BENCH_DB_URL or DB_URL (an admin URL: the bench creates and drops databases), else embedded PostgreSQL.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2

from bench_server import start_server

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"


def database_url(server_url: str, dbname: str) -> str:
    """Return server_url pointing at another database."""
    return urlunsplit(urlsplit(server_url)._replace(path="/" + dbname))


def run_fleet(script: str, targets: Path, migrations: Path, parallel: int) -> tuple[float, dict]:
    """Run one fleet command with --json; return its wall time in seconds and its document."""
    env = {k: v for k, v in os.environ.items() if k != "DB_URL"}
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(SCRIPTS / f"{script}_migrations.py"), "--targets", str(targets),
                           "--migrations-dir", str(migrations), "--parallel", str(parallel), "--json"],
                          capture_output=True, text=True, env=env, timeout=3600)
    took = time.monotonic() - started
    doc = json.loads(done.stdout)
    if done.returncode != 0:
        raise SystemExit(f"{script} failed (exit {done.returncode}): {doc.get('error')}")
    return took, doc


def empty(urls: list[str]) -> None:
    """Drop everything the migrations and the history created in each database."""
    for url in urls:
        conn = psycopg2.connect(url)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--migrations", type=int, default=10)
    parser.add_argument("--parallel", default="1,8")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    widths = [int(w) for w in args.parallel.split(",")]
    admin_url, cleanup = start_server("migfleet-")
    prefix = "fb_" + uuid.uuid4().hex[:6]
    names = [f"{prefix}_{i:03d}" for i in range(1, args.targets + 1)]
    admin = psycopg2.connect(admin_url)
    admin.autocommit = True
    rows: list[dict] = []
    try:
        with admin.cursor() as cur:
            for name in names:
                cur.execute(f'CREATE DATABASE "{name}"')
        urls = [database_url(admin_url, name) for name in names]
        work = Path(tempfile.mkdtemp(prefix="migfleet-"))
        targets = work / "targets.txt"
        targets.write_text("".join(f"t{i:03d} {url}\n" for i, url in enumerate(urls, 1)))
        migrations = work / "migrations"
        migrations.mkdir()
        for i in range(1, args.migrations + 1):
            (migrations / f"20260101_{i:06d}_m{i}.sql").write_text(
                f"-- DIRECTION: up\nCREATE TABLE t{i} (id bigint PRIMARY KEY, note text);\n"
                f"-- DIRECTION: down\nDROP TABLE t{i};\n")
        for width in widths:
            took, doc = run_fleet("plan", targets, migrations, width)
            assert doc["summary"]["pending"] == args.targets
            rows.append({"operation": f"plan ({args.migrations} pending each)", "parallel": width, "seconds": took})
        for width in widths:
            empty(urls)
            took, doc = run_fleet("apply", targets, migrations, width)
            assert doc["summary"]["migrations"] == args.targets * args.migrations, doc["summary"]
            rows.append({"operation": f"apply {args.migrations} migrations", "parallel": width, "seconds": took})
    finally:
        with admin.cursor() as cur:
            for name in names:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
        cleanup()
    print(f"Fleet of {args.targets} databases on one server; {os.cpu_count()} CPU(s), Python "
          f"{platform.python_version()}; one subprocess per target (and per apply target: a dry run, then the run)")
    print(f"| {'operation':<28} | parallel | seconds | ms per target |")
    print(f"|{'-' * 30}|----------|---------|---------------|")
    for row in rows:
        print(f"| {row['operation']:<28} | {row['parallel']:>8} | {row['seconds']:>7.1f} | "
              f"{row['seconds'] * 1000 / args.targets:>13.0f} |")
    if args.json:
        args.json.write_text(json.dumps({"targets": args.targets, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
