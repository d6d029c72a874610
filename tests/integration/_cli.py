"""Run herd's real command line inside the test process.

`python -m herd` costs a third of a second of imports per call; a test that creates a few
issues, runs them and reads the result back pays that a dozen times. `in_process` calls the
same entry point (`herd.cli.main`, argument parsing, error handling and exit codes included)
with the test's cwd, environment, stdin, stdout and stderr swapped in, and answers with the
`CompletedProcess` a subprocess would have given. Workers the command starts are still real
processes: only herd itself runs in-process.

What needs a real herd process stays one: signals (Ctrl-C, SIGTERM, kill -9), crash
failpoints (`HERD_FAILPOINT` exits the process), two herds racing, terminals. `HERD_TEST_SUBPROCESS=1`
in the environment of pytest sends every call through a subprocess again, to compare.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from click.testing import CliRunner

_LOCK = threading.Lock()  # cwd and os.environ are per process: one in-process herd at a time


def subprocess_wanted(env: Mapping[str, str]) -> bool:
    """A call that must be a real process: the failpoints end the process with os._exit."""
    return bool(os.environ.get("HERD_TEST_SUBPROCESS")) or "HERD_FAILPOINT" in env


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # sys.exit("message"), as the interpreter does
    return 1


def in_process(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    input: str | bytes | None = None,
    entry: Callable[[list[str]], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`herd ARGS` run by this process in `cwd` with exactly `env` as its environment;
    `entry`: another entry point than `herd.cli.main` (click's own, to compare)."""
    from herd.cli import main

    run: Callable[[list[str]], None] = entry or main

    changes: dict[str, str | None] = {key: None for key in os.environ if key not in env}
    changes.update(env)
    with _LOCK, CliRunner().isolation(input=input, env=changes) as (out, err, _):
        before = os.getcwd()
        os.chdir(cwd)
        try:
            run(list(args))
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc.code)
        except Exception:
            # What the interpreter would print for an uncaught error, exit 1.
            traceback.print_exc()
            code = 1
        finally:
            os.chdir(before)
            sys.stdout.flush()
            sys.stderr.flush()
        stdout = out.getvalue().decode("utf-8", "replace")
        stderr = err.getvalue().decode("utf-8", "replace")
    return subprocess.CompletedProcess([sys.executable, "-m", "herd", *args], code, stdout, stderr)


def run_herd(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    input: str | None = None,
    real: bool = False,
) -> subprocess.CompletedProcess[str]:
    """`herd ARGS`: in this process, or as `python -m herd` (killed after `timeout`) when
    `real` or `subprocess_wanted`."""
    if real or subprocess_wanted(env):
        return subprocess.run(
            [sys.executable, "-m", "herd", *args],
            cwd=cwd,
            env=dict(env),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    return in_process(args, cwd=cwd, env=env, input=input)
