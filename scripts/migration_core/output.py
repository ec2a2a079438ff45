"""The one place that turns results and errors into text, for humans and as JSON. Imports: stdlib, model, errors."""
from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import MigrationError, MigrationFailed, Refused
from .model import HistoryRow, Migration, PlanResult, Step, StepEvent, StepFailed

if TYPE_CHECKING:  # the other results are imported where rendered: plan never builds one (see model.LATER)
    from .model import (ForgetResult, GenerateResult, RecordResult, RunResult, SchemaDiffResult,
                        SchemaRecordResult)
    # Plus risk.LintResult and verify.VerifyResult, whose modules render them (see extension_renderers).
    Result = PlanResult | RunResult | GenerateResult | RecordResult | SchemaDiffResult | SchemaRecordResult | \
        ForgetResult | Any

SCHEMA_VERSION = 1
RUN_KEYS = {"apply": "applied", "rollback": "rolled_back"}
SCRIPT_FILES = {"plan": "plan_migrations.py", "apply": "apply_migrations.py", "rollback": "rollback_migrations.py",
                "lint": "lint_migrations.py", "verify": "verify_migrations.py", "generate": "generate_migration.py"}
GATE = "medium"    # apply's default --max-risk: plan offers no run command for findings above it
PENDING_SHOWN = 10  # plan lists the first 10 pending migrations with nothing of their own to say; --verbose: all
RISK_IGNORE_EDIT = ("if you only added a '-- risk: ignore' comment, that is still an edit: revert it, or use "
                    "apply_migrations.py --accept-checksum VERSION after review")


def redact(value: Any, secrets: list[str]) -> Any:
    """Replace every secret (the forms of config.password_forms) in a text, or in each string value of a document.

    Documents are redacted value by value before serialisation: JSON escaping would hide a password with '"', '\\'
    or non-ASCII in it, and keys are never touched. A secret shorter than 4 characters is replaced only where it
    stands alone (no letter, digit or '_' either side), so a password such as "app" still hides "u:app@host" but
    leaves "applied" readable; the price is that a word equal to such a password is masked too.
    """
    import re  # local: the module's imports belong to the output renderers
    if isinstance(value, dict):
        return {key: redact(item, secrets) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(item, secrets) for item in value]
    if not isinstance(value, str):
        return value
    for secret in secrets:
        if len(secret) >= 4:
            value = value.replace(secret, "***")
        elif secret:
            value = re.sub(rf"(?<!\w){re.escape(secret)}(?!\w)", "***", value)
    return value


def extension_renderers(result: Result) -> tuple[Any, Any, Any] | None:
    """Return (error, json, human) renderers of a lint or verify result, or None for the core results."""
    if isinstance(result, PlanResult) or isinstance(result, other_core_results()):
        return None
    # Imported on demand: their modules pull in the risk rules and snapshot code, which plan and apply start-up
    # need not pay for (issue 2's speed targets).
    from .fleet import report as fleet  # --targets: the fleet's results render themselves
    if isinstance(result, (fleet.FleetPlanResult, fleet.FleetRunResult)):
        return fleet.run_error, fleet.to_json_payload, fleet.to_human
    from .adoption import report as adoption  # import_migrations.py: import and --adopt render themselves
    if isinstance(result, (adoption.ImportResult, adoption.AdoptResult)):
        return adoption.run_error, adoption.to_json_payload, adoption.to_human
    from . import risk, verify
    if isinstance(result, risk.LintResult):
        return risk.lint_error, risk.to_json_payload, risk.to_human
    if isinstance(result, verify.VerifyResult):
        return verify.run_error, verify.to_json_payload, verify.to_human
    return None


def other_core_results() -> tuple[type, ...]:
    """Return the core result types but PlanResult (imported here: plan never builds one, see model.LATER)."""
    from .model import (ForgetResult, GenerateResult, RecordResult, RunResult, SchemaDiffResult,
                        SchemaRecordResult)
    return RunResult, GenerateResult, RecordResult, SchemaDiffResult, SchemaRecordResult, ForgetResult


