"""Fleet runs: one migrations folder, twelve databases on one server: plan, canary, stop, resume, shard, secrets."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import psycopg2
import pytest

from conftest import SCRIPTS, database_url, history, migration, query, tables

A, B, C = "20260101_000000_a", "20260102_000000_b", "20260103_000000_c"
FILES = {f"{A}.sql": migration("CREATE TABLE a (id int);", "DROP TABLE a;"),
         f"{B}.sql": migration("CREATE TABLE b (id int);", "DROP TABLE b;")}
COUNT = 12
NAMES = [f"tenant_{i:02d}" for i in range(1, COUNT + 1)]
# Fails where the database sets fleet.fail (a setting, not schema: undoing it leaves no live-schema drift).
REFUSE_ON_FLAG = ("DO $$ BEGIN IF current_setting('fleet.fail', true) = 'on' THEN "
                  "RAISE EXCEPTION 'this tenant is not ready'; END IF; END $$;\n")


@pytest.fixture(scope="module")
def fleet_dbs(pg_server):
    """Create twelve databases once for the module; yield {target name: URL}; drop them at the end."""
    prefix = "fl_" + uuid.uuid4().hex[:6]
    admin = psycopg2.connect(pg_server)
    admin.autocommit = True
    urls = {}
    with admin.cursor() as cur:
        for i, name in enumerate(NAMES, 1):
            cur.execute(f'CREATE DATABASE "{prefix}_{name}"')
            urls[name] = database_url(pg_server, f"{prefix}_{name}")
    yield prefix, urls
    if os.environ.get("TEST_DB_URL"):  # an embedded or local server is deleted with the session: no 12 checkpoints
        with admin.cursor() as cur:
            for name in NAMES:
                cur.execute(f'DROP DATABASE IF EXISTS "{prefix}_{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def fleet(fleet_dbs, tmp_path, migrations_dir):
    """Empty every database of the fleet; return (urls, targets file, migrations dir)."""
    prefix, urls = fleet_dbs
    for name, url in urls.items():
        query(url, f'DROP SCHEMA public CASCADE; CREATE SCHEMA public; ALTER DATABASE "{prefix}_{name}" RESET ALL')
    targets = tmp_path / "targets.txt"
    targets.write_text("# the fleet\n" + "".join(f"{name} {url}\n" for name, url in urls.items()))
    return urls, targets, migrations_dir(FILES)


WAITING_ADVISORY = ("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")


def wait_for(condition, seconds=60):
    """Poll condition until it holds (True) or seconds pass (False)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def subset(urls, targets, names, file_name="some.txt"):
    """Write a targets file of only these targets (fewer subprocesses where twelve prove nothing more)."""
    path = targets.parent / file_name
    path.write_text("".join(f"{name} {urls[name]}  # a comment\n" for name in names))
    return path


def run_fleet(run_script, script, targets, directory, *args, env=None):
    """Run a fleet command with --json; return (exit code, document, stderr)."""
    result = run_script(script, "--targets", str(targets), "--migrations-dir", str(directory), "--json", *args,
                        env=env)
    return result.returncode, json.loads(result.stdout), result.stderr


def statuses(doc):
    return [(t["name"], t["status"]) for t in doc["targets"]]


def test_plan_over_all_targets_lists_each_with_its_plan_id_and_a_fleet_plan_id(fleet, run_script):
    urls, targets, directory = fleet
    query(urls["tenant_03"], "CREATE TABLE IF NOT EXISTS public.schema_migrations_probe ()")  # harmless extra
    code, doc, _ = run_fleet(run_script, "plan", targets, directory)
    assert code == 0, doc
    assert [t["name"] for t in doc["targets"]] == NAMES
    assert all(t["ok"] and t["state"] == "pending" and t["pending"] == [A, B] and t["plan_id"]
               for t in doc["targets"])
    assert doc["summary"]["pending"] == COUNT and doc["summary"]["pending_migrations"] == 2 * COUNT
    assert doc["plan_id"] and doc["run_command"].endswith(doc["plan_id"])
    human = run_script("plan", "--targets", str(subset(urls, targets, NAMES[:3])), "--migrations-dir", str(directory))
    assert human.returncode == 0
    assert "0 up to date, 3 pending (6 migration(s))." in human.stdout
    assert human.stdout.count("0 applied, 2 pending") == 3
    assert "Fleet plan id " in human.stdout and "--plan-id" in human.stdout
    assert all(history(url) == [] for url in urls.values())  # strictly read-only


