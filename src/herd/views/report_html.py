"""The HTML report: one self-contained file (inline CSS and SVG, no script, no network).

Elements carry ids and data-* attributes (`#count-failed[data-count]`,
`rect[data-kind=attempt]`, ...) so a test can check the rendered DOM in a real browser.
"""

from __future__ import annotations

import re
import time
from html import escape
from typing import Any

from herd.units import format_duration, format_time, plural
from herd.views.report import exit_labels

Report = dict[str, Any]

COLOURS = {
    "ok": "#2f9e5e",
    "failed": "#d9534f",
    "timeout": "#e8833a",
    "memory": "#e8833a",
    "crash": "#a23b72",
    "scope": "#7b5cd6",
    "push": "#7b5cd6",
    "empty": "#9aa3ad",
    "history": "#7b5cd6",
    "interrupted": "#9aa3ad",
    "running": "#3b82c4",
    "ejected": "#e0a526",
}
STATE_COLOURS = {
    "landed": "#2f9e5e",
    "succeeded": "#5fb98a",
    "failed": "#d9534f",
    "ejected": "#e0a526",
    "deferred": "#9aa3ad",
    "queued": "#c4cad1",
    "running": "#3b82c4",
    "done": "#2f9e5e",
    "partial": "#e0a526",
    "interrupted": "#9aa3ad",
}

TEST_MARK = {"stack": "S", "rerun": "R", "bisect": "B", "base": "0"}

CSS = """
:root { --fg:#1f2933; --muted:#6b7785; --line:#e3e7ec; --bg:#f6f8fa; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
       color:var(--fg); background:var(--bg); }
main { max-width:1360px; margin:0 auto; padding:24px 28px 48px; }
h1 { font-size:22px; margin:0 0 4px; } h1 code { font-size:20px; }
h2 { font-size:16px; margin:28px 0 10px; }
.meta { color:var(--muted); margin-bottom:18px; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; color:#fff;
         font-size:12px; font-weight:600; vertical-align:middle; }
.cards { display:flex; gap:12px; flex-wrap:wrap; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:10px 16px;
        min-width:130px; border-top:4px solid var(--c); }
.card .n { font-size:28px; font-weight:700; } .card .l { color:var(--muted); font-size:12px;
        text-transform:uppercase; letter-spacing:.04em; }
section.panel { background:#fff; border:1px solid var(--line); border-radius:8px;
        padding:14px 16px; }
svg text { font:11px system-ui,sans-serif; fill:var(--fg); }
svg .lane-label { font-weight:600; } svg .bar-label { fill:#fff; font-size:10px; }
svg .tick { fill:var(--muted); }
.legend { display:flex; gap:14px; flex-wrap:wrap; margin-top:8px; color:var(--muted);
          font-size:12px; }
.legend span::before { content:""; display:inline-block; width:10px; height:10px;
          margin-right:5px; border-radius:2px; background:var(--c); vertical-align:-1px; }
table { width:100%; border-collapse:collapse; background:#fff; }
th, td { text-align:left; padding:5px 8px; border-bottom:1px solid var(--line);
         vertical-align:top; }
th { font-size:12px; color:var(--muted); text-transform:uppercase; letter-spacing:.03em; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
code, .mono { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12px; }
.dot { display:inline-block; width:10px; height:10px; border-radius:50%; margin-right:3px; }
.group { border-left:4px solid #d9534f; background:#fff; padding:8px 12px; margin:8px 0;
         border-radius:0 6px 6px 0; border-top:1px solid var(--line);
         border-right:1px solid var(--line); border-bottom:1px solid var(--line); }
.group .count { font-weight:700; font-size:16px; margin-right:8px; }
.group .sig { color:var(--muted); } .muted { color:var(--muted); }
.pass { color:#2f9e5e; font-weight:600; } .fail { color:#d9534f; font-weight:600; }
"""


def _natural(text: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text)]


def _badge(state: str) -> str:
    colour = STATE_COLOURS.get(state, COLOURS.get(state, "#6b7785"))
    return f'<span class="badge" style="background:{colour}">{escape(state)}</span>'


