"""A Flyway folder (V1__x.sql, U1__x.sql undo files, V1_1 as version 1.1, R__ repeatables) imports as this tool's
files, and flyway_schema_history (installed_rank, version, type, success) is adopted."""
from __future__ import annotations

from conftest import query
from foreign_tools import FLYWAY_DDL, adopt_and_continue, json_of, run_import, source_sql

VERSIONS = ["20000102_000000_create_users", "20000102_000100_add_user_name", "20000103_000000_create_posts",
            "20000104_000000_seed_admin"]
ROW = ("INSERT INTO flyway_schema_history VALUES ({rank}, {version}, '{description}', 'SQL', '{script}', 1234, "
       "'postgres', now(), 7, true);")


def test_flyway_pairs_join_a_v_without_u_is_irreversible_and_repeatables_are_reported(run_script, tmp_path):
    target = tmp_path / "migrations"

    result = run_import(run_script, "flyway", target, "--json")

    assert result.returncode == 0, result.stderr
    document = json_of(result)
    assert [(m["source_version"], m["version"]) for m in document["migrations"]] == list(zip(
        ["1", "1.1", "2", "3"], VERSIONS))
    assert document["not_imported"] == [{"file": "R__user_emails_view.sql", "reason": document["not_imported"][0][
        "reason"]}] and "repeatable" in document["not_imported"][0]["reason"]
    assert not any(p.name.startswith("R") or "view" in p.name for p in target.iterdir())
    assert "-- DIRECTION: down\nALTER TABLE users DROP COLUMN name;\n" in (target / f"{VERSIONS[1]}.sql").read_text()
    seed = (target / f"{VERSIONS[3]}.sql").read_text()
    assert "-- DIRECTION: down" not in seed and "irreversible" in seed
    assert "not imported: R__user_emails_view.sql: repeatable migration" in \
        run_import(run_script, "flyway", tmp_path / "again", "--dry-run").stdout


def test_flyway_history_is_adopted_then_the_rest_applies_and_rolls_back_past_the_boundary(run_script, db_url,
                                                                                          tmp_path):
    target = tmp_path / "migrations"
    assert run_import(run_script, "flyway", target).returncode == 0
    query(db_url, source_sql("flyway", "V1__Create_users.sql") + source_sql("flyway", "V1_1__Add_user_name.sql"))
    query(db_url, FLYWAY_DDL
          + ROW.format(rank=1, version="'1'", description="Create users", script="V1__Create_users.sql")
          + ROW.format(rank=2, version="'1.1'", description="Add user name", script="V1_1__Add_user_name.sql")
          + ROW.format(rank=3, version="NULL", description="user emails view", script="R__user_emails_view.sql"))

    adopt_and_continue(run_script, db_url, target, "flyway", "flyway_schema_history", VERSIONS[:2], VERSIONS[2:],
                       rollback_to=VERSIONS[0], apply_to=VERSIONS[2])  # the seed has no undo: irreversible

    assert query(db_url, "SELECT column_name FROM information_schema.columns WHERE table_name = 'users' "
                         "ORDER BY ordinal_position") == [("id",), ("email",)]
    assert query(db_url, "SELECT indexname FROM pg_indexes WHERE tablename = 'flyway_schema_history_before_adoption' "
                         "ORDER BY 1") == [("flyway_schema_history_before_adoption_pk",),
                                           ("flyway_schema_history_before_adoption_s_idx",)]
