"""The password in DB_URL never appears in any output, error or history row (issue 2, "Shared behaviour").

The password is real: each test gets a login role with that password, so the success paths connect with it
on a trust server and on a password-checking server alike.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg2
import pytest

from conftest import history, migration, query
from migration_core.lock import LOCK_KEY

PASSWORD = "Sup3r-S3cret!@x"
ENCODED = quote(PASSWORD, safe="")          # Sup3r-S3cret%21%40x, as written in the URL
NEEDLES = (PASSWORD, ENCODED, "Sup3r-S3cret", "S3cret")

A, B, C = "20260101_000000_a", "20260102_000000_b", "20260103_000000_c"
TWO = {f"{A}.sql": migration("CREATE TABLE a (id int);", "DROP TABLE a;"),
       f"{B}.sql": migration("CREATE TABLE b (id int);", "DROP TABLE b;")}
FAILING_UP = {**TWO, f"{C}.sql": migration("CREATE TABLE c (id int);\nSELECT 1/0;", "DROP TABLE c;")}
FAILING_DOWN = {**TWO, f"{B}.sql": migration("CREATE TABLE b (id int);", "DROP TABLE no_such_table;")}


def with_credentials(url: str, user: str, password: str | None) -> str:
    """Return url with its user and password replaced, keeping host, port, path and query."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    credentials = user + (f":{password}" if password is not None else "")
    return urlunsplit(parts._replace(netloc=f"{credentials}@{host}"))


def with_database(url: str, dbname: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + dbname))


def with_query_password(url: str, user: str) -> str:
    """Return url with the password in the query string (?password=...) instead of the netloc."""
    parts = urlsplit(with_credentials(url, user, None))
    query_string = "&".join(filter(None, [parts.query, f"password={ENCODED}"]))
    return urlunsplit(parts._replace(query=query_string))


@pytest.fixture
def secret_role(pg_server: str, db_url: str):
    """Yield a superuser login role whose password is PASSWORD; drop it afterwards."""
    role = "secret_" + uuid.uuid4().hex[:10]
    query(pg_server, f'CREATE ROLE "{role}" LOGIN SUPERUSER PASSWORD %s', (PASSWORD,))
    try:
        yield role
    finally:
        query(db_url, f'REASSIGN OWNED BY "{role}" TO CURRENT_USER')
        query(db_url, f'DROP OWNED BY "{role}"')
        query(pg_server, f'DROP ROLE "{role}"')


Url = Callable[[str, str], str]   # (fresh database URL, role) -> DB_URL


def secret(fresh: str, role: str) -> str:
    return with_credentials(fresh, role, ENCODED)


@dataclass(frozen=True)
class Scenario:
    script: str
    exit_code: int
    applied_after: tuple[str, ...]              # versions applied when the run is over
    args: tuple[str, ...] = ()
    files: dict[str, str] = field(default_factory=lambda: TWO)
    prepare: str = "nothing"                    # nothing | apply | apply_then_edit_a | hold_lock
    url: Url = secret
    dotenv: bool = False                        # put DB_URL in .env in the working directory instead


UNREACHABLE: Url = lambda fresh, role: f"postgresql://postgres:{ENCODED}@127.0.0.1:1/x"  # noqa: E731