def to_html(report: Report) -> str:
    e = escape
    c = report["counts"]
    kind = "items" if report["kind"] == "map" else "tasks"
    cards = "".join(
        f'<div class="card" id="count-{k}" data-count="{c[k]}" style="--c:{colour}">'
        f'<div class="n">{c[k]}</div><div class="l">{k}</div></div>'
        for k, colour in (
            ("expected", "#3b82c4"),
            ("processed", "#2f9e5e"),
            ("failed", "#d9534f"),
            ("ejected", "#e0a526"),
            ("deferred", "#9aa3ad"),
            ("pending", "#c4cad1"),
        )
        if k in c
    )
    meta = (
        f"started {format_time(report['started_at'])} · "
        f"took {format_duration(report['duration'])}"
        + (f" · exit {report['exit_code']}" if report["exit_code"] is not None else "")
        + (f" · cost ${report['cost_usd']:.2f}" if report["cost_usd"] is not None else "")
        + (f" · base <code>{e(report['base'][:12])}</code>" if report["base"] else "")
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>herd {e(report['kind'])} {e(report['run'])}</title>",
        f"<style>{CSS}</style></head><body><main>",
        f'<h1 id="run" data-run="{e(report["run"])}" data-state="{e(report["state"])}">'
        f"herd {e(report['kind'])} <code>{e(report['run'])}</code> {_badge(report['state'])}</h1>",
        f'<div class="meta">{meta}</div>',
        f'<div class="cards" id="counts">{cards}</div>',
        "<h2>Timeline</h2>",
        f'<section class="panel">{timeline(report)}</section>',
    ]
    parts += _tests(report) + _groups(report) + _verification(report, kind)
    parts += _tasks(report, kind)
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


