"""Fault injection (issue 9): runners killed with SIGKILL at random points, their session terminated by the server,
the server restarted mid-run. After every fault the history must match the database, and the next apply finishes.

The invariant, checked after each fault:
- a transactional migration is all or nothing, and has a success 'up' row exactly when its tables and rows are there;
- a non-transactional migration with a success row has every index present and valid (pg_index.indisvalid); without
  one, its latest row says how far it got ("k of n statements completed") and never claims more than is there:
  the first k indexes are present and valid, and the indexes present are a prefix of its statements;
- no version has two success rows, and every row belongs to a known version and direction 'up'.
After the fault, apply runs again without one: exit 0, each version applied exactly once (one success row), every
object present and valid. An index left INVALID by an interrupted CREATE INDEX CONCURRENTLY makes that apply fail,
naming the index (success is never recorded over it); the test then drops it as a user would, and applies again.

The short form runs in `make test`. SOAK=1 (`make soak`) runs the long form: 200 migrations, 24 kills and more
terminations and restarts. SOAK_SEED=N replays the random choices of a run; every failure prints its seed.
The tests run on a cluster of their own (tests/fault_server.py), so restarting it disturbs no other test.
"""
from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import pytest

from conftest import SCRIPTS, database_url, migration, query
from fault_server import FaultServer, fault_server

pytestmark = pytest.mark.fault_injection

SOAK = os.environ.get("SOAK") == "1"
SEED = int(os.environ.get("SOAK_SEED") or random.SystemRandom().randrange(1_000_000))
MIGRATIONS = 200 if SOAK else 40
KILL_TRIALS = 24 if SOAK else 4
TERMINATE_TRIALS = 6 if SOAK else 1
RESTART_TRIALS = 6 if SOAK else 1  # -m fast and -m immediate in turn
ROWS = 2000  # per table: enough that CREATE INDEX CONCURRENTLY takes a moment to interrupt
NON_TRANSACTIONAL_EVERY = 5
APPLICATION_NAME = "migration-assistant"
RUN_TIMEOUT_S = 300
WAIT_STEP_S = 0.005
COUNT_RE = re.compile(r"(\d+) of (\d+) statements? completed")


# ---- the workload -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Spec:
    """One migration file and what it leaves in the database once fully applied."""
    version: str
    transactional: bool
    tables: tuple[tuple[str, int], ...] = ()  # (table, rows) of a transactional migration
    indexes: tuple[str, ...] = ()  # one per statement of a non-transactional migration, in order
    text: str = ""


def table_sql(table: str, rows: int) -> str:
    return (f"CREATE TABLE {table} (id int PRIMARY KEY, v text NOT NULL);\n"
            f"INSERT INTO {table} SELECT g, md5(g::text) FROM generate_series(1, {rows}) AS g;")