def run_error(result: Result) -> MigrationError | None:
    """Return the error a finished result stands for (drift found by plan, a failed migration), if any."""
    extension = extension_renderers(result)
    if extension:
        return extension[0](result)
    if isinstance(result, PlanResult) and result.schema and result.schema.status == "drift" \
            and not result.plan.blocked:
        return Refused(f"The live schema changed outside the migrations: {len(result.schema.changes)} difference(s);"
                       " apply and rollback will refuse.", code="schema_drift",
                       hint="Capture the change in a new migration or undo it; apply --allow-schema-drift overrides.")
    if isinstance(result, PlanResult) and result.plan.blocked:
        code = "drift_detected" if result.plan.drift else "missing_file"
        edited = f" ({RISK_IGNORE_EDIT})" if result.plan.drift else ""
        return Refused("Applied migrations differ from the files: apply and rollback will refuse.",
                              code=code, hint="Restore the applied files from version control; never edit an "
                                              f"applied migration, write a new one instead{edited}.")
    if isinstance(result, PlanResult):
        return None
    from .model import RunResult, SchemaDiffResult
    if isinstance(result, RunResult) and result.failed:
        return failure_error(result.failed, result.invocation)
    if isinstance(result, SchemaDiffResult) and result.changes:
        return Refused(f"The schemas differ: {len(result.changes)} difference(s) from {result.reference}.",
                       code="schema_drift", hint="Capture each intended change in a migration; undo the others.")
    return None


def failure_error(f: StepFailed, invocation: tuple[str, ...] = ()) -> MigrationFailed:
    """Explain a failed migration: what happened to its changes, where, and what to do next."""
    undone = "failed part way" if f.statements_total is not None else "failed and was rolled back"
    script = command_line("apply" if f.direction == "up" else "rollback", invocation)
    if f.sqlstate == "55P03":  # lock_not_available: another session holds what the migration needs
        hint = (f"Wait for the blocking session to finish (or end it with SELECT pg_terminate_backend(pid)), "
                f"then run {script} again; or give it longer with --lock-timeout-ms.")
    elif f.statements_total is not None:
        hint = (f"The completed statements stay applied: make the file safe to re-run (IF NOT EXISTS, drop an "
                f"INVALID index), fix {f.path}, then run {script} again.")
    else:
        hint = f"Fix {f.path} (or the database state it depends on), then run {script} again."
    return MigrationFailed(f"Migration {f.version} ({f.direction}) {undone}: {f.describe()} "
                           f"[{f.path}{':' + str(f.line) if f.line else ''}]", hint=hint)


# ---- suggested commands ------------------------------------------------------------------------------------
# Every command the output suggests runs as printed: it repeats the options that shaped the plan (the result's
# invocation: an absolute --migrations-dir, --history-schema, --target/--to, --allow-risk, timeouts ...), quoted.

def command_line(script: str, words: Iterable[str] = ()) -> str:
    """Return the shell command that runs one of the scripts with these arguments, each quoted for the shell.

    The script is named the way the user reached the running one (sys.argv[0], relative or absolute as typed), so
    the command works wherever theirs did; outside our scripts (the MCP tools, tests), by its absolute path.
    """
    ran = Path(sys.argv[0]) if sys.argv and Path(sys.argv[0]).name in SCRIPT_FILES.values() else None
    path = ran.with_name(SCRIPT_FILES[script]) if ran else Path(__file__).resolve().parent.parent / SCRIPT_FILES[script]
    return shlex.join([interpreter(), str(path), *words])


def interpreter() -> str:
    """Name the Python running this script so that a pasted command finds the same one (its venv's packages):
    `python` when that is what PATH finds, else its path, relative when under the working directory."""
    running = Path(sys.executable).absolute()
    on_path = shutil.which("python")
    if on_path and Path(on_path).absolute() == running:
        return "python"
    try:
        return str(running.relative_to(Path.cwd()))
    except ValueError:
        return str(running)


