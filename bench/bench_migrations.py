"""Benchmark the migration scripts against their floors on a real PostgreSQL server (issue 2, "Speed").

For each size N it creates N migrations (one table plus one index each, down drops the table) and times, as
subprocesses run with this interpreter: apply from scratch, plan with all applied, plan with 10 pending and
rollback of the last 10, and (in this process, on one connection) what judging the risk of 10 pending migrations
against the live tables adds to plan and apply (issue 10). Each figure is compared with a floor measured on the
same server in the same run:
  plan floor      a bare `python -c` that imports psycopg2, connects and reads the N history rows;
  apply floor     one process, one connection: the same up SQL, one history INSERT and one commit per migration;
  rollback floor  one process, one connection: read the history, then the same 10 downs, each with its history
                  row (superseding the previous one, as the unique index demands) and one commit.
  risk floor      the static risk judgement of the same pending migrations (parse + rules, no database): the live
                  judgement adds one catalog query for all the tables they touch and a second pass of the rules.

Usage: .venv/bin/python bench/bench_migrations.py [--sizes 100,1000] [--repeat 5] [--json results.json]
Server: BENCH_DB_URL or DB_URL (an admin URL: the bench creates and drops databases), else embedded PostgreSQL.
"""
from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from urllib.parse import urlsplit, urlunsplit

import psycopg2

from bench_server import start_server

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
sys.path.insert(0, str(SCRIPTS))
from migration_core import db  # noqa: E402


def in_public(template: str) -> str:
    """Return one of the tool's statements with its history tables in schema public, as plain SQL text."""
    return template.format(schema='"public"', history='"public"."schema_migrations"',
                           history_index='"idx_schema_migrations_version_dir"',
                           snapshots='"public"."schema_migrations_snapshots"')


# The floor's rollback row: the tool's supersede, then a plain insert (the tool also checks its runner lock).
FLOOR_RECORD = db.SUPERSEDE_SUCCESS + ("INSERT INTO {history} (version, name, checksum, direction, status) "
                                       "VALUES (%(version)s, %(name)s, %(checksum)s, %(direction)s, 'success')")
CREATE_HISTORY_TABLE, RECORD_SUCCESS, SELECT_HISTORY = map(in_public, (db.CREATE_HISTORY_TABLE, FLOOR_RECORD,
                                                                     db.SELECT_HISTORY))

PENDING = 10  # migrations left pending for "plan with 10 pending" and undone by "rollback of the last 10"
TARGETS = {("apply_all", 1000): 1.2, ("plan_all_applied", 1000): 1.5}  # max ratio to floor, from issue 2

# The floor process: only what any tool must do. argv: url, mode (read | apply | rollback), migration files.
FLOOR_CODE = f"""
import sys, psycopg2
url, mode, *paths = sys.argv[1:]
conn = psycopg2.connect(url)
conn.autocommit = mode == "read"  # like plan: no BEGIN/COMMIT round trips for a read
cur = conn.cursor()
if mode in ("read", "rollback"):
    cur.execute({SELECT_HISTORY!r})
    cur.fetchall()
else:
    cur.execute({CREATE_HISTORY_TABLE!r})
    conn.commit()
if paths:
    import hashlib
    insert = "INSERT INTO schema_migrations (version, name, checksum, direction, status) " \\
             "VALUES (%(version)s, %(name)s, %(checksum)s, %(direction)s, 'success')"
    record = insert if mode == "apply" else {RECORD_SUCCESS!r}
    direction = "up" if mode == "apply" else "down"
    for path in paths:
        text = open(path, encoding="utf-8").read()
        up, _, down = text.partition("-- DIRECTION: down")
        version = path.rsplit("/", 1)[-1][:-4]
        cur.execute(up if mode == "apply" else down)
        cur.execute(record, dict(version=version, name=version[16:], direction=direction,
                                 checksum=hashlib.sha256(text.encode()).hexdigest()))
        conn.commit()
conn.close()
"""


def admin_execute(admin_url: str, sql: str) -> list[tuple]:
    """Run one statement outside a transaction (CREATE/DROP DATABASE) and return its rows."""
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def create_database(admin_url: str) -> str:
    """Create a fresh, empty database and return its URL."""
    name = "bench_" + uuid.uuid4().hex[:12]
    admin_execute(admin_url, f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(admin_url)._replace(path="/" + name))