def transactional_spec(i: int, version: str) -> Spec:
    """Return a CREATE TABLE + INSERT migration; every third one creates a second table too (more statements)."""
    tables = ((f"t{i:03d}", ROWS),) + (((f"t{i:03d}_b", ROWS // 2),) if i % 3 == 0 else ())
    up = "\n".join(table_sql(table, rows) for table, rows in tables)
    down = "\n".join(f"DROP TABLE {table};" for table, _ in reversed(tables))
    return Spec(version, True, tables=tables, text=migration(up, down))


def non_transactional_spec(i: int, version: str, earlier: list[str]) -> Spec:
    """Return a `-- TRANSACTION: none` migration of 2 or 3 CREATE INDEX CONCURRENTLY IF NOT EXISTS statements."""
    targets = earlier[-(2 + i % 2):]
    indexes = tuple(f"ix{i:03d}_{k}" for k in range(len(targets)))
    up = "\n".join(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {index} ON {table} (v);"
                   for index, table in zip(indexes, targets))
    down = "\n".join(f"DROP INDEX CONCURRENTLY IF EXISTS {index};" for index in reversed(indexes))
    return Spec(version, False, indexes=indexes, text="-- TRANSACTION: none\n" + migration(up, down))


def build_workload(count: int) -> list[Spec]:
    """Return `count` migrations: tables, and every fifth one concurrent indexes on the tables before it."""
    specs: list[Spec] = []
    earlier: list[str] = []
    for i in range(count):
        version = f"20260401_{i:06d}_step_{i:03d}"
        if i % NON_TRANSACTIONAL_EVERY == NON_TRANSACTIONAL_EVERY - 1:
            specs.append(non_transactional_spec(i, version, earlier))
        else:
            specs.append(transactional_spec(i, version))
            earlier.append(f"t{i:03d}")
    return specs


# ---- what the database holds --------------------------------------------------------------------------------

@dataclass(frozen=True)
class HistoryRow:
    id: int
    version: str
    direction: str
    status: str
    error_message: str | None


@dataclass(frozen=True)
class Observed:
    """The history rows and the workload's objects as they are in the database now."""
    rows: list[HistoryRow]
    tables: dict[str, int]  # table -> row count
    indexes: dict[str, bool]  # index -> indisvalid

    def successes(self, version: str) -> int:
        return sum(1 for r in self.rows if r.version == version and r.direction == "up" and r.status == "success")


class Database:
    """One trial database, watched through a single autocommit connection (polling must not fork a backend
    per look on a busy 2-core machine); it reconnects once after a restart or termination dropped it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: psycopg2.extensions.connection | None = None

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        for attempt in range(2):
            try:
                if self.conn is None or self.conn.closed:
                    self.conn = psycopg2.connect(self.url, connect_timeout=10)
                    self.conn.autocommit = True
                with self.conn.cursor() as cur:
                    cur.execute(sql, params)
                    return cur.fetchall() if cur.description else []
            except psycopg2.Error as err:
                dropped = self.conn is None or self.conn.closed or err.pgcode is None or err.pgcode.startswith("57P")
                if attempt or not dropped:
                    raise
                self.close()  # the server dropped this session: look again on a new one
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None and not self.conn.closed:
            self.conn.close()
        self.conn = None


def observe(db: Database, specs: list[Spec]) -> Observed:
    """Read the history and the workload's tables (with row counts) and indexes (with validity).

    Called only once no runner session is left, so the separate reads see one state.
    """
    rows: list[HistoryRow] = []
    if db.rows("SELECT to_regclass('public.schema_migrations') IS NOT NULL")[0][0]:
        rows = [HistoryRow(*r) for r in db.rows("SELECT id, version, direction, status, error_message "
                                                "FROM public.schema_migrations ORDER BY id")]
    present = {r[0] for r in db.rows("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    wanted = [table for spec in specs for table, _ in spec.tables if table in present]
    counts = db.rows(" UNION ALL ".join(f"SELECT '{t}', count(*) FROM public.{t}" for t in wanted)) if wanted else []
    indexes = db.rows("SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                      "JOIN pg_namespace n ON n.oid = c.relnamespace "
                      "WHERE n.nspname = 'public' AND c.relname ~ '^ix[0-9]'")
    return Observed(rows, dict(counts), dict(indexes))


# ---- the invariant ------------------------------------------------------------------------------------------

def invariant_violations(specs: list[Spec], seen: Observed) -> list[str]:
    """Return every way the history and the database disagree (empty when the invariant holds)."""
    known = {spec.version for spec in specs}
    problems = [f"unexpected history row {row}" for row in seen.rows
                if row.version not in known or row.direction != "up" or
                row.status not in ("success", "failed", "superseded")]
    for spec in specs:
        if seen.successes(spec.version) > 1:
            problems.append(f"{spec.version}: {seen.successes(spec.version)} success rows")
        check = transactional_violations if spec.transactional else non_transactional_violations
        problems += [f"{spec.version}: {problem}" for problem in check(spec, seen)]
    return problems


def transactional_violations(spec: Spec, seen: Observed) -> list[str]:
    """All or nothing, and a success row exactly when it is all there."""
    present = {table: seen.tables[table] for table, _ in spec.tables if table in seen.tables}
    complete = all(seen.tables.get(table) == rows for table, rows in spec.tables)
    if seen.successes(spec.version):
        return [] if complete else [f"success row, but the tables are {present} (expected {dict(spec.tables)})"]
    if present:
        return [f"no success row, but tables {present} exist ({'all' if complete else 'partly'} applied)"]
    return []


def non_transactional_violations(spec: Spec, seen: Observed) -> list[str]:
    """Success means every index valid; otherwise the latest row's count never claims more than is there."""
    present = [index in seen.indexes for index in spec.indexes]
    valid = [seen.indexes.get(index) is True for index in spec.indexes]
    state = {index: ("valid" if seen.indexes[index] else "INVALID") for index in spec.indexes if index in seen.indexes}
    if seen.successes(spec.version):
        return [] if all(valid) else [f"success row, but the indexes are {state} (expected {list(spec.indexes)})"]
    problems = []
    if present != sorted(present, reverse=True):  # statements run in order: what exists is a prefix
        problems.append(f"indexes {state} are not a prefix of {list(spec.indexes)}")
    rows = [r for r in seen.rows if r.version == spec.version and r.status != "superseded"]
    if not rows:
        return problems + ([f"no history row, but indexes {state} exist"] if any(present) else [])
    latest = rows[-1]
    counted = COUNT_RE.search(latest.error_message or "")
    if counted is None:
        return problems + [f"its {latest.status} row does not say how far it got: {latest.error_message!r}"]
    done, total = int(counted[1]), int(counted[2])
    if total != len(spec.indexes):
        problems.append(f"its row counts {total} statements, the file has {len(spec.indexes)}")
    if not all(valid[:done]):
        problems.append(f"its row claims {done} of {total} statements completed, but the indexes are {state}")
    return problems


def completion_violations(specs: list[Spec], seen: Observed) -> list[str]:
    """Return what is missing after a finished apply: one success row each, every object present and valid."""
    problems = [f"{spec.version}: {seen.successes(spec.version)} success rows" for spec in specs
                if seen.successes(spec.version) != 1]
    problems += [f"table {table} has {seen.tables.get(table)} rows, expected {rows}"
                 for spec in specs for table, rows in spec.tables if seen.tables.get(table) != rows]
    problems += [f"index {index} is {'missing' if index not in seen.indexes else 'INVALID'}"
                 for spec in specs for index in spec.indexes if seen.indexes.get(index) is not True]
    return problems


# ---- driving the runner -------------------------------------------------------------------------------------

@dataclass
class Trial:
    """One database and the story of what was done to it, told in every failure message."""
    name: str
    seed: int
    db: Database
    directory: Path
    specs: list[Spec]
    database: str
    story: list[str] = field(default_factory=list)

    def note(self, line: str) -> None:
        self.story.append(line)

    def explain(self) -> str:
        return (f"\n[{self.name}] seed {self.seed}: replay with SOAK_SEED={SEED}{' SOAK=1' if SOAK else ''}\n  "
                + "\n  ".join(self.story))

    def holds(self, after: str) -> Observed:
        """Assert the invariant and return what was seen."""
        seen = observe(self.db, self.specs)
        problems = invariant_violations(self.specs, seen)
        assert not problems, f"invariant broken after {after}:\n  " + "\n  ".join(problems) + self.explain()
        return seen


def start_apply(url: str, directory: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "DB_URL"} | {"DB_URL": url}
    return subprocess.Popen([sys.executable, str(SCRIPTS / "apply_migrations.py"), "--json",
                             "--migrations-dir", str(directory), "--lock-timeout", "60", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(runner: subprocess.Popen[str]) -> tuple[int, dict, str]:
    """Wait for the runner; return its exit code, its JSON document ({} if none) and stderr."""
    out, err = runner.communicate(timeout=RUN_TIMEOUT_S)
    try:
        document = json.loads(out)
    except ValueError:
        document = {}
    return runner.returncode, document, err


def run_plan(trial: Trial) -> dict:
    """Return plan's JSON document for the trial's database (it must exit 0)."""
    env = {k: v for k, v in os.environ.items() if k != "DB_URL"} | {"DB_URL": trial.db.url}
    done = subprocess.run([sys.executable, str(SCRIPTS / "plan_migrations.py"), "--json", "--migrations-dir",
                           str(trial.directory)], env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:] + trial.explain()
    return json.loads(done.stdout)


def runner_backends(db: Database) -> list[tuple[int, str, str]]:
    """Return (pid, state, query) of the runner sessions connected to this trial's database."""
    return db.rows("SELECT pid, state, query FROM pg_stat_activity WHERE application_name = %s "
                   "AND datname = current_database() AND pid <> pg_backend_pid()", (APPLICATION_NAME,))


def end_runner_sessions(db: Database, terminate: bool) -> None:
    """Wait until the runner sessions are gone, ending them at once when asked (else they finish on their own)."""
    deadline = time.monotonic() + 60
    while backends := runner_backends(db):
        if terminate or time.monotonic() > deadline:
            db.rows("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s "
                    "AND datname = current_database() AND pid <> pg_backend_pid()", (APPLICATION_NAME,))
        assert time.monotonic() < deadline + 30, f"runner sessions never went away: {backends}"
        time.sleep(0.02)


def count_successes(db: Database) -> int:
    if not db.rows("SELECT to_regclass('public.schema_migrations') IS NOT NULL")[0][0]:
        return 0
    return db.rows("SELECT count(*) FROM public.schema_migrations WHERE status = 'success'")[0][0]


def wait_for_successes(trial: Trial, runner: subprocess.Popen[str], count: int) -> bool:
    """Wait until `count` migrations have success rows; False if the runner ended first."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        if count_successes(trial.db) >= count:
            return True
        if runner.poll() is not None:
            return False
        time.sleep(WAIT_STEP_S * 4)
    raise AssertionError(f"the runner never reached {count} applied migrations" + trial.explain())


def wait_for_active_statement(trial: Trial, runner: subprocess.Popen[str],
                              containing: str = "") -> tuple[int, str] | None:
    """Return (pid, query) of the runner session running a statement, or None if the runner ended first."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        for pid, state, sql in runner_backends(trial.db):
            # Not the lock connection, which runs only its advisory lock statements.
            if state == "active" and "advisory" not in sql.lower() and containing in sql:
                return pid, sql
        if runner.poll() is not None:
            return None
        time.sleep(WAIT_STEP_S)
    raise AssertionError("the runner never ran a statement" + trial.explain())


def invalid_indexes(db: Database) -> list[str]:
    return [r[0] for r in db.rows("SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                                  "WHERE NOT i.indisvalid ORDER BY 1")]


def apply_to_the_end(trial: Trial) -> None:
    """Apply without faults until done; drop an INVALID index the failure names, as the user would."""
    before = {spec.version for spec in trial.specs if observe(trial.db, trial.specs).successes(spec.version)}
    applied: list[str] = []
    for attempt in range(4):
        invalid = invalid_indexes(trial.db)
        code, document, err = finish(start_apply(trial.db.url, trial.directory))
        applied += document.get("applied", [])
        trial.note(f"apply #{attempt + 1}: exit {code}, applied {len(document.get('applied', []))}, "
                   f"error {document.get('error')}, invalid indexes before it {invalid}")
        if code == 0:
            break
        message = json.dumps(document.get("error"))
        # Refusing the run as schema drift would blame the user for what the tool's own interrupted run left.
        assert invalid and any(index in message for index in invalid) and "schema_drift" not in message, (
            f"the next apply failed (exit {code}) and not over an INVALID index: {document or err[-3000:]}"
            + trial.explain())
        trial.holds(f"apply #{attempt + 1} failed over an INVALID index")
        for index in invalid:
            trial.db.rows(f"DROP INDEX CONCURRENTLY IF EXISTS public.{index}")
        trial.note(f"dropped INVALID {invalid}")
    assert code == 0 and document.get("ok") is True, f"apply never finished: {document}" + trial.explain()
    expected = [spec.version for spec in trial.specs if spec.version not in before]
    assert sorted(applied) == expected, (f"apply runs reported {applied}, expected each of {expected} once"
                                         + trial.explain())
    seen = trial.holds("the final apply")
    problems = completion_violations(trial.specs, seen)
    assert not problems, "after the final apply:\n  " + "\n  ".join(problems) + trial.explain()
    plan = run_plan(trial)
    assert plan.get("pending") == [] and plan.get("failed") == [], f"plan after it: {plan}" + trial.explain()
    print(trial.explain())  # what this trial went through: shown by `make soak` (pytest -s), or on a failure


# ---- fixtures -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server() -> Iterator[FaultServer]:
    with fault_server() as started:
        yield started


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Spec], Path]:
    specs = build_workload(MIGRATIONS)
    directory = tmp_path_factory.mktemp("fault_migrations")
    for spec in specs:
        (directory / f"{spec.version}.sql").write_text(spec.text, encoding="utf-8")
    return specs, directory


def create_trial(server: FaultServer, workload: tuple[list[Spec], Path], name: str, number: int) -> Trial:
    """Create a fresh database on the fault server and return a trial on it."""
    database = "f_" + uuid.uuid4().hex[:12]
    query(server.url, f'CREATE DATABASE "{database}"')
    specs, directory = workload
    return Trial(f"{name} #{number}", SEED * 1000 + number, Database(database_url(server.url, database)),
                 directory, specs, database)


def drop_trial(server: FaultServer, trial: Trial) -> None:
    trial.db.close()
    query(server.url, f'DROP DATABASE IF EXISTS "{trial.database}" WITH (FORCE)')


@pytest.fixture
def new_trial(server: FaultServer, workload: tuple[list[Spec], Path],
              request: pytest.FixtureRequest) -> Iterator[Callable[[int], Trial]]:
    """Return a factory of trials, each on a fresh database of the fault server; drop them afterwards."""
    made: list[Trial] = []

    def make(number: int) -> Trial:
        if made:  # the previous trial is over: keep the cluster (in memory) small during a long soak
            drop_trial(server, made.pop())
        made.append(create_trial(server, workload, request.node.name, number))
        return made[-1]
    yield make
    for trial in made:
        drop_trial(server, trial)


@dataclass(frozen=True)
class Timing:
    """How long an uninterrupted apply of the workload takes here: to its first success row, and in all."""
    first_success_s: float
    total_s: float
    trial: Trial  # the database it applied to, for the test that checks it
    exit_code: int
    document: dict

    @property
    def per_migration_s(self) -> float:
        return (self.total_s - self.first_success_s) / MIGRATIONS


@pytest.fixture(scope="module")
def timing(server: FaultServer, workload: tuple[list[Spec], Path]) -> Iterator[Timing]:
    """Time one uninterrupted apply of the whole workload (kill delays scale with it)."""
    trial = create_trial(server, workload, "an apply without faults", 0)
    try:
        started = time.monotonic()
        runner = start_apply(trial.db.url, trial.directory)
        assert wait_for_successes(trial, runner, 1), finish(runner)
        first = time.monotonic() - started
        code, document, err = finish(runner)
        trial.note(f"apply: exit {code}, applied {len(document.get('applied', []))}, error {document.get('error')}, "
                   f"stderr {err[-2000:]!r}")
        yield Timing(first, time.monotonic() - started, trial, code, document)
    finally:
        drop_trial(server, trial)


# ---- the tests ----------------------------------------------------------------------------------------------

def test_an_apply_without_faults_satisfies_the_invariant_and_applies_everything(timing):
    trial = timing.trial
    trial.note(f"{MIGRATIONS} migrations: first success after {timing.first_success_s:.1f}s, "
               f"all in {timing.total_s:.1f}s")
    assert timing.exit_code == 0 and timing.document["ok"] is True, trial.explain()
    assert timing.document["applied"] == [spec.version for spec in trial.specs], trial.explain()
    seen = trial.holds("an apply without faults")
    problems = completion_violations(trial.specs, seen)
    assert not problems, "after the apply:\n  " + "\n  ".join(problems) + trial.explain()
    assert [r.version for r in seen.rows] == [spec.version for spec in trial.specs], trial.explain()


def test_runners_killed_at_random_points_leave_history_matching_the_database(new_trial, timing):
    for number in range(1, KILL_TRIALS + 1):
        trial = new_trial(number)
        rng = random.Random(trial.seed)
        if rng.random() < 1 / 3:  # start where a finished run stopped, with its schema snapshot recorded
            apply_up_to(trial, rng.randrange(len(trial.specs) // 2))
        for kill in range(rng.choice([1, 1, 2])):  # a second kill starts from what the first one left
            kill_at_random(trial, rng, timing)
            trial.holds(f"SIGKILL {kill + 1}")
        apply_to_the_end(trial)


def apply_up_to(trial: Trial, last: int) -> None:
    """Apply without faults up to and including migration number `last`."""
    code, document, err = finish(start_apply(trial.db.url, trial.directory, "--target", trial.specs[last].version))
    trial.note(f"apply --target {trial.specs[last].version}: exit {code}, error {document.get('error')}")
    assert code == 0, f"{document or err[-3000:]}" + trial.explain()


def kill_at_random(trial: Trial, rng: random.Random, timing: Timing) -> None:
    """SIGKILL a runner at a random point of its run, then deal with the session it leaves behind.

    The point: one time in six a random delay from its start (before or while it connects and takes the lock);
    otherwise a random delay after a random number of its migrations committed, as delays from the start alone
    land after the end whenever the machine's load changes; one time in four then at the next CREATE INDEX
    CONCURRENTLY. The orphaned session is then terminated at once (as when the client host dies and TCP
    keepalive ends it) or left to finish its statement; either way the check waits until it is gone.
    """
    already = count_successes(trial.db)
    if already == len(trial.specs):
        trial.note("nothing left to interrupt")
        return
    early = rng.random() < 1 / 6
    after = already + rng.randrange(len(trial.specs) - already)
    delay = rng.uniform(0, timing.first_success_s if early else 3 * timing.per_migration_s)
    in_index_build = not early and rng.random() < 0.25
    terminate = rng.random() < 0.5
    runner = start_apply(trial.db.url, trial.directory)
    if not early and after > already:
        wait_for_successes(trial, runner, after)
    elif not early:  # in its first migration: once it runs a statement
        wait_for_active_statement(trial, runner)
    time.sleep(delay)
    inside = wait_for_active_statement(trial, runner, "CREATE INDEX CONCURRENTLY") if in_index_build else None
    runner.send_signal(signal.SIGKILL)  # a no-op when the runner already finished (the story says so)
    code, _, _ = finish(runner)
    end_runner_sessions(trial.db, terminate)
    seen = observe(trial.db, trial.specs)
    where = "from its start" if early else f"after {after} successes"
    trial.note(f"SIGKILL {delay:.2f}s {where}{' inside ' + repr(inside[1][:70]) if inside else ''} (exit {code}), "
               f"orphaned session {'terminated' if terminate else 'left to finish'}: {len(seen.rows)} history rows, "
               f"{sum(seen.successes(s.version) for s in trial.specs)} successes, "
               f"invalid indexes {[i for i, ok in seen.indexes.items() if not ok]}")


def test_a_run_killed_inside_its_first_migration_after_a_finished_run_does_not_block_the_next_apply(new_trial):
    """The finished run recorded a schema snapshot; the killed run committed nothing but left a non-transactional
    migration's first index behind. That index is the tool's own doing, recorded in its history row, not drift."""
    trial = new_trial(90)
    rng = random.Random(trial.seed)
    first = rng.choice([i for i, spec in enumerate(trial.specs) if not spec.transactional])
    apply_up_to(trial, first - 1)
    second = trial.specs[first].indexes[1]
    table = re.search(rf"{second} ON (\w+)", trial.specs[first].text).group(1)
    # Hold the second index's table, so the runner is certainly inside that build (waiting for the lock, within its
    # lock_timeout) when it is killed: a build on a small table could otherwise finish between two looks.
    blocker = psycopg2.connect(trial.db.url, connect_timeout=10)
    try:
        with blocker.cursor() as cur:
            cur.execute(f"LOCK TABLE {table} IN SHARE UPDATE EXCLUSIVE MODE")
        runner = start_apply(trial.db.url, trial.directory)
        inside = wait_for_active_statement(trial, runner, second)
        runner.send_signal(signal.SIGKILL)
        code, _, _ = finish(runner)
    finally:
        blocker.close()
    end_runner_sessions(trial.db, terminate=False)
    trial.note(f"SIGKILL inside {inside and inside[1]!r} (exit {code})")
    assert inside is not None and code == -signal.SIGKILL, trial.explain()
    seen = trial.holds("the SIGKILL")
    assert seen.indexes.get(trial.specs[first].indexes[0]) is True, trial.explain()  # statement 1 stays applied
    apply_to_the_end(trial)


def test_a_terminated_runner_session_exits_4_listing_what_was_applied(new_trial):
    for number in range(1, TERMINATE_TRIALS + 1):
        trial = new_trial(100 + number)
        rng = random.Random(trial.seed)
        after = rng.randint(1, MIGRATIONS * 3 // 4)
        # Every other one inside an index build (which leaves an INVALID index), the other in any statement.
        inside = ("", "CREATE INDEX CONCURRENTLY")[(number + SEED) % 2]
        runner = start_apply(trial.db.url, trial.directory)
        assert wait_for_successes(trial, runner, after), f"the runner ended early: {finish(runner)}" + trial.explain()
        target = wait_for_active_statement(trial, runner, inside)
        assert target is not None, f"the runner ended early: {finish(runner)}" + trial.explain()
        trial.db.rows("SELECT pg_terminate_backend(%s)", (target[0],))
        code, document, err = finish(runner)
        trial.note(f"terminated after {after} successes inside {target[1][:80]!r}: exit {code}, "
                   f"error {document.get('error')}")
        assert code == 4 and document.get("error", {}).get("code") == "connection_lost", (
            f"exit {code}: {document or err[-3000:]}" + trial.explain())
        assert "Traceback" not in err, err + trial.explain()
        end_runner_sessions(trial.db, terminate=True)
        seen = trial.holds("pg_terminate_backend")
        check_applied_list(trial, seen, document)
        apply_to_the_end(trial)


def check_applied_list(trial: Trial, seen: Observed, document: dict) -> None:
    """The JSON `applied` lists the successes; only the migration whose commit met the fault may be missing."""
    succeeded = {spec.version for spec in trial.specs if seen.successes(spec.version)}
    applied = document.get("applied")
    assert isinstance(applied, list) and set(applied) <= succeeded, (
        f"JSON applied {applied} but success rows {sorted(succeeded)}" + trial.explain())
    unreported = succeeded - set(applied)
    message = document["error"].get("message", "")
    assert not unreported or (len(unreported) == 1 and next(iter(unreported)) in message), (
        f"success rows {sorted(unreported)} missing from JSON applied" + trial.explain())


def test_a_server_restarted_mid_run_leaves_history_matching_the_database(server, new_trial):
    for number in range(1, RESTART_TRIALS + 1):
        trial = new_trial(200 + number)
        rng = random.Random(trial.seed)
        mode = ("fast", "immediate")[(number + SEED) % 2]  # in turn; fast: sessions end, immediate: a crash
        after = rng.randint(1, MIGRATIONS * 3 // 4)
        runner = start_apply(trial.db.url, trial.directory)
        assert wait_for_successes(trial, runner, after), f"the runner ended early: {finish(runner)}" + trial.explain()
        server.restart(mode)
        code, document, err = finish(runner)
        trial.note(f"restarted (-m {mode}) after {after} successes: exit {code}, error {document.get('error')}")
        assert code == 4 and document.get("error", {}).get("code") == "connection_lost", (
            f"exit {code}: {document or err[-3000:]}" + trial.explain())
        assert "Traceback" not in err, err + trial.explain()
        seen = trial.holds(f"pg_ctl restart -m {mode}")
        check_applied_list(trial, seen, document)
        apply_to_the_end(trial)