def test_plan_id_confirms_the_rollout_and_a_canary_failure_starts_nothing_else(fleet, run_script):
    urls, targets, directory = fleet
    six = subset(urls, targets, NAMES[:6])
    _, planned, _ = run_fleet(run_script, "plan", six, directory)
    query(urls["tenant_01"], "CREATE TABLE b (x int)")  # the canary's 0002 will fail
    code, doc, _ = run_fleet(run_script, "apply", six, directory, "--plan-id", planned["plan_id"])
    assert code == 1 and doc["error"]["code"] == "target_failed"
    first = doc["targets"][0]
    assert first["status"] == "failed" and first["applied"] == [A] and first["failed"]["version"] == B
    assert statuses(doc)[1:] == [(name, "not_started") for name in NAMES[1:6]]
    assert all(history(urls[name]) == [] for name in NAMES[1:])


def test_a_failure_mid_rollout_starts_no_new_target_and_the_json_says_what_happened(fleet, run_script,
                                                                                      migrations_dir):
    urls, targets, _ = fleet
    flagged = migration(REFUSE_ON_FLAG + "CREATE TABLE b (id int);")
    directory = migrations_dir({f"{A}.sql": FILES[f"{A}.sql"], f"{B}.sql": flagged}, name="flagged")
    database = query(urls["tenant_07"], "SELECT current_database()")[0][0]
    query(urls["tenant_07"], f'ALTER DATABASE "{database}" SET fleet.fail = \'on\'')  # its B will fail
    code, doc, _ = run_fleet(run_script, "apply", targets, directory, "--parallel", "1")
    assert code == 1
    for t in doc["targets"]:
        t["duration_ms"] = "d" if t["duration_ms"] > 0 else t["duration_ms"]
    failed = doc["targets"][6]
    assert failed["failed"]["version"] == B and "this tenant is not ready" in failed["error"]["message"]
    expected = ([{"name": n, "ok": True, "status": "applied", "applied": [A, B], "failed": None, "error": None,
                  "duration_ms": "d"} for n in NAMES[:6]]
                + [{"name": "tenant_07", "ok": False, "status": "failed", "applied": [A], "failed": failed["failed"],
                    "error": failed["error"], "duration_ms": "d"}]
                + [{"name": n, "ok": False, "status": "not_started", "applied": [], "failed": None, "error": None,
                    "duration_ms": 0.0} for n in NAMES[7:]])
    assert doc["targets"] == expected
    assert failed["error"]["code"] == "migration_failed"
    assert doc["summary"] == {"targets": 12, "applied": 6, "rolled_back": 0, "up_to_date": 0, "failed": 1,
                              "refused": 0, "skipped": 0, "not_started": 5, "stopped": 0, "migrations": 13}
    assert all({"a", "b"} <= tables(urls[n]) for n in NAMES[:6])
    assert all(tables(urls[n]) == set() for n in NAMES[7:])

    # Resume: fix target 7, run the same command again: done targets do nothing, the rest are applied.
    query(urls["tenant_07"], f'ALTER DATABASE "{database}" RESET fleet.fail')
    code, doc, _ = run_fleet(run_script, "apply", targets, directory)
    assert code == 0, doc
    assert statuses(doc) == [(n, "up_to_date") for n in NAMES[:6]] + [(n, "applied") for n in NAMES[6:]]
    assert doc["targets"][6]["applied"] == [B]
    assert all([v for v, d, s in history(urls[n]) if s == "success"] == [A, B] for n in NAMES)


def test_a_drifted_target_refuses_the_rollout_before_anything_runs_unless_skip_refused(fleet, run_script):
    urls, targets, directory = fleet
    four = subset(urls, targets, NAMES[:4])
    one = directory.parent / "one"
    one.mkdir()
    (one / f"{A}.sql").write_text(FILES[f"{A}.sql"])
    assert run_fleet(run_script, "apply", four, one)[0] == 0
    query(urls["tenant_03"], "CREATE TABLE sneaky (id int)")  # outside the migrations: live-schema drift
    code, planned, _ = run_fleet(run_script, "plan", four, directory)
    assert code == 3 and planned["error"]["code"] == "targets_not_ready"
    assert planned["targets"][2]["state"] == "drifted" and planned["summary"]["drifted"] == 1
    assert planned["run_command"] is None

    code, doc, _ = run_fleet(run_script, "apply", four, directory)
    assert code == 3 and doc["error"]["code"] == "targets_refused" and "tenant_03" in doc["error"]["message"]
    assert doc["targets"][2]["status"] == "refused" and doc["targets"][2]["error"]["code"] == "schema_drift"
    assert [t["status"] for i, t in enumerate(doc["targets"]) if i != 2] == ["not_started"] * 3
    assert all(B not in [v for v, _, _ in history(urls[n])] for n in NAMES[:4])

    code, doc, _ = run_fleet(run_script, "apply", four, directory, "--skip-refused", "--plan-id", planned["plan_id"])
    assert code == 0, doc
    assert doc["targets"][2]["status"] == "skipped" and not doc["targets"][2]["ok"]
    assert all(t["status"] == "applied" and t["applied"] == [B] for i, t in enumerate(doc["targets"]) if i != 2)
    assert "b" not in tables(urls["tenant_03"]) and "b" in tables(urls["tenant_04"])


