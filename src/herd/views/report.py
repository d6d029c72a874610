"""The checkpoint report of a run (or map): what was expected, what got through, what
failed and why, grouped by cause; optional spot-check of a random sample; md, json, html.

Everything comes from the run journal, so a report can be written for a run that is still
going, one that crashed, or one that finished long ago. Generic over `run_tasks` and
`attempts`: a `herd run` task and a `herd map` item (or batch) are both a row there.
"""

from __future__ import annotations

import json
import random
import secrets
import shlex
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from herd.engine.journal import Journal, Outcome, RunState, TaskState
from herd.errors import BadInput, HerdError
from herd.run.agents import unknown_placeholders
from herd.store import Store
from herd.units import format_duration, format_time
from herd.views.failures import failure_groups, last_meaningful_line

if TYPE_CHECKING:
    from herd.store.journal import AttemptRow, TaskRow, TestRunRow

Report = dict[str, Any]
"""`herd report --json`: the run, its counts, tasks (ReportTask), failure groups, test runs,
verification."""


class AttemptEnding(TypedDict):
    exit_code: int | None
    signal: int | None
    outcome: str
    """An Outcome, "running", or "" (ended without one)."""


class ReportAttempt(AttemptEnding):
    attempt: int
    worker: str | None
    started_at: float
    ended_at: float | None
    duration: float | None
    reason: str
    cost_usd: float | None
    last_line: str
    log: str | None


class ReportTask(TypedDict):
    id: str
    title: str
    item: str
    seq: int
    wave: int
    stage: str
    state: str
    reason: str
    commit: str | None
    landed: str | None
    attempts: list[ReportAttempt]
    duration: float
    exit_codes: list[int | None]
    cost_usd: float | None
    last_line: str


# An attempt that herd or the machine ended shows its outcome, not an exit code.
_ENDED_BY_HERD = {o.value for o in Outcome if o.not_the_task} | {"running"}

PROCESSED = {TaskState.SUCCEEDED.value, TaskState.LANDED.value}
PENDING = {TaskState.QUEUED.value, TaskState.RUNNING.value}


# -- building ------------------------------------------------------------------------


def build(store: Store, run_id: str | None = None) -> Report:
    journal = Journal.open(store, run_id)
    run = journal.run()
    rows = journal.tasks()
    attempts = journal.attempts()
    tests = journal.test_runs()
    titles = _titles(store, [r["task_id"] for r in rows]) if run["kind"] == "run" else {}
    by_task: dict[str, list[ReportAttempt]] = {}
    for a in attempts:
        by_task.setdefault(a["task_id"], []).append(_attempt(a))
    tasks = [_task(r, titles.get(r["task_id"], ""), by_task.get(r["task_id"], []), tests) for r in rows]
    still_running = run["state"] == RunState.RUNNING.value
    counts = {
        "expected": len(tasks),
        "processed": sum(t["state"] in PROCESSED for t in tasks),
        "failed": sum(t["state"] == TaskState.FAILED.value for t in tasks),
        "deferred": sum(
            t["state"] == TaskState.DEFERRED.value or (t["state"] in PENDING and not still_running)
            for t in tasks
        ),
        "ejected": sum(t["state"] == TaskState.EJECTED.value for t in tasks),
    }
    if still_running:
        counts["pending"] = sum(t["state"] in PENDING for t in tasks)
    ended = run["ended_at"] or (None if still_running else _last_time(attempts, tests))
    costs = [t["cost_usd"] for t in tasks if t["cost_usd"] is not None]
    return {
        "run": run["id"],
        "kind": run["kind"],
        "state": run["state"],
        "exit_code": run["exit_code"],
        "base": run["base"],
        "started_at": run["created_at"],
        "ended_at": ended,
        "duration": round((ended or time.time()) - run["created_at"], 3),
        "cost_usd": round(sum(costs), 6) if costs else None,
        "counts": counts,
        "tasks": tasks,
        "failure_groups": failure_groups(tasks, [run["id"]]),
        "test_runs": [_test_run(t) for t in tests],
        "verification": None,
    }


def _titles(store: Store, task_ids: Sequence[str]) -> dict[str, str]:
    from herd.queue.core import Queue

    titles: dict[str, str] = {}
    queue = Queue(store)
    for task_id in task_ids:
        try:
            titles[task_id] = str(queue.show([task_id])[0].get("title", ""))
        except HerdError:  # a task deleted from the tracker since: the report still stands
            continue
    return titles