def drop_database(admin_url: str, url: str) -> None:
    """Drop the database a URL from create_database points at."""
    admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{urlsplit(url).path[1:]}" WITH (FORCE)')


def write_migrations(directory: Path, n: int) -> list[Path]:
    """Write n migrations, each one table plus one index, with a down that drops the table."""
    start = datetime(2024, 1, 1)
    paths = []
    for i in range(n):
        name = f"create_bench_{i:05d}"
        path = directory / f"{(start + timedelta(seconds=i)):%Y%m%d_%H%M%S}_{name}.sql"
        path.write_text(
            f"-- MIGRATION: {name}\n-- DIRECTION: up\n"
            f"CREATE TABLE bench_{i:05d} (id BIGSERIAL PRIMARY KEY, email TEXT NOT NULL, "
            f"created_at TIMESTAMPTZ NOT NULL DEFAULT now());\n"
            f"CREATE INDEX idx_bench_{i:05d}_email ON bench_{i:05d} (email);\n\n"
            f"-- DIRECTION: down\nDROP TABLE bench_{i:05d};\n", encoding="utf-8")
        paths.append(path)
    return paths


def timed(argv: list[str], url: str, cwd: Path) -> float:
    """Run one subprocess with DB_URL=url; return its wall time in seconds; fail loudly on a non-zero exit."""
    env = {**os.environ, "DB_URL": url}
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv[:2])} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return elapsed


def tool(script: str, url: str, migrations: Path, *args: str) -> float:
    """Time one run of scripts/<script>_migrations.py (human output, as a person would run it)."""
    argv = [sys.executable, str(SCRIPTS / f"{script}_migrations.py"), "--migrations-dir", str(migrations), *args]
    return timed(argv, url, migrations.parent)


def floor(mode: str, url: str, migrations: Path, paths: list[Path] = ()) -> float:
    """Time one run of the floor process (see FLOOR_CODE) over the given migration files."""
    return timed([sys.executable, "-c", FLOOR_CODE, url, mode, *map(str, paths)], url, migrations.parent)


def bench_size(admin_url: str, n: int, repeat: int, workdir: Path) -> list[dict]:
    """Run every measurement for one size and return one row per measurement."""
    print(f"measuring N={n} ...", file=sys.stderr, flush=True)
    migrations = workdir / f"migrations_{n}"
    migrations.mkdir()
    paths = write_migrations(migrations, n)
    keep = paths[-PENDING - 1].stem  # the last version that stays applied
    apply_runs, apply_floor, applied = measure_apply(admin_url, migrations, paths, repeat)
    try:
        plan_runs, unchecked_runs, plan_floor = measure_plan(applied, migrations, repeat)
        rollback_runs, rollback_floor = measure_rollback(applied, migrations, paths[-PENDING:][::-1], keep, repeat)
        live_rows = measure_live_risk(applied, workdir, n, repeat)
    finally:
        drop_database(admin_url, applied)
    pending_runs = measure_plan_pending(admin_url, migrations, keep, repeat)
    return [result_row(n, "apply_all", apply_runs, apply_floor),
            result_row(n, "plan_all_applied", plan_runs, plan_floor),
            result_row(n, "plan_all_applied_no_schema_check", unchecked_runs, plan_floor),
            result_row(n, f"plan_{PENDING}_pending", pending_runs, plan_floor),
            result_row(n, f"rollback_last_{PENDING}", rollback_runs, rollback_floor), *live_rows]


def measure_apply(admin_url: str, migrations: Path, paths: list[Path], repeat: int) -> tuple[list, list, str]:
    """Apply from scratch: tool and floor alternate on fresh databases, back to back after an untimed warm-up.

    The databases are created before and dropped after the timed runs: DROP DATABASE forces a checkpoint, and on
    the 2-core VM this was written on, the first seconds of work after a pause often ran 2-3x slower, which would
    favour whoever runs second. Returns both timings and the URL of one fully applied database, kept for the next measurements."""
    warm, *fresh = [create_database(admin_url) for _ in range(2 * repeat + 1)]
    runs: dict[str, list[float]] = {"tool": [], "floor": []}
    try:
        floor("apply", warm, migrations, paths)
        for i in range(repeat):
            pair = [("tool", lambda: tool("apply", fresh[2 * i], migrations)),
                    ("floor", lambda: floor("apply", fresh[2 * i + 1], migrations, paths))]
            for key, measure in pair if i % 2 == 0 else pair[::-1]:
                runs[key].append(measure())
    finally:
        for url in [warm, *fresh[1:]]:
            drop_database(admin_url, url)
    return runs["tool"], runs["floor"], fresh[0]


