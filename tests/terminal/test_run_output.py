"""apply and rollback tell a person what happens at a glance: one line per migration as it finishes ([n/N], its
time), one summary line (how many, how long, the version now at), a live counter on a terminal, and colour and
symbols only on a terminal that allows them (NO_COLOR, --no-color). Pipes get plain text."""
from __future__ import annotations

import re

from terminal_helpers import migration_files, module_db, run, run_in_pty  # noqa: F401  (module_db: a fixture)

ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def test_a_piped_apply_prints_each_migration_once_as_it_finishes_then_one_summary(module_db, tmp_path):
    versions = migration_files(tmp_path / "m", 12)
    result = run("apply", "--migrations-dir", str(tmp_path / "m"), "--history-schema", "piped", db_url=module_db)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 13  # 12 migrations + the summary: no second listing
    for n, (line, version) in enumerate(zip(lines, versions), 1):
        assert re.fullmatch(rf"  \[ ?{n}/12\] applied +{version}  \(\d+ ms\)", line), line
    assert re.fullmatch(rf"Applied 12 migrations in \d+\.\d s; now at {versions[-1]}\.", lines[-1]), lines[-1]
    assert result.stderr == ""  # no "applying ..." lines any more
    assert "\x1b" not in result.stdout + result.stderr

    again = run("apply", "--migrations-dir", str(tmp_path / "m"), "--history-schema", "piped", db_url=module_db)
    assert again.stdout == f"Nothing to apply; now at {versions[-1]}.\n"

    back = run("rollback", "--migrations-dir", str(tmp_path / "m"), "--history-schema", "piped", "--to", versions[9],
               db_url=module_db)
    assert back.returncode == 0, back.stderr
    assert back.stdout.splitlines()[0].startswith(f"  [1/2] rolled back {versions[11]}  (")
    assert back.stdout.splitlines()[-1].startswith("Rolled back 2 migrations in ")
    assert back.stdout.splitlines()[-1].endswith(f"; now at {versions[9]}.")


def test_on_a_terminal_a_live_counter_is_rewritten_in_place_and_erased_before_the_summary(module_db, tmp_path):
    versions = migration_files(tmp_path / "m", 3, prefix="tty")
    code, text = run_in_pty("apply", "--migrations-dir", str(tmp_path / "m"), "--history-schema", "tty",
                            db_url=module_db)

    assert code == 0, text
    assert re.search(r"applying \[1/3\] " + versions[0] + r"  \d+\.\d s", text), text
    assert "\r\x1b[2K" in text                       # rewritten in place
    assert "\x1b[32m✓\x1b[0m [1/3] applied" in text  # a green tick on a terminal
    summary = text.rindex("Applied 3 migrations in")
    assert text.rindex("\r\x1b[2K") < summary         # erased before the summary, which ends the output
    assert text[summary:].strip().endswith(f"now at {versions[-1]}.")
    assert "applying" not in text[summary:]

    (tmp_path / "m" / "20260301_000000_ttyboom.sql").write_text("-- DIRECTION: up\nSELECT 1/0;\n")
    code, text = run_in_pty("apply", "--migrations-dir", str(tmp_path / "m"), "--history-schema", "tty",
                            db_url=module_db)
    assert code == 1
    assert "[1/1] \x1b[31;1mFAILED\x1b[0m      20260301_000000_ttyboom" in text
    assert "\x1b[31;1merror:\x1b[0m Migration 20260301_000000_ttyboom" in text


def test_no_color_and_the_flag_keep_a_terminal_free_of_colour(module_db, tmp_path):
    migration_files(tmp_path / "m", 2, prefix="nc")
    code, text = run_in_pty("apply", "--migrations-dir", str(tmp_path / "m"), "--history-schema", "nocolour",
                            db_url=module_db, env={"NO_COLOR": "1"})
    assert code == 0, text
    assert "[2/2] applied" in text and not ANSI_COLOUR.search(text)

    code, text = run_in_pty("rollback", "--migrations-dir", str(tmp_path / "m"), "--history-schema", "nocolour",
                            "--no-color", db_url=module_db)
    assert code == 0, text
    assert "[1/1] rolled back" in text and not ANSI_COLOUR.search(text)


def test_a_failed_run_ends_with_the_failed_migration_and_what_stays_applied(module_db, tmp_path):
    versions = migration_files(tmp_path / "m", 2, prefix="fl")
    (tmp_path / "m" / "20260301_000000_boom.sql").write_text("-- DIRECTION: up\nSELECT 1/0;\n")
    result = run("apply", "--migrations-dir", str(tmp_path / "m"), "--history-schema", "failing", db_url=module_db)

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert [line.split()[-3] for line in lines[:2]] == versions
    assert lines[2].startswith("  [3/3] FAILED      20260301_000000_boom  SQLSTATE 22012")
    assert lines[3].startswith("Applied 2 of 3 migrations in ")
    assert lines[3].endswith(f"then 20260301_000000_boom failed; now at {versions[-1]}.")
    assert result.stderr.startswith("error: Migration 20260301_000000_boom (up) failed")


def test_json_output_carries_the_summary_and_no_progress(module_db, tmp_path):
    versions = migration_files(tmp_path / "m", 2, prefix="js")
    result = run("apply", "--migrations-dir", str(tmp_path / "m"), "--history-schema", "js", "--json",
                 db_url=module_db)
    import json
    document = json.loads(result.stdout)
    assert result.stderr == ""
    assert document["applied"] == versions and document["now_at"] == versions[-1]
    assert document["elapsed_ms"] > 0 and document["retried"] is False