def plan_steps(result: PlanResult) -> list[Migration]:
    """Return the pending migrations apply would run for this plan (up to its --target)."""
    return [m for m in result.plan.pending if result.target is None or m.version <= result.target]


def plan_decision(result: PlanResult) -> str | None:
    """Return what the person must decide before apply can run this plan, or None if it can run as it stands."""
    return preview_refusal(result) or gate_refusal(result)


def preview_refusal(result: PlanResult) -> str | None:
    """Return why apply, even its --dry-run, would refuse this plan: a live-schema difference or out-of-order steps."""
    check = result.schema.status if result.schema else None
    if check == "drift":
        return ("Nothing to run yet: apply refuses while the live schema differs (listed above). Capture each "
                "change in a migration or undo it; running anyway (--allow-schema-drift) is the person's decision.")
    if check == "skipped":
        return "Nothing to run yet: the live-schema check could not run (see above); run plan again once it can."
    if {m.version for m in result.plan.out_of_order} & {m.version for m in plan_steps(result)}:
        return ("Nothing to run yet: apply refuses the OUT OF ORDER migration(s) above. Check they do not conflict "
                "with what was applied since; running them (--allow-out-of-order) is the person's decision.")
    return None


def gate_refusal(result: PlanResult) -> str | None:
    """Return why apply with the default --max-risk would refuse this plan's steps (the preview still runs)."""
    over = [m.version for m in plan_steps(result) if m.version in result.risks
            and result.risks[m.version].risk not in (None, "low", GATE)]
    if not over:
        return None
    return (f"The real apply would refuse: finding(s) above {GATE} risk in {', '.join(over)} (above). Propose the "
            "safer change each hint describes; accepting the risk (--allow-risk) is the person's decision.")


def plan_commands(result: PlanResult, extra: tuple[str, ...] = ()) -> tuple[str | None, str | None]:
    """Return plan's next commands: the preview (apply --dry-run) and the run of exactly this plan (--plan-id).

    None where that command would be refused: drifted or missing files, a live-schema difference, out-of-order
    steps (the preview refuses these too); findings above the risk gate leave only the preview, which shows them.
    """
    if result.plan.blocked or not plan_steps(result) or preview_refusal(result):
        return None, None
    preview = command_line("apply", (*result.invocation, *extra, "--dry-run"))
    run = command_line("apply", (*result.invocation, *extra, "--plan-id", result.plan_id))
    return preview, None if gate_refusal(result) else run


def run_command(result: RunResult, extra: tuple[str, ...] = ()) -> str | None:
    """Return the command that runs exactly what a dry run previewed; None if the real run would be refused."""
    if not result.dry_run or not result.steps or result.would_refuse:
        return None
    return command_line(result.command, (*result.invocation, *extra, "--plan-id", result.plan_id))


# ---- JSON ------------------------------------------------------------------------------------------------

def to_json(command: str, result: Result | None, error: MigrationError | None,
            secrets: list[str] | None = None) -> str:
    """Return the one JSON document a command prints, every secret in its string values redacted."""
    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "command": command, "ok": error is None}
    if result is not None:
        doc.update(json_payload(result))
    elif command in RUN_KEYS:  # refused before running: say so in the same shape as a run that did nothing
        doc.update({RUN_KEYS[command]: [], "failed": None})
    if error is not None:
        doc.update(error.details)
        doc["error"] = {"code": error.code, "message": error.message, "hint": error.hint}
        if getattr(error, "sqlstate", None) is not None:
            doc["error"]["sqlstate"] = error.sqlstate
        if getattr(error, "tool", None) is not None:  # foreign_history_table: the tool it looks like, the table
            doc["error"].update(tool=error.tool, table=error.table)  # type: ignore[attr-defined]
        if getattr(error, "findings", None) is not None:  # risk_too_high: each finding, for an agent to act on
            doc["error"]["findings"] = error.findings  # type: ignore[attr-defined]
        if getattr(error, "files", None) is not None:  # invalid_migration: every invalid file of the directory
            doc["error"]["files"] = error.files  # type: ignore[attr-defined]
    # Round trip through json_default first, so Path and datetime values are strings the redaction can see.
    plain = json.loads(json.dumps(doc, default=json_default))
    return json.dumps(redact(plain, secrets or []), indent=2)