def test_a_running_target_finishes_its_migration_and_stops_when_another_fails(fleet, run_script, migrations_dir,
                                                                              tmp_path):
    urls, targets, _ = fleet
    gated = migrations_dir({f"{A}.sql": migration("SELECT pg_advisory_xact_lock(4242); CREATE TABLE a (id int);"),
                            f"{B}.sql": migration("CREATE TABLE b (id int);")}, name="gated")
    query(urls["tenant_03"], "CREATE TABLE a (x int)")  # tenant_03's first migration will fail
    three = subset(urls, targets, NAMES[1:4])
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    gates = {}
    for name in ("tenant_02", "tenant_03"):  # each target's first migration waits for the test's lock
        gates[name] = psycopg2.connect(urls[name])
        gates[name].autocommit = True
        gates[name].cursor().execute("SELECT pg_advisory_lock(4242)")
    env = {k: v for k, v in os.environ.items() if k != "DB_URL"} | {"TMPDIR": str(scratch)}
    fleet_run = subprocess.Popen([sys.executable, str(SCRIPTS / "apply_migrations.py"), "--targets", str(three),
                                  "--migrations-dir", str(gated), "--parallel", "2", "--canary", "0",
                                  "--lock-timeout-ms", "0", "--json"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert wait_for(lambda: query(urls["tenant_02"], WAITING_ADVISORY)[0][0] == 1), "tenant_02 never started"
        gates.pop("tenant_03").close()  # tenant_03 goes on, and fails: its table a exists
        assert wait_for(lambda: list(scratch.glob("migrations-fleet-*/stop"))), "the rollout never asked to stop"
    except BaseException:
        fleet_run.kill()
        raise
    finally:
        for gate in gates.values():
            gate.close()  # tenant_02's first migration goes on now
    stdout, _ = fleet_run.communicate(timeout=60)
    doc = json.loads(stdout)
    assert fleet_run.returncode == 1
    assert [t["status"] for t in doc["targets"]] == ["applied", "failed", "not_started"]
    stopped = doc["targets"][0]
    assert stopped["applied"] == [A] and stopped["error"]["code"] == "stopped" and not stopped["ok"]
    assert doc["summary"]["stopped"] == 1 and doc["summary"]["not_started"] == 1
    assert [v for v, _, _ in history(urls["tenant_02"])] == [A] and "a" in tables(urls["tenant_02"])
    assert history(urls["tenant_04"]) == []


def test_targets_query_and_shards_cover_every_target_exactly_once(fleet, fleet_dbs, run_script, pg_server):
    prefix, urls = fleet_dbs
    _, _, directory = fleet
    sql = f"SELECT datname FROM pg_database WHERE datname LIKE '{prefix}_tenant_%' ORDER BY datname"
    seen = []
    for shard in ("1/3", "2/3", "3/3"):
        result = run_script("plan", "--targets-query", sql, "--shard", shard, "--migrations-dir", str(directory),
                            "--json", db_url=pg_server)
        doc = json.loads(result.stdout)
        assert result.returncode == 0 and doc["shard"] == shard and len(doc["targets"]) == 4
        seen += [t["name"] for t in doc["targets"]]
    assert sorted(seen) == [f"{prefix}_{n}" for n in NAMES]


def test_rollback_over_the_fleet_undoes_the_latest_migration_everywhere(fleet, run_script):
    urls, targets, directory = fleet
    four = subset(urls, targets, NAMES[:4])
    assert run_fleet(run_script, "apply", four, directory, "--canary", "2")[0] == 0
    code, preview, _ = run_fleet(run_script, "rollback", four, directory, "--dry-run")
    assert code == 0 and all(t["status"] == "pending" and t["steps"] == [B] for t in preview["targets"])
    code, doc, _ = run_fleet(run_script, "rollback", four, directory, "--plan-id", preview["plan_id"])
    assert code == 0, doc
    assert all(t["status"] == "rolled_back" and t["rolled_back"] == [B] for t in doc["targets"])
    assert all("a" in tables(urls[n]) and "b" not in tables(urls[n]) for n in NAMES[:4])


def test_no_password_from_the_targets_file_appears_in_any_output(fleet, run_script, tmp_path):
    urls, _, directory = fleet
    literal, hidden = "Lit3ral-Pa55word", "Env-S3cret-Pa55"

    def with_password(url, password):
        return url.replace("postgres:@", f"postgres:{password}@", 1) if "postgres:@" in url else \
            url.replace("postgres@", f"postgres:{password}@", 1)
    targets = tmp_path / "secret.txt"
    targets.write_text(f"one {with_password(urls['tenant_01'], literal)}\n"
                       f"two {with_password(urls['tenant_02'], '${FLEET_PW}')}\n"
                       f"gone postgresql://postgres:{literal}@127.0.0.1:1/nowhere?connect_timeout=2\n")
    outputs = []
    for script, args in (("plan", ()), ("apply", ("--dry-run", "--json")), ("apply", ("--skip-refused",)),
                         ("rollback", ("--skip-refused", "--json"))):
        result = run_script(script, "--targets", str(targets), "--migrations-dir", str(directory), *args,
                            env={"FLEET_PW": hidden})
        outputs.append((result.returncode, result.stdout + result.stderr))
    assert [code for code, _ in outputs] == [4, 3, 0, 0]
    assert "gone" in outputs[0][1] and "UNREACHABLE" in outputs[0][1]
    for _, text in outputs:
        assert literal not in text and hidden not in text and "Pa55" not in text
    assert "a" in tables(urls["tenant_01"]) and "b" not in tables(urls["tenant_01"])  # applied, then rolled back


@pytest.mark.parametrize("line, message", [
    ("one two three", "targets.txt:2: expected NAME URL or URL, found 3 words."),
    ("name mysql://u@h/db", "targets.txt:2: the URL must start with postgresql:// or postgres://."),
    ("x postgresql://u:${NOT_SET_ANYWHERE}@h/db", "targets.txt:2: ${NOT_SET_ANYWHERE} is not set in the environment."),
    ("# only a comment", "targets.txt: no targets (every line is empty or a comment)."),
])
def test_a_bad_targets_file_is_one_line_error_exit_2(fleet, run_script, tmp_path, line, message):
    urls, _, directory = fleet
    targets = tmp_path / "targets.txt"
    targets.write_text("# first\n" + line + "\n")
    result = run_script("apply", "--targets", str(targets), "--migrations-dir", str(directory))
    assert result.returncode == 2
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith(f"error: {targets}{message.removeprefix('targets.txt')} Hint: ")
    assert "Traceback" not in result.stderr
    assert all(history(url) == [] for url in urls.values())


def test_fleet_options_without_targets_and_a_bad_shard_are_usage_errors_in_json_too(fleet, run_script):
    _, targets, directory = fleet
    for args, text in ((("--shard", "1/2"), "--shard works only with --targets or --targets-query."),
                       (("--targets", str(targets), "--shard", "3/2"), "--shard expects I/N with 1 <= I <= N"),
                       (("--targets", str(targets), "--baseline", A), "--baseline works on one database"),
                       (("--targets", str(targets), "--forget-failed", A), "--forget-failed works on one database")):
        result = run_script("apply", "--migrations-dir", str(directory), *args, "--json")
        doc = json.loads(result.stdout)
        assert result.returncode == 2 and doc["error"]["code"] == "usage" and doc["error"]["message"].startswith(text)


def test_a_fleet_run_needs_the_confirmed_fleet_plan_id_when_plan_ids_are_required(fleet, run_script):
    urls, targets, directory = fleet
    two = subset(urls, targets, NAMES[:2])
    for script in ("apply", "rollback"):
        code, doc, _ = run_fleet(run_script, script, two, directory, env={"MIGRATIONS_REQUIRE_PLAN_ID": "1"})
        assert code == 2 and doc["error"]["code"] == "plan_id_required", doc
    assert all(history(urls[name]) == [] and tables(urls[name]) == set() for name in NAMES[:2])
    _, preview, _ = run_fleet(run_script, "apply", two, directory, "--dry-run", env={"MIGRATIONS_REQUIRE_PLAN_ID": "1"})
    code, doc, _ = run_fleet(run_script, "apply", two, directory, "--plan-id", preview["plan_id"],
                             env={"MIGRATIONS_REQUIRE_PLAN_ID": "1"})
    assert code == 0 and statuses(doc) == [(name, "applied") for name in NAMES[:2]], doc


def test_a_run_stopped_by_the_stop_file_says_so_and_exits_non_zero(fleet, run_script, tmp_path):
    urls, _, directory = fleet
    stop = tmp_path / "stop"
    stop.write_text("")
    result = run_script("apply", "--migrations-dir", str(directory), "--json", db_url=urls["tenant_05"],
                        env={"MIGRATIONS_STOP_FILE": str(stop)})
    doc = json.loads(result.stdout)
    assert result.returncode == 1 and doc["error"]["code"] == "stopped", doc
    assert A in doc["error"]["message"] and doc["applied"] == []
    assert history(urls["tenant_05"]) == [] and "a" not in tables(urls["tenant_05"])
