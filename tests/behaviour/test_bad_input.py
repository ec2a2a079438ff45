"""Bad input: every case exits with its documented code, prints one clear line (or one JSON document),
and leaves the database exactly as it was (issue 2: "every bad-input case above (each: clear message,
right exit code, database unchanged)")."""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from conftest import history, migration, query, tables

GOOD_FILE = "20260101_000000_a.sql"
GOOD = migration("CREATE TABLE a (id int);", "DROP TABLE a;")
BAD_FILE = "20260102_000000_b.sql"
MISSING_DB = "no_such_db_migtest"
MISSING_ROLE = "no_such_role_migtest"
LONG_VERSION = "20260102_000000_" + "x" * 49  # 65 characters: one more than VARCHAR(64)


def with_user(url: str, user: str, password: str | None = None) -> str:
    """Return url with its user (and password) replaced, keeping host, port, path and query."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    credentials = user + (f":{password}" if password is not None else "")
    return urlunsplit(parts._replace(netloc=f"{credentials}@{host}"))


def with_database(url: str, dbname: str) -> str:
    """Return url pointing at another database on the same server."""
    return urlunsplit(urlsplit(url)._replace(path="/" + dbname))


@dataclass(frozen=True)
class Case:
    """One bad input: what to run, and what the user must see."""

    exit_code: int
    says: tuple[str, ...]                                  # regexes the error message must match
    script: str = "apply"
    files: dict[str, str | bytes] | None = field(default_factory=dict)  # None: no migrations directory
    args: tuple[str, ...] = ()
    url: Callable[[str], str | None] = lambda fresh: fresh  # DB_URL from the fresh database's URL
    never_says: tuple[str, ...] = ()


def bad_file(text: str | bytes, name: str = BAD_FILE) -> dict[str, str | bytes]:
    """Return a directory holding one valid migration and, after it in version order, one bad file."""
    return {GOOD_FILE: GOOD, name: text}


def at_line(line: int, name: str = BAD_FILE) -> str:
    return re.escape(f"{name}:{line}")


ANY_LINE = re.escape(BAD_FILE) + r":\d+"
UNREACHABLE = "postgresql://u:pw@127.0.0.1:1/x"

CASES: dict[str, Case] = {
    # ---- file names -----------------------------------------------------------------------------------
    "file_name_with_letters_in_timestamp": Case(2, (re.escape("2026010a_000000_b.sql"),),
                                                files=bad_file(migration("SELECT 1;"), "2026010a_000000_b.sql")),
    "file_name_with_uppercase_description": Case(
        2, (re.escape("20260102_000000_Add_Users.sql"),),
        files=bad_file(migration("SELECT 1;"), "20260102_000000_Add_Users.sql")),
    "file_name_with_dash_in_description": Case(2, (re.escape("20260102_000000_add-users.sql"),),
                                               files=bad_file(migration("SELECT 1;"), "20260102_000000_add-users.sql")),
    "file_name_without_description": Case(2, (re.escape("20260102_000000.sql"),),
                                          files=bad_file(migration("SELECT 1;"), "20260102_000000.sql")),
    "version_longer_than_64_characters": Case(2, (re.escape(LONG_VERSION + ".sql"),),
                                              files=bad_file(migration("SELECT 1;"), LONG_VERSION + ".sql")),
    # ---- sections -------------------------------------------------------------------------------------
    "no_up_section": Case(2, (ANY_LINE,), files=bad_file("-- MIGRATION: b\n-- DIRECTION: down\nDROP TABLE b;\n")),
    "no_marker_at_all": Case(2, (ANY_LINE,), files=bad_file("-- just a comment\n")),
    "empty_up_section_with_only_comments": Case(2, (ANY_LINE,), files=bad_file(
        "-- DIRECTION: up\n-- nothing here yet\n/* still\n nothing */\n\n-- DIRECTION: down\nDROP TABLE b;\n")),
    "empty_up_section_with_only_blank_lines": Case(2, (ANY_LINE,), files=bad_file(
        "-- DIRECTION: up\n\n   \n-- DIRECTION: down\nDROP TABLE b;\n")),
    "unedited_generate_template": Case(2, (ANY_LINE,), files=bad_file(
        "-- MIGRATION: b\n-- DIRECTION: up\n-- Write the forward change here, e.g.\n"
        "-- ALTER TABLE users ADD COLUMN status TEXT;\n\n-- DIRECTION: down\n"
        "-- Write the SQL that undoes the up section, e.g.\n-- ALTER TABLE users DROP COLUMN status;\n")),
    "repeated_up_direction": Case(2, (at_line(3),), files=bad_file(
        "-- DIRECTION: up\nCREATE TABLE b (id int);\n-- DIRECTION: up\nCREATE TABLE c (id int);\n")),
    "repeated_down_direction": Case(2, (at_line(5),), files=bad_file(
        "-- DIRECTION: up\nCREATE TABLE b (id int);\n-- DIRECTION: down\nDROP TABLE b;\n"
        "-- DIRECTION: down\nSELECT 1;\n")),
    "unknown_direction": Case(2, (at_line(3), "sideways"), files=bad_file(
        "-- DIRECTION: up\nCREATE TABLE b (id int);\n-- DIRECTION: sideways\nDROP TABLE b;\n")),
    "sql_before_first_marker": Case(2, (at_line(3),), files=bad_file(
        "-- MIGRATION: b\n-- a header comment is fine\nCREATE TABLE early (id int);\n-- DIRECTION: up\n"
        "CREATE TABLE b (id int);\n")),
    "up_marker_after_down_section": Case(2, (at_line(3),), files=bad_file(
        "-- DIRECTION: down\nDROP TABLE b;\n-- DIRECTION: up\nCREATE TABLE b (id int);\n")),
    "invalid_utf8": Case(2, (at_line(3), "UTF-8"), files=bad_file(
        b"-- DIRECTION: up\nCREATE TABLE b (id int);\nCOMMENT ON TABLE b IS '\xff\xfe';\n")),
    "plan_with_bad_file_name": Case(2, (re.escape("20260102_000000_Add_Users.sql"),), script="plan",
                                    files=bad_file(migration("SELECT 1;"), "20260102_000000_Add_Users.sql")),
    "plan_with_repeated_direction": Case(2, (at_line(3),), script="plan", files=bad_file(
        "-- DIRECTION: up\nCREATE TABLE b (id int);\n-- DIRECTION: up\nCREATE TABLE c (id int);\n")),
    "rollback_with_invalid_utf8": Case(2, (at_line(3),), script="rollback", files=bad_file(
        b"-- DIRECTION: up\nCREATE TABLE b (id int);\nCOMMENT ON TABLE b IS '\xff\xfe';\n")),
    "dry_run_with_empty_up_section": Case(2, (ANY_LINE,), args=("--dry-run",), files=bad_file(
        "-- DIRECTION: up\n-- TODO\n-- DIRECTION: down\nDROP TABLE b;\n")),
    # ---- usage ----------------------------------------------------------------------------------------
    "migrations_dir_does_not_exist": Case(2, ("no_such_migrations_dir",), files=None),
    "plan_migrations_dir_does_not_exist": Case(2, ("no_such_migrations_dir",), script="plan", files=None),
    "rollback_migrations_dir_does_not_exist": Case(2, ("no_such_migrations_dir",), script="rollback", files=None),
    "unknown_flag": Case(2, ("--bogus-flag",), args=("--bogus-flag",), files={GOOD_FILE: GOOD}),
    "plan_unknown_flag": Case(2, ("--bogus-flag",), script="plan", args=("--bogus-flag",), files={GOOD_FILE: GOOD}),
    "lock_timeout_not_a_number": Case(2, ("lock-timeout",), args=("--lock-timeout", "soon"), files={GOOD_FILE: GOOD}),
    # ---- configuration and connection -----------------------------------------------------------------
    "no_db_url": Case(4, ("DB_URL",), files={GOOD_FILE: GOOD}, url=lambda fresh: None),
    "empty_db_url": Case(4, ("DB_URL",), files={GOOD_FILE: GOOD}, url=lambda fresh: ""),
    "plan_no_db_url": Case(4, ("DB_URL",), script="plan", files={GOOD_FILE: GOOD}, url=lambda fresh: None),
    "rollback_no_db_url": Case(4, ("DB_URL",), script="rollback", files={GOOD_FILE: GOOD}, url=lambda fresh: None),
    "malformed_db_url_not_a_url": Case(4, ("DB_URL",), files={GOOD_FILE: GOOD}, url=lambda fresh: "not-a-url"),
    "malformed_db_url_bad_port": Case(4, ("DB_URL",), files={GOOD_FILE: GOOD},
                                      url=lambda fresh: "postgresql://u:pw@localhost:notaport/x"),
    "malformed_db_url_unclosed_ipv6_bracket": Case(4, ("DB_URL",), files={GOOD_FILE: GOOD},
                                                   url=lambda fresh: "postgresql://u:pw@[::1/x"),
    "unreachable_server": Case(4, (re.escape("127.0.0.1"),), files={GOOD_FILE: GOOD}, url=lambda fresh: UNREACHABLE),
    "plan_unreachable_server": Case(4, (re.escape("127.0.0.1"),), script="plan", files={GOOD_FILE: GOOD},
                                    url=lambda fresh: UNREACHABLE),
    "dry_run_unreachable_server": Case(4, (re.escape("127.0.0.1"),), args=("--dry-run",), files={GOOD_FILE: GOOD},
                                       url=lambda fresh: UNREACHABLE),
    "rollback_unreachable_server": Case(4, (re.escape("127.0.0.1"),), script="rollback", files={GOOD_FILE: GOOD},
                                        url=lambda fresh: UNREACHABLE),
    "unknown_host_is_not_called_malformed": Case(4, (re.escape("no-such-host.invalid"),), files={GOOD_FILE: GOOD},
                                                 url=lambda fresh: "postgresql://u:pw@no-such-host.invalid/x",
                                                 never_says=("(?i)malformed",)),
    "authentication_failure_unknown_role": Case(4, (MISSING_ROLE,), files={GOOD_FILE: GOOD},
                                                url=lambda fresh: with_user(fresh, MISSING_ROLE, "pw")),
    "plan_authentication_failure_unknown_role": Case(4, (MISSING_ROLE,), script="plan", files={GOOD_FILE: GOOD},
                                                     url=lambda fresh: with_user(fresh, MISSING_ROLE, "pw")),
    "database_does_not_exist": Case(4, (MISSING_DB,), files={GOOD_FILE: GOOD},
                                    url=lambda fresh: with_database(fresh, MISSING_DB)),
    "plan_database_does_not_exist": Case(4, (MISSING_DB,), script="plan", files={GOOD_FILE: GOOD},
                                         url=lambda fresh: with_database(fresh, MISSING_DB)),
}


def write_files(directory: Path, files: dict[str, str | bytes]) -> None:
    directory.mkdir(exist_ok=True)
    for file_name, content in files.items():
        if isinstance(content, bytes):
            (directory / file_name).write_bytes(content)
        else:
            (directory / file_name).write_text(content, encoding="utf-8")


def assert_database_untouched(db_url: str, pg_server: str) -> None:
    """Nothing applied, no history table, no user tables, and no database created on the way."""
    assert query(db_url, "SELECT to_regclass('schema_migrations') IS NULL") == [(True,)]
    assert history(db_url) == []
    assert tables(db_url) == set()
    assert query(pg_server, "SELECT count(*) FROM pg_database WHERE datname = %s", (MISSING_DB,)) == [(0,)]


def assert_one_error_line(result) -> str:
    """Human mode: nothing on stdout, exactly one non-empty stderr line starting with 'error:'."""
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:"), lines[0]
    return lines[0]


def assert_one_json_error(result, case: Case) -> str:
    """JSON mode: stdout is exactly one JSON document, ok=false, with error code, message and hint."""
    assert "Traceback" not in result.stderr + result.stdout
    document = json.loads(result.stdout)  # raises on anything but exactly one document
    assert document["schema_version"] == 1
    assert document["command"] == case.script
    assert document["ok"] is False
    error = document["error"]
    assert set(error) >= {"code", "message", "hint"}
    assert isinstance(error["code"], str) and re.fullmatch(r"[a-z_]+", error["code"]), error
    assert isinstance(error["message"], str) and error["message"].strip(), error
    assert isinstance(error["hint"], str) and error["hint"].strip(), error
    assert "\n" not in error["message"], error
    return error["message"]


@pytest.mark.parametrize("as_json", [False, True], ids=["human", "json"])
@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_input_exits_with_its_code_says_why_in_one_line_and_changes_nothing(
        case, as_json, db_url, pg_server, tmp_path, run_script):
    directory = tmp_path / ("migrations" if case.files is not None else "no_such_migrations_dir")
    if case.files is not None:
        write_files(directory, case.files)
    args = ["--migrations-dir", str(directory), *case.args, *(["--json"] if as_json else [])]
    url = case.url(db_url)
    env = {"DB_URL": url} if url == "" else None

    result = run_script(case.script, *args, db_url=url or None, env=env)

    assert result.returncode == case.exit_code, (result.stdout, result.stderr)
    message = assert_one_json_error(result, case) if as_json else assert_one_error_line(result)
    for pattern in case.says:
        assert re.search(pattern, message), f"{pattern!r} not in {message!r}"
    for pattern in case.never_says:
        assert not re.search(pattern, message), f"{pattern!r} in {message!r}"
    assert_database_untouched(db_url, pg_server)


@pytest.mark.parametrize("script", ["plan", "apply", "rollback"])
def test_invalid_file_added_after_an_apply_leaves_history_and_tables_unchanged(
        script, db_url, migrations_dir, run_script):
    directory = migrations_dir({GOOD_FILE: GOOD})
    assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url).returncode == 0
    before = query(db_url, "SELECT * FROM schema_migrations ORDER BY id")
    (directory / BAD_FILE).write_text("-- DIRECTION: up\nCREATE TABLE b (id int);\n-- DIRECTION: up\nSELECT 1;\n")

    result = run_script(script, "--migrations-dir", str(directory), db_url=db_url)

    assert result.returncode == 2
    assert re.search(at_line(3), result.stderr)
    assert query(db_url, "SELECT * FROM schema_migrations ORDER BY id") == before
    assert tables(db_url) == {"a", "schema_migrations"}


def test_non_sql_files_in_the_migrations_directory_are_ignored(db_url, migrations_dir, run_script):
    directory = migrations_dir({GOOD_FILE: GOOD, "README.md": "# notes\n", ".gitkeep": "", "notes.txt": "x"})

    result = run_script("apply", "--migrations-dir", str(directory), "--json", db_url=db_url)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["applied"] == ["20260101_000000_a"]
    assert history(db_url) == [("20260101_000000_a", "up", "success")]


def test_a_version_of_exactly_64_characters_is_accepted(db_url, migrations_dir, run_script):
    version = "20260102_000000_" + "x" * 48
    directory = migrations_dir({version + ".sql": migration("CREATE TABLE x64 (id int);", "DROP TABLE x64;")})

    result = run_script("apply", "--migrations-dir", str(directory), "--json", db_url=db_url)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["applied"] == [version]
    assert history(db_url) == [(version, "up", "success")]
    assert "x64" in tables(db_url)


# ---- DB_URL from .env ------------------------------------------------------------------------------------

def write_dotenv(directory: Path, url: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ".env").write_text(f"DB_URL={url}\n", encoding="utf-8")
    return directory


def test_dotenv_in_the_working_directory_supplies_db_url(db_url, migrations_dir, run_script, tmp_path):
    directory = migrations_dir({GOOD_FILE: GOOD})
    workdir = write_dotenv(tmp_path / "work", db_url)

    result = run_script("apply", "--migrations-dir", str(directory), "--json", cwd=workdir)

    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["applied"] == ["20260101_000000_a"]
    assert history(db_url) == [("20260101_000000_a", "up", "success")]
    assert "a" in tables(db_url)


def test_plan_reads_db_url_from_dotenv_too(db_url, migrations_dir, run_script, tmp_path):
    directory = migrations_dir({GOOD_FILE: GOOD})
    workdir = write_dotenv(tmp_path / "work", db_url)

    result = run_script("plan", "--migrations-dir", str(directory), "--json", cwd=workdir)

    assert result.returncode == 0, result.stdout + result.stderr
    assert [m["version"] for m in json.loads(result.stdout)["pending"]] == ["20260101_000000_a"]
    assert history(db_url) == []


def test_environment_db_url_wins_over_dotenv(db_url, migrations_dir, run_script, tmp_path):
    directory = migrations_dir({GOOD_FILE: GOOD})
    workdir = write_dotenv(tmp_path / "work", UNREACHABLE)

    result = run_script("apply", "--migrations-dir", str(directory), "--json", db_url=db_url, cwd=workdir)

    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["applied"] == ["20260101_000000_a"]
    assert history(db_url) == [("20260101_000000_a", "up", "success")]


def test_environment_db_url_wins_even_when_only_dotenv_would_connect(db_url, pg_server, migrations_dir,
                                                                     run_script, tmp_path):
    directory = migrations_dir({GOOD_FILE: GOOD})
    workdir = write_dotenv(tmp_path / "work", db_url)

    result = run_script("apply", "--migrations-dir", str(directory), db_url=UNREACHABLE, cwd=workdir)

    assert result.returncode == 4
    assert "127.0.0.1" in result.stderr and "Traceback" not in result.stderr
    assert_database_untouched(db_url, pg_server)


def test_dotenv_outside_the_working_directory_is_not_read(db_url, pg_server, migrations_dir, run_script, tmp_path):
    directory = migrations_dir({GOOD_FILE: GOOD})
    write_dotenv(tmp_path / "elsewhere", db_url)
    workdir = tmp_path / "work"
    workdir.mkdir()

    result = run_script("apply", "--migrations-dir", str(directory), cwd=workdir)

    assert result.returncode == 4
    assert "DB_URL" in result.stderr and "Traceback" not in result.stderr
    assert_database_untouched(db_url, pg_server)