SCENARIOS: dict[str, Scenario] = {
    "plan_pending": Scenario("plan", 0, ()),
    "plan_all_applied": Scenario("plan", 0, (A, B), prepare="apply"),
    "plan_with_drift": Scenario("plan", 3, (A, B), prepare="apply_then_edit_a"),
    "apply": Scenario("apply", 0, (A, B)),
    "apply_dry_run": Scenario("apply", 0, (), args=("--dry-run",)),
    "apply_target": Scenario("apply", 0, (A,), args=("--target", A)),
    "apply_migration_failure": Scenario("apply", 1, (A, B), files=FAILING_UP),
    "apply_refused_for_drift": Scenario("apply", 3, (A, B), prepare="apply_then_edit_a"),
    "apply_lock_held": Scenario("apply", 3, (), args=("--lock-timeout", "0.5"), prepare="hold_lock"),
    "apply_unknown_target": Scenario("apply", 2, (), args=("--target", "20990101_000000_nope")),
    "rollback": Scenario("rollback", 0, (A,), prepare="apply"),
    "rollback_to": Scenario("rollback", 0, (A,), args=("--to", A), prepare="apply"),
    "rollback_dry_run": Scenario("rollback", 0, (A, B), args=("--dry-run",), prepare="apply"),
    "rollback_down_failure": Scenario("rollback", 1, (A, B), files=FAILING_DOWN, prepare="apply"),
    "rollback_nothing_applied": Scenario("rollback", 0, ()),
    "generate": Scenario("generate", 0, (), args=("--name", "add_c", "--up", "CREATE TABLE c (id int);")),
    "plan_unreachable_host": Scenario("plan", 4, (), url=UNREACHABLE),
    "apply_unreachable_host": Scenario("apply", 4, (), url=UNREACHABLE),
    "apply_unreachable_host_debug": Scenario("apply", 4, (), args=("--debug",), url=UNREACHABLE),
    "rollback_unreachable_host": Scenario("rollback", 4, (), url=UNREACHABLE),
    "apply_malformed_port": Scenario("apply", 4, (), url=lambda f, r: f"postgresql://u:{ENCODED}@localhost:notaport/x"),
    "apply_malformed_percent_escape_in_password": Scenario(
        "apply", 4, (), url=lambda f, r: "postgresql://u:Sup3r-S3cret%zz@localhost/x"),
    "apply_malformed_query_parameter": Scenario(
        "apply", 4, (), url=lambda f, r: f"postgresql://u:{ENCODED}@localhost/x?bogus=1"),
    "plan_nonexistent_database": Scenario("plan", 4, (), url=lambda f, r: with_database(secret(f, r), "no_db_x")),
    "apply_nonexistent_database": Scenario("apply", 4, (), url=lambda f, r: with_database(secret(f, r), "no_db_x")),
    "apply_unknown_role": Scenario("apply", 4, (), url=lambda f, r: with_credentials(f, "no_such_role_x", ENCODED)),
    "plan_password_in_query_string": Scenario("plan", 0, (), url=lambda f, r: with_query_password(f, r)),
    "apply_password_in_query_string": Scenario("apply", 0, (A, B), url=lambda f, r: with_query_password(f, r)),
    "apply_password_from_dotenv": Scenario("apply", 0, (A, B), dotenv=True),
    "apply_unreachable_host_from_dotenv": Scenario("apply", 4, (), url=UNREACHABLE, dotenv=True),
}


def applied_versions(url: str) -> tuple[str, ...]:
    """Return the versions whose newest success row is 'up', in version order."""
    latest: dict[str, str] = {}
    for version, direction, status in history(url):
        if status == "success":
            latest[version] = direction
    return tuple(sorted(v for v, d in latest.items() if d == "up"))


def history_text(url: str) -> str:
    """Return every history row as text, to search for the password."""
    if not history(url):
        return ""
    return query(url, "SELECT string_agg(t::text, E'\\n') FROM schema_migrations t")[0][0]


def prepare(step: str, db_url: str, directory: Path, run_script) -> psycopg2.extensions.connection | None:
    """Bring the database into the scenario's starting state; return a connection holding the lock, if any."""
    if step in ("apply", "apply_then_edit_a"):
        assert run_script("apply", "--migrations-dir", str(directory), db_url=db_url).returncode == 0
    if step == "apply_then_edit_a":
        path = directory / f"{A}.sql"
        path.write_text(path.read_text() + "-- edited after it was applied\n")
    if step == "hold_lock":
        holder = psycopg2.connect(db_url)
        holder.autocommit = True
        with holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        return holder
    return None


def assert_no_secret(text: str, where: str) -> None:
    for needle in NEEDLES:
        assert needle not in text, f"password form {needle!r} leaked in {where}:\n{text}"


