"""The one place that turns results and errors into text, for humans and as JSON. Imports: stdlib, model, errors."""
from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import MigrationError, MigrationFailed, Refused
from .model import (GenerateResult, HistoryRow, Migration, PlanResult, RecordResult, RunResult, SchemaDiffResult,
                    SchemaRecordResult, Step, StepFailed)

SCHEMA_VERSION = 1
RUN_KEYS = {"apply": "applied", "rollback": "rolled_back"}
# Plus risk.LintResult and verify.VerifyResult, whose modules render them (see extension_renderers).
Result = PlanResult | RunResult | GenerateResult | RecordResult | SchemaDiffResult | SchemaRecordResult | Any
SCRIPT_FILES = {"plan": "plan_migrations.py", "apply": "apply_migrations.py", "rollback": "rollback_migrations.py",
                "lint": "lint_migrations.py", "verify": "verify_migrations.py", "generate": "generate_migration.py"}
GATE = "medium"    # apply's default --max-risk: plan offers no run command for findings above it
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
    if isinstance(result, (PlanResult, RunResult, GenerateResult, RecordResult, SchemaDiffResult, SchemaRecordResult)):
        return None
    # Imported on demand: their modules pull in the risk rules and snapshot code, which plan and apply start-up
    # need not pay for (issue 2's speed targets).
    from . import risk, verify
    if isinstance(result, risk.LintResult):
        return risk.lint_error, risk.to_json_payload, risk.to_human
    if isinstance(result, verify.VerifyResult):
        return verify.run_error, verify.to_json_payload, verify.to_human
    return None


def run_error(result: Result) -> MigrationError | None:
    """Return the error a finished result stands for (drift found by plan, a failed migration), if any."""
    extension = extension_renderers(result)
    if extension:
        return extension[0](result)
    if isinstance(result, RunResult) and result.failed:
        return failure_error(result.failed, result.invocation)
    if isinstance(result, SchemaDiffResult) and result.changes:
        return Refused(f"The schemas differ: {len(result.changes)} difference(s) from {result.reference}.",
                       code="schema_drift", hint="Capture each intended change in a migration; undo the others.")
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
    return shlex.join(["python", str(path), *words])


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
        if getattr(error, "findings", None) is not None:  # risk_too_high: each finding, for an agent to act on
            doc["error"]["findings"] = error.findings  # type: ignore[attr-defined]
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
        return payload
    if isinstance(result, SchemaDiffResult):
        return {"reference": result.reference, "status": result.status,
                "differences": [c.to_dict() for c in result.changes]}
    if isinstance(result, SchemaRecordResult):
        return {"dry_run": result.dry_run, "recorded": not result.dry_run, "previous_status": result.previous_status,
                "differences": [c.to_dict() for c in result.changes]}
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
    if isinstance(result, RunResult):
        return human_run(result)
    if isinstance(result, SchemaDiffResult):
        if result.status in ("no_snapshot", "stale"):
            return "No snapshot matches the applied migrations yet: the next apply or rollback records one."
        return "\n".join([f"Live schema vs {result.reference}: {len(result.changes)} difference(s)."] +
                         [f"  {c.describe()}" for c in result.changes])
    if isinstance(result, SchemaRecordResult):
        return human_schema_record(result)
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
    for m in p.pending:
        risk = result.risks[m.version].risk if m.version in result.risks else None
        lines.append(f"  pending  {m.version}  {'reversible' if m.reversible else 'IRREVERSIBLE'}"
                     f"{f'  risk {risk.upper()}' if risk else ''}"
                     f"{'  OUT OF ORDER (older than the newest applied)' if m.version in late else ''}")
        if m.version in result.risks:
            from .risk import plan_lines
            lines += plan_lines(result.risks, m.version, indent="           ")
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


def human_schema(result: PlanResult) -> list[str]:
    """Return the live-schema lines of plan: each out-of-band change, or why there was nothing to compare."""
    check = result.schema
    if check is None or check.status == "clean":
        return []
    if check.status == "drift":
        return [f"  SCHEMA   {c.describe()}" for c in check.changes] + [
            "Live schema changed outside the migrations: apply and rollback will refuse (--allow-schema-drift)."]
    if check.status == "stale":
        return [f"  SCHEMA?  {c.describe()}" for c in check.changes] + [
            f"Schema check: stale ({len(check.changes)} difference(s) from the last snapshot, shown above): "
            f"{check.reason}."]
    if check.status == "skipped":
        return [f"Schema check: skipped: {check.reason}."]
    return []


def human_schema_record(result: SchemaRecordResult) -> str:
    lines = [f"  {c.describe()}" for c in result.changes]
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
    if not result.steps:
        return f"Nothing to {verb}."
    done = "applied" if result.command == "apply" else "rolled back"
    lines = [f"  {done:<11} {d.version}  ({d.duration_ms:.0f} ms)" for d in result.done]
    if result.failed:
        lines.append(f"  FAILED      {result.failed.version}  {result.failed.describe()}")
        skipped = len(result.steps) - len(result.done) - 1
        if skipped:
            lines.append(f"  {skipped} later migration(s) not run.")
    lines.append(f"{len(result.done)} migration(s) {done}.")
    return "\n".join(lines)


def error_line(error: MigrationError) -> str:
    """Return the one line a human sees for an error (a server message spanning lines is joined into it)."""
    line = f"error: {error.message}" + (f" Hint: {error.hint}" if error.hint else "")
    return " ".join(line.split("\n"))