def measure_plan(url: str, migrations: Path, repeat: int) -> tuple[list[float], list[float], list[float]]:
    """Plan with everything applied (the history holds exactly N rows), the same without the live-schema check
    (issue 4's snapshot comparison), and the bare read of that history."""
    tool("plan", url, migrations)  # untimed warm-up after the drops
    runs, unchecked_runs, floor_runs = [], [], []
    for _ in range(repeat):
        runs.append(tool("plan", url, migrations))
        unchecked_runs.append(tool("plan", url, migrations, "--no-schema-check"))
        floor_runs.append(floor("read", url, migrations))
    return runs, unchecked_runs, floor_runs


def measure_rollback(url: str, migrations: Path, last: list[Path], keep: str,
                     repeat: int) -> tuple[list[float], list[float]]:
    """Roll back the last 10 (tool: rollback --to keep; floor: the same downs); each run follows an untimed apply."""
    runs, floor_runs = [], []
    for _ in range(repeat):
        tool("apply", url, migrations)
        runs.append(tool("rollback", url, migrations, "--to", keep))
        tool("apply", url, migrations)
        floor_runs.append(floor("rollback", url, migrations, last))
    return runs, floor_runs


def write_index_migrations(directory: Path, n: int) -> None:
    """Write 10 pending migrations that each index an existing bench table, and one indexing all n of them."""
    directory.mkdir()
    for i in range(PENDING):
        (directory / f"20990101_0000{i:02d}_index_bench_{i:05d}.sql").write_text(
            f"-- DIRECTION: up\nCREATE INDEX idx_live_{i:05d} ON bench_{i:05d} (created_at);\n", encoding="utf-8")
    every = "".join(f"CREATE INDEX idx_all_{i:05d} ON bench_{i:05d} (created_at);\n" for i in range(n))
    (directory / "20990102_000000_index_every_bench_table.sql").write_text(f"-- DIRECTION: up\n{every}",
                                                                          encoding="utf-8")


def measure_live_risk(url: str, workdir: Path, n: int, repeat: int) -> list[dict]:
    """Time the risk judgement of pending migrations that touch existing tables: static (the floor) and live, as
    plan does it (inside its read) and as apply does it (in a bounded read of its own); check that each live
    judgement ran exactly one catalog query, however many tables it touched."""
    from migration_core import commands, parsing, statements
    from migration_core.model import RunOptions
    from migration_core.risk import assess_run, read_table_stats
    directory = workdir / f"live_risk_{n}"
    write_index_migrations(directory, n)
    every = parsing.load_migrations(directory)
    rows = []
    conn = psycopg2.connect(url)
    try:
        for label, migrations in ((f"risk_{PENDING}_pending", every[:PENDING]), (f"risk_{n}_tables", every[PENDING:])):
            static, plan_runs, apply_runs, queries = [], [], [], []

            def counted(tables: list) -> dict:
                queries.append(len(tables))  # one call of the reader is one catalog query
                return read_table_stats(conn, tables)
            for attempt in range(repeat + 1):  # the first round is an untimed warm-up (imports, caches)
                for runs, judge in ((static, lambda: assess_run(migrations, conn.server_version)),
                                    (plan_runs, lambda: assess_run(migrations, conn.server_version,
                                                                   read_tables=counted)),
                                    (apply_runs, lambda: commands.assess_run_risks(conn, "apply", migrations,
                                                                                   RunOptions()))):
                    statements.parse_raw.cache_clear()  # each judgement parses, as one process would
                    started = time.perf_counter()
                    judge()
                    if attempt:
                        runs.append(time.perf_counter() - started)
                    conn.rollback()
            if len(queries) != repeat + 1:
                sys.exit(f"{label}: expected one catalog query per judgement, saw {len(queries)} in {repeat}")
            tables = len({ref for m in migrations for ref in statements_tables(m)})
            rows += [result_row(n, f"{label}_live_plan", plan_runs, static) | {"catalog_queries": 1, "tables": tables},
                     result_row(n, f"{label}_live_apply", apply_runs, static) | {"catalog_queries": 1,
                                                                                 "tables": tables}]
    finally:
        conn.close()
    return rows