def _attempt(a: AttemptRow) -> ReportAttempt:
    duration = (a["ended_at"] - a["started_at"]) if a["ended_at"] is not None else None
    return {
        "attempt": a["attempt"],
        "worker": a["worker"],
        "started_at": a["started_at"],
        "ended_at": a["ended_at"],
        "duration": round(duration, 3) if duration is not None else None,
        "exit_code": a["exit_code"],
        "signal": a["signal"],
        "outcome": a["outcome"] or ("running" if a["ended_at"] is None else ""),
        "reason": a["reason"] or "",
        "cost_usd": a["cost_usd"],
        "last_line": last_meaningful_line(a["tail"] or ""),
        "log": a["log_path"],
    }


def _task(row: TaskRow, title: str, attempts: list[ReportAttempt], tests: list[TestRunRow]) -> ReportTask:
    costs = [a["cost_usd"] for a in attempts if a["cost_usd"] is not None]
    last_line = attempts[-1]["last_line"] if attempts else ""
    if row["state"] == TaskState.EJECTED.value:
        # The evidence is the failing test run that named this task as its last commit.
        for test in reversed(tests):
            if test["exit_code"] != 0 and test["commits"] and test["commits"][-1] == row["task_id"]:
                last_line = last_meaningful_line(test["tail"] or "")
                break
    return {
        "id": row["task_id"],
        "title": title,
        "item": subject(row),
        "seq": row["seq"],
        "wave": row["wave"],
        "stage": row["stage"],
        "state": row["state"],
        "reason": row["reason"] or (attempts[-1]["reason"] if attempts else ""),
        "commit": row["commit_sha"],
        "landed": row["landed_sha"],
        "attempts": attempts,
        "duration": round(sum(a["duration"] or 0 for a in attempts), 3),
        "exit_codes": [a["exit_code"] for a in attempts],
        "cost_usd": round(sum(costs), 6) if costs else None,
        "last_line": last_line,
    }


def exit_labels(attempts: Sequence[AttemptEnding]) -> str:
    """`0`, `3,0`, `timeout,0`: what each attempt ended with. An attempt killed by herd has no
    exit code (the table said `None,None` for two timeouts)."""

    def label(a: AttemptEnding) -> str:
        if a["exit_code"] is not None:
            return str(a["exit_code"])
        if a["outcome"] in _ENDED_BY_HERD:
            return a["outcome"]
        return f"signal {a['signal']}" if a["signal"] else "-"

    return ",".join(label(a) for a in attempts)


def subject(row: TaskRow) -> str:
    """What `{}` stands for: a map item (its payload) or else the task id."""
    payload = row.get("payload")
    if not payload:
        return str(row["task_id"])
    try:
        data = json.loads(payload)
    except (TypeError, ValueError):
        return str(payload)
    if isinstance(data, dict):
        for key in ("item", "items", "arg", "args"):
            if key in data:
                data = data[key]
                break
    if isinstance(data, list):
        return " ".join(str(x) for x in data)
    return str(data) if isinstance(data, str | int | float) else str(row["task_id"])


def _test_run(t: TestRunRow) -> dict[str, Any]:
    duration = t["duration"] or 0.0
    return {
        "seq": t["seq"],
        "purpose": t["purpose"],
        "command": t["command"],
        "commits": t["commits"],
        "exit_code": t["exit_code"],
        "passed": t["exit_code"] == 0,
        "duration": round(duration, 3),
        "started_at": t["at"] - duration,
        "ended_at": t["at"],
        "last_line": last_meaningful_line(t["tail"] or ""),
    }


def _last_time(attempts: list[AttemptRow], tests: list[TestRunRow]) -> float | None:
    times = [a["ended_at"] or a["started_at"] for a in attempts] + [t["at"] for t in tests]
    return max(times) if times else None


# -- verification ---------------------------------------------------------------------


