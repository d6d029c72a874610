"""`herd mcp` refusing to start: no store, or no MCP SDK (these need no SDK to run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from _queue_helpers import herd, herd_env


def test_herd_mcp_outside_a_repository_exits_3(tmp_path: Path) -> None:
    done = herd("mcp", cwd=tmp_path, check=3)
    assert "herd init" in done.stderr and done.stdout == ""


def test_herd_mcp_without_the_sdk_says_which_extra_to_install(tmp_path: Path) -> None:
    herd("init", cwd=tmp_path)
    # The SDK made unimportable in this one interpreter, as on a machine without the extra.
    code = "import sys; sys.modules['mcp'] = None; from herd.cli import main; main(['mcp'])"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=herd_env(),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("herd: error: herd mcp needs the MCP SDK") and "[mcp]" in done.stderr
    assert done.stderr.count("\n") == 1 and done.stdout == ""