def json_default(value: object) -> object:
    """Serialise the values json cannot: paths and timestamps become strings (to_json redacts them afterwards)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def json_payload(result: Result) -> dict[str, Any]:
    extension = extension_renderers(result)
    if extension:
        return extension[1](result)
    if isinstance(result, PlanResult):
        p = result.plan
        preview, run = plan_commands(result, ("--json",))
        return {"migrations_dir": result.migrations_dir, "plan_id": result.plan_id, "target": result.target,
                "next_command": preview, "run_command": run, "decision": plan_decision(result),
                "applied": [row_json(r) for r in p.applied],
                "pending": [migration_json(m) | risk_fields(result.risks, m.version, None) for m in p.pending],
                "drift": [{"version": d.version, "name": d.name, "recorded_checksum": d.recorded_checksum,
                           "file_checksum": d.file_checksum} for d in p.drift],
                "missing": [row_json(r) for r in p.missing],
                "out_of_order": [migration_json(m) for m in p.out_of_order],
                "schema_check": result.schema.status if result.schema else "skipped",
                "schema_check_reason": result.schema.reason if result.schema else "--no-schema-check",
                "schema_drift": [c.to_dict() for c in result.schema.changes] if result.schema else [],
                "invalid_indexes": result.invalid_indexes,
                "failed": [row_json(r) | {"direction": r.direction, "error_message": r.error_message}
                           for r in p.failed]}
    from .model import ForgetResult, RecordResult, RunResult, SchemaDiffResult, SchemaRecordResult
    if isinstance(result, RunResult):
        key = RUN_KEYS[result.command]
        payload: dict[str, Any] = {
            "dry_run": result.dry_run, "plan_id": result.plan_id, "would_refuse": result.would_refuse,
            "next_command": run_command(result, ("--json",)), "run_command": run_command(result, ("--json",)),
            "steps": [step_json(s) | risk_fields(result.risks, s.version, s.direction) for s in result.steps]
            if result.dry_run else [],
            key: [d.version for d in result.done],
            "durations_ms": {d.version: d.duration_ms for d in result.done},
            "notices": {s.version: list(s.notices) for s in [*result.done, *filter(None, [result.failed])]
                        if s.notices},
        }
        payload["failed"] = failed_json(result.failed)
        if not result.dry_run:
            payload |= {"elapsed_ms": result.elapsed_ms, "now_at": result.now_at,
                        "retried": result.retried is not None, "retried_versions": result.retried or []}
        return payload
    if isinstance(result, SchemaDiffResult):
        return {"reference": result.reference, "status": result.status,
                "differences": [c.to_dict() for c in result.changes]}
    if isinstance(result, SchemaRecordResult):
        return {"dry_run": result.dry_run, "recorded": not result.dry_run, "previous_status": result.previous_status,
                "differences": [c.to_dict() for c in result.changes]}
    if isinstance(result, ForgetResult):
        return {"dry_run": result.dry_run, "applied": [], "failed": None,
                "forgotten": {"version": result.version, "failed_attempt_ids": result.forgotten}}
    if isinstance(result, RecordResult):
        key = "baselined" if result.action == "baseline" else "accepted_checksum"
        return {"dry_run": result.dry_run, "applied": [], "failed": None, key: result.versions}
    return {"path": result.path, "version": result.version, "reversible": result.reversible}


def row_json(row: HistoryRow) -> dict[str, Any]:
    note = row.error_message if row.status == "success" else None  # baseline / accepted-checksum note
    return {"version": row.version, "name": row.name, "checksum": row.checksum, "applied_at": row.applied_at,
            "note": note}


def migration_json(m: Migration) -> dict[str, Any]:
    return {"version": m.version, "name": m.name, "path": m.path, "checksum": m.checksum, "reversible": m.reversible}


def risk_fields(risks: dict[str, Any], version: str, direction: str | None) -> dict[str, Any]:
    """Return a migration's risk, rollback_risk and findings (only those of one direction, when given)."""
    if version not in risks:
        return {}
    from . import risk  # only reached when there are pending migrations to judge
    findings = risks[version].findings
    return risk.risk_json([f for f in findings if direction is None or f.direction == direction])