def timeline(report: Report, width: int = 1280) -> str:
    """One lane per worker slot, one bar per attempt; test runs on their own lane."""
    attempts = [(t, a) for t in report["tasks"] for a in t["attempts"]]
    tests = report["test_runs"]
    start = report["started_at"]
    ends = [a["ended_at"] or time.time() for _, a in attempts] + [t["ended_at"] for t in tests]
    span = max([*ends, start + 1.0]) - start
    lanes = sorted({a["worker"] or "?" for _, a in attempts}, key=_natural)
    if tests:
        lanes.append("tests")
    left, lane_h, top = 110, 26, 22
    plot = width - left - 16
    height = top + lane_h * len(lanes) + 8

    def x(ts: float) -> float:
        return float(left + (ts - start) / span * plot)

    out = [
        f'<svg id="timeline" viewBox="0 0 {width} {height}" width="100%" '
        f'xmlns="http://www.w3.org/2000/svg" role="img" data-lanes="{len(lanes)}">'
    ]
    step = _tick_step(span)
    tick = 0.0
    while tick <= span + 1e-9:
        tx = x(start + tick)
        out.append(
            f'<line x1="{tx:.1f}" y1="{top - 4}" x2="{tx:.1f}" y2="{height - 6}" '
            f'stroke="#eef1f4"/><text class="tick" x="{tx:.1f}" y="{top - 8}" '
            f'text-anchor="middle">{format_duration(tick)}</text>'
        )
        tick += step
    for n, lane in enumerate(lanes):
        y = top + n * lane_h
        fill = "#f7f9fb" if n % 2 else "#ffffff"
        out.append(
            f'<rect x="{left}" y="{y}" width="{plot}" height="{lane_h}" fill="{fill}"/>'
            f'<text class="lane-label" x="{left - 8}" y="{y + lane_h / 2 + 4}" '
            f'text-anchor="end">{escape(lane.split("/")[-1])}</text>'
        )
    for task, a in attempts:
        y = top + lanes.index(a["worker"] or "?") * lane_h + 4
        x0 = x(a["started_at"])
        w = max(2.0, x(a["ended_at"] or time.time()) - x0)
        outcome = a["outcome"] or "running"
        shown = "ejected" if task["state"] == "ejected" and outcome == "ok" else outcome
        label = f"{task['id']} #{a['attempt']}"
        tip = (
            f"{task['id']} attempt {a['attempt']}: {outcome}"
            + (f" (task {task['state']})" if shown == "ejected" else "")
            + f", {format_duration(a['duration'])}"
            + (f"\n{a['reason']}" if a["reason"] else "")
        )
        out.append(
            f'<g><rect data-kind="attempt" data-task="{escape(task["id"])}" '
            f'data-attempt="{a["attempt"]}" data-outcome="{escape(outcome)}" '
            f'x="{x0:.1f}" y="{y}" width="{w:.1f}" height="{lane_h - 8}" rx="3" '
            f'fill="{COLOURS.get(shown, "#6b7785")}"><title>{escape(tip)}</title></rect>'
            + (
                f'<text class="bar-label" x="{x0 + 4:.1f}" y="{y + lane_h / 2}" '
                f'pointer-events="none">{escape(label)}</text>'
                if w > 7 * len(label)
                else ""
            )
            + "</g>"
        )
    for t in tests:
        y = top + (len(lanes) - 1) * lane_h + 4
        x0 = x(t["started_at"])
        w = max(3.0, x(t["ended_at"]) - x0)
        verdict = "passed" if t["passed"] else f"failed (exit {t['exit_code']})"
        tip = (
            f"test {t['purpose']} on {plural(len(t['commits']), 'commit')}: {verdict}, "
            f"{format_duration(t['duration'])}"
        )
        out.append(
            f'<rect data-kind="test" data-purpose="{escape(t["purpose"])}" '
            f'data-passed="{str(t["passed"]).lower()}" x="{x0:.1f}" y="{y}" '
            f'width="{w:.1f}" height="{lane_h - 8}" rx="2" '
            f'fill="{COLOURS["ok"] if t["passed"] else COLOURS["failed"]}" '
            f'stroke="#fff"><title>{escape(tip)}</title></rect>'
            + (
                f'<text class="bar-label" x="{x0 + w / 2:.1f}" y="{y + lane_h / 2}" '
                f'text-anchor="middle" pointer-events="none">{TEST_MARK.get(t["purpose"], "?")}'
                "</text>"
                if w > 12
                else ""
            )
        )
    out.append("</svg>")
    used = {
        ("ejected" if t["state"] == "ejected" and a["outcome"] == "ok" else a["outcome"] or "running")
        for t, a in attempts
    }
    legend = "".join(
        f'<span style="--c:{COLOURS.get(k, "#6b7785")}">{escape(k)}</span>' for k in sorted(used)
    )
    hint = "hover a bar for task, attempt and duration · tests lane: S stack, R rerun, B bisect, 0 base"
    return (
        "".join(out) + f'<div class="legend">{legend}'
        f'<span class="muted" style="--c:transparent">{hint}</span></div>'
    )


def _tick_step(span: float) -> float:
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200):
        if span / step <= 12:
            return float(step)
    return span / 10


def _tests(report: Report) -> list[str]:
    tests = report["test_runs"]
    if not tests:
        return []
    rows = []
    for t in tests:
        upto = t["commits"][-1] if t["commits"] else "base"
        verdict = (
            '<span class="pass">pass</span>'
            if t["passed"]
            else f'<span class="fail">fail (exit {t["exit_code"]})</span>'
        )
        rows.append(
            f'<tr data-purpose="{escape(t["purpose"])}"><td class="num">{t["seq"]}</td>'
            f"<td>{escape(t['purpose'])}</td><td class='num'>{len(t['commits'])}</td>"
            f"<td><code>{escape(upto)}</code></td><td>{verdict}</td>"
            f"<td class='num'>{format_duration(t['duration'])}</td>"
            f"<td class='mono'>{escape(t['last_line'][:120])}</td></tr>"
        )
    bisects = sum(t["purpose"] == "bisect" for t in tests)
    return [
        f"<h2>Test runs ({len(tests)}{f', {bisects} bisection steps' if bisects else ''})</h2>",
        '<table id="test-runs"><tr><th class="num">#</th><th>purpose</th>'
        '<th class="num">commits</th><th>up to</th><th>result</th><th class="num">time</th>'
        "<th>last line</th></tr>",
        *rows,
        "</table>",
    ]