@pytest.mark.parametrize("as_json", [False, True], ids=["human", "json"])
@pytest.mark.parametrize("scenario", list(SCENARIOS.values()), ids=list(SCENARIOS))
def test_password_never_appears_in_output_or_history(scenario, as_json, db_url, secret_role, migrations_dir,
                                                     run_script, tmp_path):
    directory = migrations_dir(scenario.files)
    holder = prepare(scenario.prepare, db_url, directory, run_script)
    url = scenario.url(db_url, secret_role)
    workdir = tmp_path / "work"
    workdir.mkdir()
    if scenario.dotenv:
        (workdir / ".env").write_text(f"DB_URL={url}\n", encoding="utf-8")
    args = ["--migrations-dir", str(directory), *scenario.args, *(["--json"] if as_json else [])]
    try:
        result = run_script(scenario.script, *args, db_url=None if scenario.dotenv else url, cwd=workdir)
    finally:
        if holder is not None:
            holder.close()

    assert result.returncode == scenario.exit_code, (result.stdout, result.stderr)
    assert_no_secret(result.stdout, "stdout")
    assert_no_secret(result.stderr, "stderr")
    if as_json:
        document = json.loads(result.stdout)
        assert document["ok"] is (scenario.exit_code == 0)
    else:
        assert "Traceback" not in result.stderr or "--debug" in scenario.args
    assert applied_versions(db_url) == scenario.applied_after
    assert_no_secret(history_text(db_url), "schema_migrations")


def test_failed_migration_error_message_in_history_holds_no_password(db_url, secret_role, migrations_dir,
                                                                     run_script):
    directory = migrations_dir(FAILING_UP)

    result = run_script("apply", "--migrations-dir", str(directory), db_url=secret(db_url, secret_role))

    assert result.returncode == 1
    assert "division by zero" in result.stdout + result.stderr
    assert_no_secret(result.stdout + result.stderr, "output")
    rows = query(db_url, "SELECT version, status, error_message FROM schema_migrations WHERE status = 'failed'")
    assert [(v, s) for v, s, _ in rows] == [(C, "failed")]
    assert "division by zero" in rows[0][2]
    assert_no_secret(rows[0][2], "error_message")


# A password pasted into DB_URL without percent-encoding: Python's urlsplit and libpq may cut the URL at
# different places, so neither half of the password may appear, whichever parser's error is shown.
HALVES = ("Sup3rLeft", "S3cretRight")
UNENCODED = {"at_sign": "@", "slash": "/", "question_mark": "?", "hash": "#", "colon": ":", "percent": "%"}


@pytest.mark.parametrize("as_json", [False, True], ids=["human", "json"])
@pytest.mark.parametrize("script", ["plan", "apply", "rollback"])
@pytest.mark.parametrize("separator", list(UNENCODED.values()), ids=list(UNENCODED))
def test_no_part_of_an_unencoded_password_appears_when_the_connection_fails(separator, script, as_json, db_url,
                                                                           migrations_dir, run_script):
    directory = migrations_dir(TWO)
    url = f"postgresql://u:{HALVES[0]}{separator}{HALVES[1]}@127.0.0.1:1/x"

    result = run_script(script, "--migrations-dir", str(directory), *(["--json"] if as_json else []), db_url=url)

    assert result.returncode == 4, (result.stdout, result.stderr)
    for half in HALVES:
        assert half not in result.stdout + result.stderr, f"{half!r} leaked:\n{result.stdout}{result.stderr}"
    if as_json:
        assert json.loads(result.stdout)["ok"] is False
    else:
        assert result.stderr.startswith("error:") and "Traceback" not in result.stderr
    assert history(db_url) == []


# ---- issue 9: passwords read right, redacted value by value ---------------------------------------------------

def raw_credentials(url: str, user: str, password: str) -> str:
    """Return url with the password pasted in as is, without percent-encoding."""
    parts = urlsplit(url)
    return f"postgresql://{user}:{password}@{parts.netloc.rpartition('@')[2]}{parts.path}" + (
        f"?{parts.query}" if parts.query else "")