def step_json(step: Step) -> dict[str, Any]:
    sql, _ = step.migration.section(step.direction)
    return migration_json(step.migration) | {"direction": step.direction, "sql": sql}


def failed_json(f: StepFailed | None) -> dict[str, Any] | None:
    if f is None:
        return None
    return {"version": f.version, "name": f.name, "direction": f.direction, "error": f.describe(),
            "sqlstate": f.sqlstate, "message": f.error, "path": f.path, "line": f.line}


# ---- human -----------------------------------------------------------------------------------------------

def to_human(command: str, result: Result) -> str:
    """Return short readable text: what will happen or what happened, one line per migration."""
    extension = extension_renderers(result)
    if extension:
        return extension[2](result)
    if isinstance(result, PlanResult):
        return human_plan(result)
    from .model import ForgetResult, RecordResult, RunResult, SchemaDiffResult, SchemaRecordResult
    if isinstance(result, RunResult):
        return human_run(result)
    if isinstance(result, SchemaDiffResult):
        if result.status in ("no_snapshot", "stale"):
            return "No snapshot matches the applied migrations yet: the next apply or rollback records one."
        return "\n".join([f"Live schema vs {result.reference}: {len(result.changes)} difference(s)."] +
                         [line for c in result.changes for line in change_lines(c, "  ")])
    if isinstance(result, SchemaRecordResult):
        return human_schema_record(result)
    if isinstance(result, ForgetResult):
        verb = "Would forget" if result.dry_run else "Forgot"
        return (f"{verb} the failed attempt(s) of {result.version} (history row(s) {', '.join(map(str, result.forgotten))}"
                f"): its file no longer exists{'' if result.dry_run else '; plan no longer lists them'}.")
    if isinstance(result, RecordResult):
        what = "baseline: recorded as applied without running" if result.action == "baseline" else \
            "accepted the reviewed checksum change of"
        if not result.versions:
            return "Nothing to record: every migration up to that version is already applied."
        lines = [f"  {'would record' if result.dry_run else 'recorded'}    {v}" for v in result.versions]
        return "\n".join(lines + [f"{what} {len(result.versions)} migration(s)."])
    kind = "" if result.reversible is None else (" (reversible)" if result.reversible else " (irreversible: no down)")
    plan = command_line("plan", ("--migrations-dir", os.path.abspath(result.path.parent)))
    follow = f"Edit it, then run {plan}" if result.reversible is None else f"Next: {plan}"
    return f"Created {result.path}{kind}\n{follow}"


