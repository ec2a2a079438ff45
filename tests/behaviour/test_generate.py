"""generate_migration.py: a UTC-timestamped file, validated names, never an overwrite, usable with --up/--down."""
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import history, query, tables

FILE_NAME = re.compile(r"^(\d{8}_\d{6})_(?P<name>[a-z0-9_]+)\.sql$")


def utc_stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%d_%H%M%S")


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def generate_json(run_script, directory, *args, **kwargs):
    result = run_script("generate", "--migrations-dir", str(directory), "--json", *args, **kwargs)
    return result, json.loads(result.stdout)


def test_generate_creates_a_utc_timestamped_file_and_prints_its_path(db_url, tmp_path, run_script):
    directory = tmp_path / "migrations"
    directory.mkdir()
    before = utc_stamp(datetime.now(timezone.utc))
    # A time zone far from UTC: a local-time stamp would be 14 hours off and fall outside the window.
    result = run_script("generate", "--migrations-dir", str(directory), "--name", "add_status",
                        env={"TZ": "Pacific/Kiritimati"}, db_url=db_url)
    after = utc_stamp(datetime.now(timezone.utc))
    assert result.returncode == 0, result.stderr
    [path] = list(directory.iterdir())
    match = FILE_NAME.match(path.name)
    assert match and match["name"] == "add_status"
    assert before <= match[1] <= after
    assert str(path) in result.stdout
    text = path.read_text(encoding="utf-8")
    assert re.search(r"^-- MIGRATION: add_status$", text, re.MULTILINE)
    assert re.search(r"^-- DIRECTION: up$", text, re.MULTILINE)
    assert re.search(r"^-- DIRECTION: down$", text, re.MULTILINE)
    assert tables(db_url) == set()


def test_generate_reports_path_and_version_in_json(db_url, migrations_dir, run_script):
    directory = migrations_dir()
    result, doc = generate_json(run_script, directory, "--name", "add_index", db_url=db_url)
    assert result.returncode == 0, result.stderr
    assert doc["schema_version"] == 1 and doc["command"] == "generate" and doc["ok"] is True
    path = Path(doc["path"])
    assert path.is_file() and path.parent == directory
    assert doc["version"] == path.stem
    assert FILE_NAME.match(path.name)["name"] == "add_index"
    assert [p.name for p in directory.iterdir()] == [path.name]
    assert tables(db_url) == set()


BAD_NAMES = [
    ("../x", "path_traversal"),
    ("Bad", "upper_case"),
    ("", "empty"),
    ("a-b", "hyphen"),
    ("a b", "space"),
    ("x.sql", "dot"),
    ("/tmp/x", "absolute_path"),
]


@pytest.mark.parametrize("name", [n for n, _ in BAD_NAMES], ids=[i for _, i in BAD_NAMES])
def test_generate_rejects_a_bad_name_and_creates_nothing(db_url, tmp_path, run_script, name):
    directory = tmp_path / "work" / "migrations"
    directory.mkdir(parents=True)
    before = files_under(tmp_path)
    result = run_script("generate", "--migrations-dir", str(directory), "--name", name, db_url=db_url)
    assert result.returncode == 2
    assert f"{name!r}" in result.stderr or f'"{name}"' in result.stderr
    assert "a-z" in result.stderr or "lowercase" in result.stderr
    assert "Traceback" not in result.stderr
    assert files_under(tmp_path) == before
    assert tables(db_url) == set()


@pytest.mark.parametrize("name", [n for n, _ in BAD_NAMES], ids=[i for _, i in BAD_NAMES])
def test_generate_rejects_a_bad_name_in_json_without_creating_the_directory(tmp_path, run_script, name):
    directory = tmp_path / "not_yet"
    result, doc = generate_json(run_script, directory, "--name", name)
    assert result.returncode == 2
    assert doc["ok"] is False and doc["error"]["message"]
    assert not directory.exists()


def test_generate_requires_a_name(tmp_path, run_script):
    directory = tmp_path / "migrations"
    directory.mkdir()
    result = run_script("generate", "--migrations-dir", str(directory))
    assert result.returncode == 2
    assert "--name" in result.stderr
    assert list(directory.iterdir()) == []