def statements_tables(migration) -> list[str]:
    """Return the tables a bench index migration names (one CREATE INDEX ... ON table per line)."""
    return [line.split(" ON ")[1].split()[0] for line in migration.up_sql.splitlines() if " ON " in line]


def measure_plan_pending(admin_url: str, migrations: Path, keep: str, repeat: int) -> list[float]:
    """Plan with the last 10 pending: a database applied up to `keep` with --target (untimed, just before)."""
    url = create_database(admin_url)
    try:
        tool("apply", url, migrations, "--target", keep)
        return [tool("plan", url, migrations) for _ in range(repeat)]
    finally:
        drop_database(admin_url, url)


def result_row(n: int, measurement: str, runs: list[float], floor_runs: list[float]) -> dict:
    median, floor_median = statistics.median(runs), statistics.median(floor_runs)
    row = {"size": n, "measurement": measurement, "median_s": round(median, 4), "floor_s": round(floor_median, 4),
           "ratio": round(median / floor_median, 2), "runs_s": [round(r, 4) for r in runs],
           "floor_runs_s": [round(r, 4) for r in floor_runs]}
    target = TARGETS.get((measurement, n))
    if target is not None:
        row["target_ratio"] = target
        row["verdict"] = "PASS" if row["ratio"] <= target else "MISS"
    return row


def warm_up(admin_url: str, workdir: Path) -> None:
    """Run each kind of process once, untimed, so compiled bytecode and OS caches are warm."""
    compileall.compile_dir(str(SCRIPTS), quiet=1)  # written even under PYTHONDONTWRITEBYTECODE
    migrations = workdir / "warmup"
    migrations.mkdir()
    write_migrations(migrations, 2)
    url = create_database(admin_url)
    tool("apply", url, migrations)
    tool("plan", url, migrations)
    tool("rollback", url, migrations)
    floor("read", url, migrations)
    drop_database(admin_url, url)


def print_table(rows: list[dict]) -> None:
    print(f"{'size':>5}  {'measurement':<33} {'median s':>9} {'floor s':>9} {'ratio':>6}  target")
    for r in rows:
        target = f"<= {r['target_ratio']}x {r['verdict']}" if "verdict" in r else ""
        print(f"{r['size']:>5}  {r['measurement']:<33} {r['median_s']:>9.3f} {r['floor_s']:>9.3f} "
              f"{r['ratio']:>5.2f}x  {target}")
    for r in rows:
        if "catalog_queries" in r:  # the risk rows: their floor is the static judgement
            print(f"{r['measurement']}: the live judgement adds {(r['median_s'] - r['floor_s']) * 1000:.1f} ms to "
                  f"the static one ({r['floor_s'] * 1000:.1f} ms), with {r['catalog_queries']} catalog query for "
                  f"{r['tables']} table(s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,1000", help="comma-separated migration counts (default 100,1000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement; the median is reported")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results to FILE as JSON")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if min(sizes) <= PENDING:
        parser.error(f"every size must exceed {PENDING}")
    admin_url, stop_server = start_server("migbench-")
    try:
        server_version = admin_execute(admin_url, "SHOW server_version")[0][0]
        print(f"PostgreSQL {server_version}, Python {platform.python_version()} ({sys.executable}), "
              f"{os.cpu_count()} CPUs, median of {args.repeat}", flush=True)
        with tempfile.TemporaryDirectory(prefix="migbench-") as tmp:
            warm_up(admin_url, Path(tmp))
            rows = [row for n in sizes for row in bench_size(admin_url, n, args.repeat, Path(tmp))]
    finally:
        stop_server()
    print_table(rows)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"postgresql": server_version, "python": platform.python_version(),
                                         "cpus": os.cpu_count(), "repeat": args.repeat, "results": rows},
                                        indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
