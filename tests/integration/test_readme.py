"""Every command block in README.md runs, so the README cannot drift from the code.

The README is read as it is: every ```sh block runs, in order, with `bash -e` in one scratch
repository (a bare remote named origin, the sample files the examples name), so a block can
use what an earlier one made. A marker on the line before a block changes that:

    <!-- readme-test: skip WHY -->   the block cannot run here (it installs herd, needs several
                                      machines, needs a crash); WHY is required
    <!-- readme-test: file PATH -->  the block is a file the examples use: it is written to PATH
                                      and committed before any block runs

Agents the README names (claude, codex, aider) are a stand-in on PATH that does what a
worker does: edits a file in its task's scope and commits. CONTRIBUTING.md explains the
markers to whoever adds a block.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import git

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```\s*$", re.M | re.S)
_MARKER = re.compile(r"<!--\s*readme-test:\s*(skip|file)\s+(.*?)\s*-->")

STAND_IN_AGENT = r'''#!PYTHON
"""Stand-in for an agent: append a line to the first file of the task's scope, commit."""
import os, re, subprocess, sys
context = open(os.environ["HERD_CONTEXT_FILE"], encoding="utf-8").read()
scope = re.search(r"^\*\*Scope\*\*: (\S+)", context, re.M)
glob = scope.group(1).rstrip(",") if scope else "NOTES.md"
target = glob.replace("/**", "/notes.md").replace("*", "x")
os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
with open(target, "a", encoding="utf-8") as f:
    f.write(os.environ["HERD_TASK_ID"] + " was here\n")
subprocess.run(["git", "add", target], check=True)
subprocess.run(["git", "commit", "-qm", "stand-in agent: " + os.environ["HERD_TASK_ID"]], check=True)
print('{"total_cost_usd": 0.01}')
'''

#: The files the README's examples name, committed in the scratch repository.
SAMPLE_FILES = {
    "src/auth/tokens.py": "TOKENS = 1\n",
    "src/auth/legacy/old.py": "OLD = 1\n",
    "src/parser.py": "def parse(text):\n    return text.split()\n",
    "docs/index.md": "# docs\n",
    "tests/test_sample.py": "def test_sample():\n    assert True\n",
    "fix.sh": "#!/bin/sh\n# ./fix.sh ID CONTEXT: a worker script in the repository\n"
    'echo "fixed by $1" >> src/parser.py && git commit -qam "fix $1"\n',
    "migrate.sh": '#!/bin/sh\nfor item in "$@"; do echo "migrated $item"; done\n',
    "slow": '#!/bin/sh\nsleep 0.2; echo "done $1"\n',
    "extract.py": "import sys\nfor name in sys.argv[1:]:\n"
    "    print(open(name).read().strip().replace(',', '\\n'))\n",
    "load.py": "import sys\nprint('loaded', len(sys.argv) - 1, 'rows')\n",
    "a.csv": "1,2,3\n",
    "b.csv": "4,5\n",
}


@dataclass(frozen=True)
class Block:
    line: int  # where the block starts in README.md, for the failure message
    lang: str
    body: str
    marker: tuple[str, str] | None  # ("skip", why) or ("file", path)


def readme_blocks(text: str) -> list[Block]:
    blocks = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()].rstrip().rsplit("\n", 1)[-1]
        marker = _MARKER.search(before)
        blocks.append(
            Block(
                text.count("\n", 0, match.start()) + 1,
                match.group(1),
                match.group(2),
                (marker.group(1), marker.group(2)) if marker else None,
            )
        )
    return blocks


def scratch_repository(tmp_path: Path, files: list[Block]) -> tuple[Path, dict[str, str]]:
    repo, remote = tmp_path / "project", tmp_path / "project.git"
    git(tmp_path, "init", "--quiet", "--bare", "-b", "main", str(remote))
    git(tmp_path, "init", "--quiet", "-b", "main", str(repo))
    for name, content in SAMPLE_FILES.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        if content.startswith("#!"):
            path.chmod(0o755)
    for block in files:
        assert block.marker is not None
        path = repo / block.marker[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block.body)
    (repo / ".gitignore").write_text(".herd/\n")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "sample project")
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "--quiet", "-u", "origin", "main")

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    herd = bin_dir / "herd"
    herd.write_text(f'#!/bin/sh\nexec {sys.executable} -m herd "$@"\n')
    for agent in ("claude", "codex", "aider"):
        (bin_dir / agent).write_text(STAND_IN_AGENT.replace("PYTHON", f"{sys.executable} -S"))
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERD_", "BD_"))}
    env.update(
        PATH=os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), env.get("PATH", "")]),
        PYTHONPATH=str(ROOT / "src"),
        HOME=str(home),
        XDG_STATE_HOME=str(home / "state"),
        HERD_PROGRESS="plain",
    )
    return repo, env


def test_readme_blocks_are_found_and_every_marker_is_well_formed() -> None:
    blocks = readme_blocks(README.read_text(encoding="utf-8"))
    assert sum(b.lang == "sh" and b.marker is None for b in blocks) >= 4
    for block in blocks:
        if block.marker and block.marker[0] == "skip":
            assert block.marker[1], f"README.md:{block.line}: say why the block is skipped"


def test_every_readme_command_block_runs(tmp_path: Path) -> None:
    blocks = readme_blocks(README.read_text(encoding="utf-8"))
    files = [b for b in blocks if b.marker and b.marker[0] == "file"]
    repo, env = scratch_repository(tmp_path, files)
    ran = 0
    for block in blocks:
        if block.lang not in ("sh", "python") or block.marker is not None:
            continue
        argv = (
            ["bash", "-e", "-o", "pipefail", "-c", block.body]
            if block.lang == "sh"
            else [sys.executable, "-c", block.body]
        )
        proc = subprocess.run(
            argv, cwd=repo, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
        )
        if proc.returncode != 0:
            pytest.fail(
                f"README.md:{block.line}: the block exited {proc.returncode}\n"
                f"{block.body}\n--- stdout\n{proc.stdout[-3000:]}\n"
                f"--- stderr\n{proc.stderr[-3000:]}"
            )
        ran += 1
    assert ran >= 4
