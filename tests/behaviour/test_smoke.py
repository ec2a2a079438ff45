import json

from conftest import history, migration, tables


def test_apply_creates_table_and_success_row(db_url, migrations_dir, run_script):
    directory = migrations_dir({"20260101_000000_a.sql": migration("CREATE TABLE a (id int);", "DROP TABLE a;")})
    result = run_script("apply", "--migrations-dir", str(directory), "--json", db_url=db_url)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["applied"] == ["20260101_000000_a"]
    assert "a" in tables(db_url)
    assert history(db_url) == [("20260101_000000_a", "up", "success")]
