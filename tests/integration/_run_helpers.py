"""Shared helpers for the `herd run` tests: a real repo with a bare remote, issues made
through the real CLI, and a fake agent that is a small executable really editing files.

The fake agent reads its orders from the task's context file (the Description
section), the way a real agent reads its task:

    edit: PATH        append a line to PATH (repeatable)
    nocommit          leave the edits uncommitted (herd must commit them)
    commits: N        make N commits instead of one
    fail-attempts: N  exit 3 (after printing) on attempts 1..N
    hang              start a grandchild and sleep forever
    child             start a grandchild that sleeps forever, then carry on
    sleep: SECONDS    sleep before editing
    push              try `git push origin HEAD:refs/heads/sneaky`
    push-no-verify: URL   try `git push --no-verify URL HEAD:refs/heads/sneaky2`
    switch-branch     commit on a new branch of its own instead of the task branch
    detach            commit on a detached HEAD
    rewrite           commit on an orphan history (not a descendant of the base)
    memory: MB        hold that many MB of RSS for a few seconds

Every invocation appends one JSON line (task, attempt, pid, env, argv, cwd,
start/end) to $FAKE_LOG so tests can see what ran, how often, and when.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
from _queue_helpers import herd, herd_env
from conftest import git, make_repo

FAKE_AGENT = r"""#!PYTHON
import json, os, re, subprocess, sys, time

start = time.time()
context_path = os.environ.get("HERD_CONTEXT_FILE", "")
context = open(context_path, encoding="utf-8").read() if context_path else ""
description = context.split("### Description", 1)[-1].split("### Previous attempt failed")[0]
orders = [line.strip() for line in description.splitlines() if line.strip()]
attempt = int(os.environ.get("HERD_ATTEMPT", "0"))
record = {"task": os.environ.get("HERD_TASK_ID"), "attempt": attempt, "pid": os.getpid(),
          "argv": sys.argv, "cwd": os.getcwd(), "start": start,
          "env": {k: v for k, v in os.environ.items() if k.startswith(("HERD_", "GIT_CONFIG"))}}

def log(**extra):
    with open(os.environ["FAKE_LOG"], "a", encoding="utf-8") as f:
        f.write(json.dumps({**record, **extra, "end": time.time()}) + "\n")

def value(key):
    for o in orders:
        if o.startswith(key + ":"):
            return o.split(":", 1)[1].strip()
    return None

print(f"fake agent: {record['task']} attempt {attempt}")
if "child" in orders:  # a grandchild that would outlive the worker if herd let it
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
sleep = value("sleep")
if sleep:
    time.sleep(float(sleep))
failing = int(value("fail-attempts") or 0)
if attempt <= failing:
    print(f"fake agent: simulated failure on attempt {attempt} (tests are red)", flush=True)
    print("boom: the last line of a failing worker", file=sys.stderr, flush=True)
    log(result="fail")
    sys.exit(3)
if "hang" in orders:
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print("fake agent: hanging", flush=True)
    log(result="hang")
    time.sleep(600)
mb = value("memory")
if mb:
    hog = bytearray(int(mb) * 1024 * 1024)
    for i in range(0, len(hog), 4096):
        hog[i] = 1
    print("fake agent: holding memory", flush=True)
    time.sleep(10)
if "switch-branch" in orders:
    subprocess.run(["git", "checkout", "-q", "-b", f"side-{record['task']}-{attempt}"],
                   check=True)
if "detach" in orders:
    subprocess.run(["git", "checkout", "-q", "--detach"], check=True)
if "rewrite" in orders:
    branch = f"rewritten-{record['task']}-{attempt}"
    subprocess.run(["git", "checkout", "-q", "--orphan", branch], check=True)
paths = [o.split(":", 1)[1].strip() for o in orders if o.startswith("edit:")]
commits = int(value("commits") or 1)
for n in range(commits):
    for p in paths:
        os.makedirs(os.path.dirname(p) or ".", exist_ok=True)
        with open(p, "a", encoding="utf-8") as f:
            f.write(f"edited by {record['task']} attempt {attempt} commit {n}\n")
    if paths and "nocommit" not in orders:
        subprocess.run(["git", "add", "-A"], check=True)
        subprocess.run(["git", "commit", "-q", "-m", f"wip {n}"], check=True)