def _groups(report: Report) -> list[str]:
    groups = report["failure_groups"]
    if not groups:
        return []
    failures = sum(g["count"] for g in groups)
    out = [
        f'<h2 id="failures" data-failures="{failures}" data-groups="{len(groups)}">'
        f"Failures: {failures}, {len(groups)} cause{'s' if len(groups) != 1 else ''}</h2>"
    ]
    for g in groups:
        out.append(
            f'<div class="group" data-group="{g["key"]}" data-count="{g["count"]}">'
            f'<span class="count">{g["count"]}&times;</span>{escape(g["reason"])}'
            + (f'<div class="mono">{escape(g["line"])}</div>' if g["line"] else "")
            + f'<div class="sig mono">{escape(g["signature"])}</div>'
            f'<div class="muted">{escape(", ".join(g["tasks"]))} '
            f"({escape(', '.join(g['states']))})</div></div>"
        )
    return out


def _verification(report: Report, kind: str) -> list[str]:
    v = report.get("verification")
    if not v:
        return []
    rows = "".join(
        f'<tr data-verified="{str(r["passed"]).lower()}"><td><code>{escape(r["task"])}</code></td>'
        f"<td class='mono'>{escape(r['item'][:60])}</td><td>"
        + ('<span class="pass">pass</span>' if r["passed"] else '<span class="fail">FAIL</span>')
        + f"</td><td class='num'>{r['exit_code']}</td><td class='num'>{format_duration(r['duration'])}</td>"
        f"<td class='mono'>{escape(r['last_line'][:100])}</td></tr>"
        for r in v["results"]
    )
    return [
        f'<h2 id="verification" data-passed="{v["passed"]}" data-sample="{v["sample"]}" '
        f'data-seed="{v["seed"]}">Verification: {v["passed"]}/{v["sample"]} passed</h2>',
        f'<p class="muted"><code>{escape(v["command"])}</code> on {v["sample"]} of '
        f"{v['population']} processed {kind}, seed {v['seed']}</p>",
        '<table><tr><th>task</th><th>item</th><th>result</th><th class="num">exit</th>'
        f'<th class="num">time</th><th>last line</th></tr>{rows}</table>',
    ]


def _tasks(report: Report, kind: str) -> list[str]:
    rows = []
    for t in report["tasks"]:
        dots = "".join(
            f'<span class="dot" title="attempt {a["attempt"]}: {escape(a["outcome"] or "")}" '
            f'style="background:{COLOURS.get(a["outcome"] or "running", "#6b7785")}"></span>'
            for a in t["attempts"]
        )
        sha = t["landed"] or t["commit"] or ""
        cost = f"${t['cost_usd']:.2f}" if t["cost_usd"] is not None else ""
        name = escape(t["title"] or (t["item"] if t["item"] != t["id"] else ""))
        rows.append(
            f'<tr data-task="{escape(t["id"])}" data-state="{escape(t["state"])}">'
            f"<td><code>{escape(t['id'])}</code></td><td>{name}</td><td>{_badge(t['state'])}</td>"
            f"<td>{dots}</td><td class='mono'>{escape(exit_labels(t['attempts']))}</td>"
            f"<td class='num'>{format_duration(t['duration'])}</td><td class='num'>{cost}</td>"
            f"<td><code>{escape(sha[:12])}</code></td>"
            f"<td>{escape(t['reason'][:140])}</td></tr>"
        )
    return [
        f"<h2>{kind.capitalize()} ({len(rows)})</h2>",
        '<table id="tasks"><tr><th>id</th><th>title / item</th><th>state</th>'
        '<th>attempts</th><th>exit</th><th class="num">time</th><th class="num">cost</th>'
        "<th>commit</th><th>reason</th></tr>",
        *rows,
        "</table>",
    ]
