"""The hot queue calls without click: `herd update ID --claim ... --json` and
`herd ready ... --json`, what workers and scripts run thousands of times.

Importing click costs ~40 ms of CPU on a 2-core machine while a claim's SQL takes 3 ms, so
these argv shapes are parsed here, by the same flags and with the same output and errors as
the click commands in `queue_cmds`. Anything else (another flag, `--help`, a value that does
not parse, text output) returns False and click handles it, usage errors included.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterable, Iterator

from herd.errors import EXIT_INTERRUPTED, HerdError

# `typing` costs every command several ms of imports; mypy reads any `TYPE_CHECKING` as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: A list is written one element per line, each compact as the store keeps it: `indent`
#: would make `json` use its pure-Python encoder (3.7x slower on 50,000 records, half of
#: `herd list --json`'s time), and one record per line still reads and greps well (as
#: JSONL does). Objects (one issue, a summary) stay indented.
compact_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

_SORTS = ("priority", "hybrid", "oldest")
# Per command: flag -> (destination, takes a value, repeatable).
_FLAGS: dict[str, dict[str, tuple[str, bool, bool]]] = {
    "update": {
        "--claim": ("claim", False, False),
        "--actor": ("actor", True, False),
        "--lease": ("lease", True, False),
        "--json": ("json", False, False),
        "--db": ("db", True, False),
    },
    "ready": {
        "--limit": ("limit", True, False),
        "-n": ("limit", True, False),
        "--label": ("labels", True, True),
        "-l": ("labels", True, True),
        "--sort": ("sort", True, False),
        "-s": ("sort", True, False),
        "--assignee": ("assignee", True, False),
        "-a": ("assignee", True, False),
        "--unassigned": ("unassigned", False, False),
        "-u": ("unassigned", False, False),
        "--claim": ("claim", False, False),
        "--actor": ("actor", True, False),
        "--json": ("json", False, False),
        "--db": ("db", True, False),
    },
}


def write_json_lines(items: Iterable[str]) -> None:
    """A JSON array on stdout from already-encoded elements, one per line, written as they
    come (a long answer is never held whole)."""
    out = sys.stdout
    first = True
    batch: list[str] = []
    for item in items:
        batch.append(("[\n  " if first else ",\n  ") + item)
        first = False
        if len(batch) == 1000:
            out.write("".join(batch))
            batch.clear()
    batch.append("[]\n" if first else "\n]\n")
    out.write("".join(batch))
    out.flush()


def fail(message: str, exit_code: int, as_json: bool, label: str = "error: ") -> None:
    """One line on stderr; with --json, the error object on stdout too (scripts read it)."""
    sys.stderr.write(f"herd: {label}{message}\n")
    if as_json:
        try:
            sys.stdout.write(
                json.dumps({"error": message, "exit_code": exit_code}, ensure_ascii=False) + "\n"
            )
            sys.stdout.flush()
        except BrokenPipeError:
            pass
    sys.exit(exit_code)


def issue_line(issue: dict[str, Any]) -> str:
    extra = f" @{issue['assignee']}" if issue.get("assignee") else ""
    return (
        f"{issue['id']} [P{issue.get('priority', 2)}] [{issue.get('issue_type', 'task')}] "
        f"{issue.get('status')}{extra} - {issue.get('title', '')}"
    )


def run(args: list[str]) -> bool:
    """Run `args` here when they are one of the hot shapes; False to leave them to click."""
    parsed = _parse(args)
    if parsed is None:
        return False
    command, opts, positional = parsed
    with answering_errors(as_json=True):
        if command == "update":
            _claim(opts, positional)
        else:
            _ready(opts)
    return True


@contextlib.contextmanager
def answering_errors(*, as_json: bool) -> Iterator[None]:
    """What click's error handler (app.run) does, for the click-free paths: a HerdError
    or Ctrl-C becomes its message and exit code; a reader that left ends quietly."""
    try:
        yield
    except HerdError as exc:
        fail(str(exc), exc.exit_code, as_json)
    except KeyboardInterrupt:
        fail("interrupted", EXIT_INTERRUPTED, as_json, label="")
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(0)


def _parse(args: list[str]) -> tuple[str, dict[str, Any], list[str]] | None:
    if not args or args[0] not in _FLAGS:
        return None
    flags = _FLAGS[args[0]]
    opts: dict[str, Any] = {"labels": []}
    positional: list[str] = []
    words = iter(args[1:])
    for word in words:
        name, eq, value = word.partition("=") if word.startswith("--") else (word, "", "")
        if not word.startswith("-") or word == "-":
            positional.append(word)
            continue
        spec = flags.get(name)
        if spec is None:
            return None
        dest, takes_value, repeat = spec
        if takes_value and not eq:
            following = next(words, None)
            if following is None:
                return None
            value = following
        elif not takes_value and eq:
            return None
        if repeat:
            opts[dest].append(value)
        elif dest in opts:
            return None  # given twice: click's rule (the last wins) is not worth copying
        else:
            opts[dest] = value if takes_value else True
    if not opts.get("json"):
        return None
    if args[0] == "update" and (not opts.get("claim") or len(positional) != 1):
        return None
    if args[0] == "ready" and (positional or not _ready_values_parse(opts)):
        return None
    return args[0], opts, positional


def _ready_values_parse(opts: dict[str, Any]) -> bool:
    try:
        opts["limit"] = int(opts.get("limit", 100))
    except ValueError:
        return False
    return opts.setdefault("sort", "priority") in _SORTS


def _queue(opts: dict[str, Any]) -> Any:
    from herd.queue.core import Queue
    from herd.store import Store, find_db_file

    return Queue(Store(find_db_file(opts.get("db") or os.environ.get("HERD_DB") or None)))


def _split(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _claim(opts: dict[str, Any], positional: list[str]) -> None:
    from herd.units import duration

    lease = duration(opts.get("lease", "30m"))
    issue = _queue(opts).claim(positional[0], opts.get("actor"), lease)
    sys.stdout.write(json.dumps(issue, ensure_ascii=False, indent=2) + "\n")


def _ready(opts: dict[str, Any]) -> None:
    from herd.errors import BadInput

    queue = _queue(opts)
    labels = _split(opts["labels"])
    if opts.get("claim"):
        if opts.get("assignee"):
            raise BadInput("--claim cannot be combined with --assignee (it claims only unassigned issues)")
        issue = queue.claim_next_ready(opts.get("actor"), labels=labels, sort=opts["sort"])
        write_json_lines([compact_json(issue)] if issue else [])
        return
    write_json_lines(
        queue.ready_json(
            limit=opts["limit"],
            labels=labels,
            sort=opts["sort"],
            assignee=opts.get("assignee"),
            unassigned=bool(opts.get("unassigned")),
        )
    )