def verify(
    report: Report,
    command: str,
    sample: int,
    seed: int | None = None,
    *,
    cwd: Path | None = None,
    timeout: float | None = 600.0,
) -> Report:
    """Run COMMAND on SAMPLE processed tasks/items chosen at random (seeded, so the same
    sample can be checked again). `{}` in an argument becomes the item or task id; without
    `{}` it is appended, as GNU parallel does. No shell: argv via shlex."""
    if sample < 1:
        raise BadInput("--sample must be 1 or more")
    try:
        template = shlex.split(command)
    except ValueError as exc:
        raise BadInput(f"--verify-cmd {command!r} does not parse: {exc}") from None
    if not template:
        raise BadInput("--verify-cmd is empty")
    unknown = [p for p in unknown_placeholders(template) if p != "{id}"]
    if unknown:
        raise BadInput(
            f"--verify-cmd: unknown placeholder {', '.join(unknown)}; {{}} (or {{id}}) is the item or task id"
        )
    seed = secrets.randbelow(2**31) if seed is None else seed
    processed = [t for t in report["tasks"] if t["state"] in PROCESSED]
    chosen = sorted(
        random.Random(seed).sample(processed, min(sample, len(processed))), key=lambda t: t["seq"]
    )
    results = []
    for task in chosen:
        argv = _fill(template, task["item"])
        started = time.monotonic()
        try:
            done = subprocess.run(
                argv, cwd=cwd, capture_output=True, text=True, errors="replace", timeout=timeout, check=False
            )
            code: int | None = done.returncode
            tail = (done.stdout + done.stderr)[-2000:]
        except FileNotFoundError:
            code, tail = None, f"command not found: {argv[0]}"
        except subprocess.TimeoutExpired:
            code, tail = None, f"timed out after {timeout:g}s"
        results.append(
            {
                "task": task["id"],
                "item": task["item"],
                "argv": argv,
                "exit_code": code,
                "passed": code == 0,
                "duration": round(time.monotonic() - started, 3),
                "last_line": last_meaningful_line(tail),
            }
        )
    passed = sum(r["passed"] for r in results)
    report["verification"] = {
        "command": command,
        "seed": seed,
        "sample": len(results),
        "population": len(processed),
        "passed": passed,
        "failed": len(results) - passed,
        "results": results,
    }
    return report["verification"]  # type: ignore[no-any-return]


def _fill(template: list[str], value: str) -> list[str]:
    """`{}` (or `{id}`, as `herd run --cmd` writes it) becomes the value; else it is appended."""
    if any("{}" in arg or "{id}" in arg for arg in template):
        return [arg.replace("{id}", "{}").replace("{}", value) for arg in template]
    return [*template, value]


# -- follow-up issues -----------------------------------------------------------------


def file_followups(store: Store, report: Report) -> list[Report]:
    """One tracker issue per failure group, linked `discovered-from` each failed task.
    Idempotent per run: an issue labelled `herd-run:<run>` and `herd-group:<key>` (open or
    closed) means the group was filed already."""
    from herd.queue.core import Queue

    queue = Queue(store, actor="herd-report")
    run_label = f"herd-run:{report['run']}"
    filed: dict[str, str] = {}
    for issue in queue.list_issues(label=run_label, include_closed=True):
        for label in issue.get("labels") or []:
            if label.startswith("herd-group:"):
                filed[label.removeprefix("herd-group:")] = str(issue["id"])
    out = []
    for group in report["failure_groups"]:
        if group["key"] in filed:
            out.append({"group": group["key"], "issue": filed[group["key"]], "created": False})
            continue
        many = group["count"] != 1
        title = (
            f"{group['count']} task{'s' if many else ''} failed in {report['kind']} "
            f"{report['run']}: {group['reason'] or group['line']}"
        )[:200]
        description = (
            f"`herd report {report['run']}` found {group['count']} failure"
            f"{'s' if many else ''} with the same cause.\n\n"
            f"Reason: {group['reason']}\n\nLast output line: {group['line']}\n\n"
            f"Signature: `{group['signature']}`\n\nTasks: {', '.join(group['tasks'])}\n"
        )
        issue = queue.create(
            title, description=description, issue_type="bug", labels=[run_label, f"herd-group:{group['key']}"]
        )
        for task_id in group["tasks"]:
            try:
                queue.dep_add(str(issue["id"]), task_id, "discovered-from")
            except HerdError:  # a map item is not an issue: the description keeps the trail
                continue
        out.append({"group": group["key"], "issue": str(issue["id"]), "created": True})
    report["followups"] = out
    return out


# -- rendering ------------------------------------------------------------------------


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_json(report: Report) -> str:
    return json.dumps(report, ensure_ascii=False, indent=2)