def human_plan(result: PlanResult) -> str:
    p = result.plan
    lines = [f"Migrations in {result.migrations_dir}: {len(p.applied)} applied, {len(p.pending)} pending."]
    if not p.history_exists:
        lines.append("No schema_migrations table yet: nothing has been applied to this database.")
    lines += [f"  applied  {r.version}  (at {r.applied_at:%Y-%m-%d %H:%M:%S %Z}){note_label(r)}" for r in p.applied]
    late = {m.version for m in p.out_of_order}
    quiet = quiet_pending(result, late)
    for m in p.pending:
        if m.version in quiet:
            continue
        risk = result.risks[m.version].risk if m.version in result.risks else None
        lines.append(f"  pending  {m.version}  {'reversible' if m.reversible else 'IRREVERSIBLE'}"
                     f"{f'  risk {risk.upper()}' if risk else ''}"
                     f"{'  OUT OF ORDER (older than the newest applied)' if m.version in late else ''}")
        if m.version in result.risks:
            from .risk import plan_lines
            lines += plan_lines(result.risks, m.version, indent="           ")
    if quiet:
        lines.append(f"  ... and {len(quiet)} more pending, reversible, without findings of their own: "
                     f"{quiet[0]} to {quiet[-1]} (--verbose lists each)")
    if result.risks:
        from .risk import group_lines
        lines += group_lines(result.risks)
    lines += [f"  DRIFT    {d.version}: file changed since applied (recorded {d.recorded_checksum[:12]}, "
              f"file {d.file_checksum[:12]})" for d in p.drift]
    lines += [f"  MISSING  {r.version}: applied, but the file is gone" for r in p.missing]
    lines += [f"  FAILED   {r.version} ({r.direction}) at {r.applied_at:%Y-%m-%d %H:%M:%S}: {r.error_message}"
              for r in p.failed]
    lines += human_schema(result)
    lines += [f"  INVALID  index {i['schema']}.{i['index']} on {i['table']}: left by a failed CREATE INDEX "
              f"CONCURRENTLY; drop it (DROP INDEX CONCURRENTLY) and build it again" for i in result.invalid_indexes]
    if p.blocked:
        lines.append("Drift or missing files: apply and rollback will refuse until the files match what was applied"
                     + (f" ({RISK_IGNORE_EDIT})." if p.drift else "."))
    elif plan_steps(result):
        preview, run = plan_commands(result)
        decision = plan_decision(result)
        if run:
            lines.append(f"Plan id {result.plan_id}. Next: {preview}, then {run}")
        else:
            lines.append(f"Plan id {result.plan_id}. {decision}" + (f" Preview: {preview}" if preview else ""))
    elif p.pending:
        lines.append(f"Plan id {result.plan_id}: nothing pending up to {result.target}.")
    elif not (result.schema and result.schema.status == "drift"):
        lines.append("Up to date: nothing to apply.")
    return "\n".join(lines)


def quiet_pending(result: PlanResult, late: set[str]) -> list[str]:
    """Return the pending versions plan leaves out of its list: beyond the first PENDING_SHOWN, reversible, in
    order, without findings of their own (grouped findings are listed once, below). Nothing with --verbose."""
    if result.verbose:
        return []
    quiet = []
    for m in result.plan.pending[PENDING_SHOWN:]:
        own = False
        if m.version in result.risks:
            from .risk import plan_lines  # loaded only when there are findings
            own = bool(plan_lines(result.risks, m.version))
        if m.reversible and m.version not in late and not own:
            quiet.append(m.version)
    return quiet


def human_schema(result: PlanResult) -> list[str]:
    """Return the live-schema lines of plan: each out-of-band change, or why there was nothing to compare."""
    check = result.schema
    if check is None or check.status == "clean":
        return []
    if check.status == "drift":
        return [line for c in check.changes for line in change_lines(c, "  SCHEMA   ")] + [
            "Live schema changed outside the migrations: apply and rollback will refuse (--allow-schema-drift)."]
    if check.status == "stale":
        return [line for c in check.changes for line in change_lines(c, "  SCHEMA?  ")] + [
            f"Schema check: stale ({len(check.changes)} difference(s) from the last snapshot, shown above): "
            f"{check.reason}."]
    if check.status == "skipped":
        return [f"Schema check: skipped: {check.reason}."]
    return []


WRAP_WIDTH = 100


def change_lines(change: Any, head: str) -> list[str]:
    """Return a schema difference: its line, then, for a value too long for it, before and after in full, wrapped
    (never cut: the whole definition is what the person has to compare)."""
    import textwrap
    lines = [head + change.describe()]
    indent = " " * (len(head) + 2)
    for label, value in (("before", getattr(change, "before", "")), ("after", getattr(change, "after", ""))):
        if value:
            lines += textwrap.wrap(value, WRAP_WIDTH, initial_indent=f"{indent}{label + ':':<8}",
                                   subsequent_indent=indent + " " * 8, break_on_hyphens=False)
    return lines


def human_schema_record(result: SchemaRecordResult) -> str:
    lines = [line for c in result.changes for line in change_lines(c, "  ")]
    verb = "Would record" if result.dry_run else "Recorded"
    return "\n".join(lines + [f"{verb} the live schema as the reference of the drift check (it was "
                              f"{result.previous_status}; {len(result.changes)} difference(s) accepted)."])