if "push" in orders:
    pushed = subprocess.run(["git", "push", "origin", "HEAD:refs/heads/sneaky"])
    print(f"fake agent: push exited {pushed.returncode}", flush=True)
remote = value("push-no-verify")
if remote:
    pushed = subprocess.run(["git", "push", "--no-verify", remote, "HEAD:refs/heads/sneaky2"])
    print(f"fake agent: push --no-verify exited {pushed.returncode}", flush=True)
log(result="ok")
print(f"fake agent: done with {record['task']}")
"""


def write_fake_agent(path: Path) -> Path:
    # -S: the agent needs only the standard library; skipping site also skips coverage's
    # subprocess hook (the agent is not herd; a measured start costs ~4x an unmeasured one).
    path.write_text(FAKE_AGENT.replace("PYTHON", f"{sys.executable} -S", 1), encoding="utf-8")
    path.chmod(0o755)
    return path


class Project:
    """A repo with a bare remote, `herd init` done, a fake agent and its log."""

    def __init__(self, tmp_path: Path, files: int = 0) -> None:
        self.tmp = tmp_path
        self.repo, self.remote = make_repo(tmp_path)
        for n in range(files):
            (self.repo / "src" / f"m{n}.py").write_text(f"# module {n}\n")
        if files:
            git(self.repo, "add", "-A")
            git(self.repo, "commit", "-q", "-m", "modules")
            git(self.repo, "push", "-q", "origin", "main")
        herd("init", "--prefix", "t", cwd=self.repo)
        self.agent = write_fake_agent(tmp_path / "fake_agent.py")
        self.log = tmp_path / "fake.jsonl"
        self.env = herd_env(FAKE_LOG=str(self.log))

    def create(
        self,
        title: str,
        *orders: str,
        scope: list[str] | None = None,
        out_of_scope: list[str] | None = None,
        criteria: list[str] | None = None,
    ) -> str:
        args = ["create", title, "-d", "\n".join(orders) or "nothing to do"]
        for glob in scope or []:
            args += ["--scope", glob]
        for glob in out_of_scope or []:
            args += ["--out-of-scope", glob]
        for text in criteria or ["it works"]:
            args += ["--criteria", text]
        created = herd(*args, "--json", cwd=self.repo, env=self.env)
        return str(json.loads(created.stdout)["id"])

    def herd(
        self, *args: str, check: int | None = 0, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return herd(*args, cwd=self.repo, env=self.env, check=check, timeout=timeout)

    def run(
        self, *args: str, check: int | None = 0, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return self.herd("run", *args, "--cmd", str(self.agent), check=check, timeout=timeout)

    @staticmethod
    def popen_argv(*args: str) -> list[str]:
        return [sys.executable, "-m", "herd", *args]

    def popen(self, *args: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.popen_argv(*args),
            cwd=self.repo,
            env={**self.env, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def show(self, task_id: str) -> dict[str, Any]:
        shown = json.loads(self.herd("show", task_id, "--json").stdout)
        return dict(shown[0])

    def comments(self, task_id: str) -> list[dict[str, Any]]:
        return list(json.loads(self.herd("comments", task_id, "--json").stdout))

    def latest_run(self) -> str:
        return str(json.loads(self.herd("runs", "--json").stdout)[0]["id"])

    def latest_run_or_none(self) -> str | None:
        runs = json.loads(self.herd("runs", "--json").stdout)
        return str(runs[0]["id"]) if runs else None

    def events(self, run_id: str) -> list[dict[str, Any]]:
        path = self.repo / ".herd" / "runs" / run_id / "events.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    def git(self, *args: str) -> str:
        return git(self.repo, *args)


def run_processes(run_id: str) -> list[psutil.Process]:
    """Every live process whose environment carries HERD_RUN_ID=run_id."""
    found = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if proc.environ().get("HERD_RUN_ID") == run_id:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def wait_for(predicate: Any, timeout: float = 30.0, interval: float = 0.05) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")


def kill_tree(proc: subprocess.Popen[str]) -> None:
    """Test cleanup only: never leave a herd behind when an assertion failed."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
