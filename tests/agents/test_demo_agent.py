"""The offline demo agent shows the SQL and findings before it asks, never runs what the person did not confirm,
stops where the real run would refuse, mentions failed attempts, and says (by its exit code) when a call failed."""
from __future__ import annotations

from agent_runs import migration_text, run_agent
from conftest import ROOT, history, query, tables

USERS = ("20260208_120000_create_users_table.sql",
         (ROOT / "migrations" / "20260208_120000_create_users_table.sql").read_text(encoding="utf-8"))


def test_the_default_prompt_shows_the_sql_and_findings_then_asks_and_changes_nothing_without_a_yes(db_url):
    result = run_agent(db_url, ROOT / "migrations")

    out = result.stdout
    assert result.returncode == 0, result.stderr
    assert "Skill loaded: database-migration-assistant" in out and "show any drift" in out
    assert '-> tool plan {}' in out and '-> tool apply {"dry_run": true}' in out
    question = out.index("? Execute apply with plan id")
    assert out.index("| CREATE TABLE users (") < question and out.index("(no risk findings)") < question
    assert "You did not confirm, so nothing was changed" in out
    assert history(db_url) == [] and "users" not in tables(db_url)


def test_yes_answers_the_confirmation_so_the_default_prompt_applies_and_a_rollback_prompt_rolls_back(db_url):
    applied = run_agent(db_url, ROOT / "migrations", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "yes (--yes)" in applied.stdout and "Applied 2 migration(s)" in applied.stdout
    assert "users" in tables(db_url)

    rolled = run_agent(db_url, ROOT / "migrations", "--prompt", "Roll back the latest migration.", "--yes")

    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert '-> tool rollback {"dry_run": true}' in rolled.stdout and "| DROP INDEX" in rolled.stdout
    assert "Rolled back 1 migration(s)" in rolled.stdout
    assert history(db_url)[-1] == ("20260208_121500_add_index_on_users_email", "down", "success")


def test_the_agent_stops_without_asking_when_the_dry_run_says_the_real_run_would_refuse(db_url, migrations_dir,
                                                                                        run_script):
    directory = migrations_dir(dict([USERS]) | {"20260301_000000_drop_email.sql": migration_text(
        "ALTER TABLE users DROP COLUMN email;", "ALTER TABLE users ADD COLUMN email text;")})
    assert run_script("apply", "--migrations-dir", str(directory), "--target", USERS[0][:-4],
                      db_url=db_url).returncode == 0
    before = history(db_url)

    result = run_agent(db_url, directory, "--yes")

    assert result.returncode == 1, result.stdout
    assert "! high dropping_column line 2" in result.stdout      # the finding, shown
    assert "the real apply would refuse" in result.stdout and "nothing was changed" in result.stdout
    assert "? Execute" not in result.stdout and "Traceback" not in result.stdout + result.stderr
    assert history(db_url) == before
    assert query(db_url, "SELECT count(*) FROM information_schema.columns WHERE column_name = 'email'") == [(1,)]


def test_a_failed_apply_makes_the_exit_code_non_zero_and_the_next_summary_mentions_the_failed_attempt(
        db_url, migrations_dir):
    directory = migrations_dir({"20260301_000000_broken.sql": migration_text("SELECT 1/0;", "SELECT 1;")})

    failed = run_agent(db_url, directory, "--yes")

    assert failed.returncode == 1, failed.stdout
    assert "Migration 20260301_000000_broken failed" in failed.stdout
    assert "== 1 tool call(s) failed: apply (migration_failed)" in failed.stdout
    assert history(db_url) == [("20260301_000000_broken", "up", "failed")]

    summary = run_agent(db_url, directory, "--prompt", "Show the plan in dry-run mode only.")

    assert summary.returncode == 0, summary.stdout
    assert "1 failed attempt(s): 20260301_000000_broken (up): SQLSTATE 22012: division by zero" in summary.stdout
    assert history(db_url) == [("20260301_000000_broken", "up", "failed")]