def note_label(row: HistoryRow) -> str:
    note = row.error_message or ""
    if note.startswith("baseline"):
        return "  BASELINED"
    return "  CHECKSUM ACCEPTED" if note.startswith("accepted") else ""


def human_run(result: RunResult) -> str:
    verb = "apply" if result.command == "apply" else "roll back"
    if result.dry_run:
        if not result.steps:
            return f"Dry run: nothing to {verb}."
        lines = [f"Dry run: would {verb} {len(result.steps)} migration(s), in this order "
                 f"(plan id {result.plan_id}); nothing was executed."]
        for step in result.steps:
            sql, _ = step.migration.section(step.direction)
            lines.append(f"-- {step.version} ({step.direction})")
            if step.version in result.risks:
                from . import risk
                lines += ["-- " + line for line in risk.plan_lines(result.risks, step.version, "risk ", step.direction)]
            lines += [sql.rstrip(), ""]
        if result.risks:
            from . import risk
            lines += ["-- " + line for line in risk.group_lines(result.risks, indent="risk ")]
        if result.would_refuse:
            lines.append(f"The real run would refuse: {result.would_refuse['message']} {result.would_refuse['hint']}")
            lines.append("Nothing to confirm yet: the person decides first (see the hint), then preview again.")
        else:
            lines.append(f"To run exactly this: {run_command(result)}")
        return "\n".join(lines)
    done = "applied" if result.command == "apply" else "rolled back"
    now = f"now at {result.now_at}" if result.now_at else "no migration is applied now"
    if result.retried is not None:
        return (f"Already {done}: plan {result.plan_id} ran to the end before ({count(len(result.retried))}: "
                f"{result.retried[0]} to {result.retried[-1]}); a retried call, nothing was run; {now}.")
    if not result.steps:
        return f"Nothing to {verb}; {now}."
    # Each migration's line was printed as it finished (terminal.RunProgress); this is the end of the story.
    lines = []
    seconds = f"{(result.elapsed_ms or 0) / 1000:.1f} s"
    if result.failed:
        width = len(str(len(result.steps)))
        lines.append(f"  [{len(result.done) + 1:>{width}}/{len(result.steps)}] FAILED      {result.failed.version}  "
                     f"{result.failed.describe()}")
        skipped = len(result.steps) - len(result.done) - 1
        lines.append(f"{done.capitalize()} {len(result.done)} of {count(len(result.steps))} in {seconds}, then "
                     f"{result.failed.version} failed" + (f" ({skipped} not run)" if skipped else "") + f"; {now}.")
    else:
        lines.append(f"{done.capitalize()} {count(len(result.done))} in {seconds}; {now}.")
    return "\n".join(lines)


def count(n: int, noun: str = "migration") -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def step_line(event: StepEvent, style: Any = None) -> str:
    """Return the line printed as one migration of a run finishes: [n/N], what was done, how long it took."""
    outcome = event.outcome
    done = "applied" if event.step.direction == "up" else "rolled back"
    ms = getattr(outcome, "duration_ms", 0.0)
    took = f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"
    mark = style.mark("ok") if style else ""
    width = len(str(event.total))
    return f"  {mark}[{event.index:>{width}}/{event.total}] {done:<11} {event.step.version}  ({took})"


def error_line(error: MigrationError) -> str:
    """Return the one line a human sees for an error (a server message spanning lines is joined into it)."""
    files = getattr(error, "files", None) or []
    if len(files) > 1:  # every invalid file on a line of its own, each with its hint
        return "\n".join([f"error: {len(files)} migration files are invalid:"] +
                         [" ".join(f"  {f['message']} Hint: {f['hint']}".split("\n")) for f in files] +
                         [f"Hint: {error.hint}"])
    line = f"error: {error.message}" + (f" Hint: {error.hint}" if error.hint else "")
    return " ".join(line.split("\n"))