def to_markdown(report: Report) -> str:
    c = report["counts"]
    noun = "items" if report["kind"] == "map" else "tasks"
    lines = [
        f"# herd {report['kind']} {report['run']}: {report['state']}",
        "",
        f"Started {format_time(report['started_at'])}, "
        f"took {format_duration(report['duration'])}"
        + (f", exit {report['exit_code']}" if report["exit_code"] is not None else "")
        + (f", cost ${report['cost_usd']:.2f}" if report["cost_usd"] is not None else "")
        + (f", base {report['base'][:12]}" if report["base"] else "")
        + ".",
        "",
        "| expected | processed | failed | ejected | deferred |" + (" pending |" if "pending" in c else ""),
        "|---:|---:|---:|---:|---:|" + ("---:|" if "pending" in c else ""),
        f"| {c['expected']} | {c['processed']} | {c['failed']} | {c['ejected']} | "
        f"{c['deferred']} |" + (f" {c['pending']} |" if "pending" in c else ""),
        "",
    ]
    groups = report["failure_groups"]
    if groups:
        failures = sum(g["count"] for g in groups)
        lines += [f"## Failures: {failures}, {len(groups)} cause{'s' if len(groups) != 1 else ''}", ""]
        for n, g in enumerate(groups, 1):
            lines.append(
                f"{n}. **{g['count']} {noun if g['count'] != 1 else noun[:-1]}**: "
                f"{_cell(g['reason'])}" + (f" — `{_cell(g['line'])}`" if g["line"] else "")
            )
            lines.append(f"   {', '.join(g['tasks'])} ({', '.join(g['states'])})")
        lines.append("")
    if report.get("followups"):
        lines += ["## Follow-up issues", ""]
        lines += [
            f"- {f['issue']} ({'filed' if f['created'] else 'already filed'}) for group {f['group']}"
            for f in report["followups"]
        ] + [""]
    v = report["verification"]
    if v:
        lines += [
            f"## Verification: {v['passed']}/{v['sample']} passed",
            "",
            f"`{v['command']}` on {v['sample']} of {v['population']} processed {noun}, "
            f"seed {v['seed']} (re-check the same sample with `--seed {v['seed']}`).",
            "",
            "| task | item | result | exit | time | last line |",
            "|---|---|---|---:|---:|---|",
        ]
        lines += [
            f"| {r['task']} | {_cell(r['item'])} | {'pass' if r['passed'] else 'FAIL'} | "
            f"{r['exit_code']} | {format_duration(r['duration'])} | {_cell(r['last_line'][:80])} |"
            for r in v["results"]
        ] + [""]
    if report["test_runs"]:
        lines += [
            "## Test runs",
            "",
            "| # | purpose | commits | result | time | last line |",
            "|---:|---|---:|---|---:|---|",
        ]
        lines += [
            f"| {t['seq']} | {t['purpose']} | {len(t['commits'])} | "
            f"{'pass' if t['passed'] else 'fail (exit ' + str(t['exit_code']) + ')'} | "
            f"{format_duration(t['duration'])} | {_cell(t['last_line'][:80])} |"
            for t in report["test_runs"]
        ] + [""]
    lines += [
        f"## {noun.capitalize()}",
        "",
        "| id | state | attempts | exit codes | time | cost | commit | reason |",
        "|---|---|---:|---|---:|---:|---|---|",
    ]
    for t in report["tasks"]:
        sha = t["landed"] or t["commit"] or ""
        cost = f"${t['cost_usd']:.2f}" if t["cost_usd"] is not None else ""
        label = t["id"] if t["item"] == t["id"] else f"{t['id']} `{_cell(t['item'][:40])}`"
        lines.append(
            f"| {label} | {t['state']} | {len(t['attempts'])} | "
            f"{exit_labels(t['attempts'])} | {format_duration(t['duration'])} | "
            f"{cost} | {sha[:12]} | {_cell(t['reason'][:80])} |"
        )
    return "\n".join(lines) + "\n"


def render(report: Report, fmt: str) -> str:
    if fmt == "json":
        return to_json(report) + "\n"
    if fmt == "md":
        return to_markdown(report)
    if fmt == "html":
        from herd.views.report_html import to_html

        return to_html(report)
    raise BadInput(f"unknown report format {fmt!r}; use md, json or html")