@pytest.fixture
def role_with_password(pg_server: str, db_url: str):
    """Return a factory: a superuser login role with the given password, dropped afterwards."""
    roles: list[str] = []

    def make(password: str) -> str:
        role = "pw_" + uuid.uuid4().hex[:10]
        query(pg_server, f'CREATE ROLE "{role}" LOGIN SUPERUSER PASSWORD %s', (password,))
        roles.append(role)
        return role
    yield make
    for role in roles:
        query(db_url, f'REASSIGN OWNED BY "{role}" TO CURRENT_USER')
        query(db_url, f'DROP OWNED BY "{role}"')
        query(pg_server, f'DROP ROLE "{role}"')


def pieces(text: str) -> set[str]:
    return {text[i:i + 4] for i in range(len(text) - 3)}


@pytest.mark.parametrize("as_json", [False, True], ids=["human", "json"])
def test_an_unencoded_password_with_slash_percent_and_question_mark_connects_and_never_shows(
        as_json, db_url, role_with_password, migrations_dir, run_script):
    password = "Ab/Sup3rS3cretMiddle%Qz?Tail9"
    url = raw_credentials(db_url, role_with_password(password), password)
    directory = migrations_dir(TWO)

    results = [run_script(script, "--migrations-dir", str(directory), *(["--json"] if as_json else []), db_url=url)
               for script in ("plan", "apply", "rollback")]

    assert [r.returncode for r in results] == [0, 0, 0], [(r.stdout, r.stderr) for r in results]
    shown = "".join(r.stdout + r.stderr for r in results)
    assert not [piece for piece in pieces(password) if piece in shown], shown
    assert applied_versions(db_url) == (A,)


def test_a_short_password_leaves_json_keys_and_words_intact(db_url, role_with_password, migrations_dir,
                                                           run_script):
    url = with_credentials(db_url, role_with_password("app"), "app")
    directory = migrations_dir(TWO)

    as_json = run_script("apply", "--migrations-dir", str(directory), "--target", A, "--json", db_url=url)
    human = run_script("apply", "--migrations-dir", str(directory), db_url=url)

    assert as_json.returncode == 0 and human.returncode == 0, (as_json.stdout, human.stderr)
    assert json.loads(as_json.stdout)["applied"] == [A]
    assert f"applied     {B}" in human.stdout and "Applied 1 migration in " in human.stdout
    assert applied_versions(db_url) == (A, B)


@pytest.mark.parametrize("as_json", [False, True], ids=["human", "json"])
def test_a_password_with_quote_backslash_and_non_ascii_in_a_server_message_is_redacted(
        as_json, db_url, role_with_password, migrations_dir, run_script):
    # The migration itself makes the server say the password, the worst case for a JSON document: escaping would
    # turn '"' into '\"' and 'Ж' into '\u0416', and a search in the serialised text would miss both.
    password = 'Qu"o\\te-Жé€'
    url = with_credentials(db_url, role_with_password(password), quote(password, safe=""))
    said = password.replace("'", "''")
    directory = migrations_dir({f"{A}.sql": migration(f"DO $$ BEGIN RAISE EXCEPTION 'saw {said}'; END $$;",
                                                      "SELECT 1;")})
    flag = ["--json"] if as_json else []

    applied = run_script("apply", "--migrations-dir", str(directory), *flag, db_url=url)
    planned = run_script("plan", "--migrations-dir", str(directory), *flag, db_url=url)

    assert (applied.returncode, planned.returncode) == (1, 0), (applied.stdout, applied.stderr)
    for result in (applied, planned):
        shown = result.stdout + result.stderr
        assert not [piece for piece in pieces(password) if piece in shown], shown
        assert json.dumps(password)[1:-1] not in result.stdout
        assert "saw ***" in result.stdout + result.stderr
    if as_json:
        assert json.loads(applied.stdout)["failed"]["message"].endswith("saw ***")