def test_generate_twice_in_a_row_never_overwrites(migrations_dir, run_script):
    directory = migrations_dir()
    first, first_doc = generate_json(run_script, directory, "--name", "same", "--up", "SELECT 1;")
    second, second_doc = generate_json(run_script, directory, "--name", "same", "--up", "SELECT 2;")
    assert first.returncode == 0 and second.returncode == 0, first.stdout + second.stdout
    assert second_doc["version"] > first_doc["version"]
    assert Path(first_doc["path"]).read_text(encoding="utf-8").count("SELECT 1;") == 1
    assert Path(second_doc["path"]).read_text(encoding="utf-8").count("SELECT 2;") == 1
    assert len(list(directory.iterdir())) == 2


def test_generate_moves_the_timestamp_on_when_the_second_is_taken(migrations_dir, run_script):
    # Occupy every second around now, so generate must collide and move past all of them.
    now = datetime.now(timezone.utc)
    taken = {utc_stamp(now + timedelta(seconds=s)): f"-- occupied {s}\n" for s in range(-2, 31)}
    directory = migrations_dir({f"{stamp}_same.sql": text for stamp, text in taken.items()})
    result, doc = generate_json(run_script, directory, "--name", "same")
    assert result.returncode == 0, result.stdout
    assert doc["version"][:15] > max(taken)
    assert Path(doc["path"]).is_file()
    for stamp, text in taken.items():
        assert (directory / f"{stamp}_same.sql").read_text(encoding="utf-8") == text
    assert len(list(directory.iterdir())) == len(taken) + 1


def test_generate_creates_a_missing_directory(tmp_path, run_script):
    directory = tmp_path / "deep" / "new" / "migrations"
    result, doc = generate_json(run_script, directory, "--name", "first")
    assert result.returncode == 0, result.stdout
    assert directory.is_dir()
    assert [p.name for p in directory.iterdir()] == [Path(doc["path"]).name]


def test_generate_with_up_and_down_writes_a_migration_that_apply_and_rollback_run(
        db_url, migrations_dir, run_script):
    directory = migrations_dir()
    result, doc = generate_json(run_script, directory, "--name", "create_things",
                                "--up", "CREATE TABLE things (id int, label text DEFAULT '100%');",
                                "--down", "DROP TABLE things;")
    assert result.returncode == 0, result.stdout
    version = doc["version"]

    plan = json.loads(run_script("plan", "--migrations-dir", str(directory), "--json", db_url=db_url).stdout)
    assert [(p["version"], p["name"], p["reversible"]) for p in plan["pending"]] == [
        (version, "create_things", True)]

    applied = run_script("apply", "--migrations-dir", str(directory), "--json", db_url=db_url)
    assert applied.returncode == 0, applied.stdout
    assert json.loads(applied.stdout)["applied"] == [version]
    assert "things" in tables(db_url)
    assert query(db_url, "SELECT column_default FROM information_schema.columns "
                         "WHERE table_name = 'things' AND column_name = 'label'") == [("'100%'::text",)]

    rolled = run_script("rollback", "--migrations-dir", str(directory), "--json", db_url=db_url)
    assert rolled.returncode == 0, rolled.stdout
    assert json.loads(rolled.stdout)["rolled_back"] == [version]
    assert tables(db_url) == {"schema_migrations"}
    assert history(db_url) == [(version, "up", "success"), (version, "down", "success")]


def test_generate_with_up_only_writes_an_irreversible_migration(db_url, migrations_dir, run_script):
    directory = migrations_dir()
    result, doc = generate_json(run_script, directory, "--name", "drop_legacy", "--up", "SELECT 1;")
    assert result.returncode == 0, result.stdout
    plan = run_script("plan", "--migrations-dir", str(directory), "--json", db_url=db_url)
    assert plan.returncode == 0, plan.stdout
    assert [(p["version"], p["reversible"]) for p in json.loads(plan.stdout)["pending"]] == [
        (doc["version"], False)]
    assert tables(db_url) == set()


def test_an_unedited_template_is_reported_invalid_and_never_applied(db_url, migrations_dir, run_script):
    directory = migrations_dir()
    result, doc = generate_json(run_script, directory, "--name", "todo")
    assert result.returncode == 0, result.stdout
    path = doc["path"]

    plan = run_script("plan", "--migrations-dir", str(directory), db_url=db_url)
    assert plan.returncode == 2
    assert path in plan.stderr and "empty" in plan.stderr
    plan_doc = json.loads(run_script("plan", "--migrations-dir", str(directory), "--json", db_url=db_url).stdout)
    assert plan_doc["ok"] is False and plan_doc["error"]["code"] == "invalid_migration"

    applied = run_script("apply", "--migrations-dir", str(directory), db_url=db_url)
    assert applied.returncode == 2
    assert path in applied.stderr and "empty" in applied.stderr
    assert tables(db_url) == set()
