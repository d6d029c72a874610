"""`herd run` end to end: the real CLI in a subprocess, real git, real SQLite, a fake agent
that really edits files and commits (see _run_helpers)."""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path

import pytest
from _run_helpers import Project, run_processes

from herd.run.context import render


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path, files=8)


def _branch_commits(p: Project, run_id: str, task_id: str, base: str) -> list[str]:
    return p.git("rev-list", f"{base}..herd/{run_id}/{task_id}").split()


def test_scoped_tasks_each_leave_one_squashed_commit_on_their_branch(project: Project) -> None:
    p = project
    base = p.git("rev-parse", "HEAD")
    ids = [
        p.create(f"Edit module {n}", f"edit: src/m{n}.py", "commits: 2", scope=[f"src/m{n}.py"])
        for n in range(6)
    ]
    # One worker leaves its work uncommitted: herd commits it.
    ids.append(p.create("Uncommitted edit", "edit: src/m6.py", "nocommit", scope=["src/m6.py"]))
    ids.append(p.create("Edit a new file", "edit: docs/new.md", scope=["docs/*.md"]))
    p.run(*ids, "-j", "4", "--no-integrate")
    run_id = p.latest_run()
    assert p.git("rev-parse", "HEAD") == base, "the main checkout must not move"
    branches = p.git("branch", "--list", "herd/*", "--format=%(refname:short)").split()
    assert sorted(branches) == sorted(f"herd/{run_id}/{t}" for t in ids)
    for task_id in ids:
        shas = _branch_commits(p, run_id, task_id, base)
        assert len(shas) == 1, f"{task_id}: {len(shas)} commits, expected one squashed commit"
        assert p.git("rev-parse", f"{shas[0]}^") == base
        title = p.show(task_id)["title"]
        message = p.git("log", "-1", "--format=%B", shas[0])
        assert message.splitlines()[0] == f"{title} ({task_id})"
        trailers = p.git("log", "-1", "--format=%(trailers:only,unfold)", shas[0]).splitlines()
        assert f"Herd-Task: {task_id}" in trailers and f"Herd-Run: {run_id}" in trailers
    assert p.git("diff", "--name-only", base, f"herd/{run_id}/{ids[6]}") == "src/m6.py"
    # Workers ran in worktrees under .herd/worktrees with the task in their environment.
    calls = {c["task"]: c for c in p.calls()}
    assert set(calls) == set(ids)
    workers = set()
    for task_id, call in calls.items():
        env = call["env"]
        assert Path(call["cwd"]).is_relative_to(p.repo / ".herd" / "worktrees" / run_id)
        assert env["HERD_TASK_ID"] == task_id and env["HERD_RUN_ID"] == run_id
        assert env["HERD_ATTEMPT"] == "1"
        assert env["HERD_WORKER"] in {"w1", "w2", "w3", "w4"}
        workers.add(env["HERD_WORKER"])
        context = Path(env["HERD_CONTEXT_FILE"])
        assert context.is_relative_to(p.repo / ".herd" / "runs" / run_id)
        assert context.read_text() == render(p.show(task_id))
    assert len(workers) == 4, f"-j 4 should use four workers, used {workers}"
    # At most four at once, and really concurrent.
    spans = sorted((c["start"], c["end"]) for c in calls.values())
    overlap = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert overlap <= 4
    # Worktrees of succeeded tasks are gone; the branches hold the work.
    assert not any((p.repo / ".herd" / "worktrees" / run_id).glob("*-a*"))


def test_the_task_branch_gets_the_commit_even_if_the_worker_left_it(project: Project) -> None:
    p = project
    base = p.git("rev-parse", "HEAD")
    side = p.create("Switches branch", "switch-branch", "edit: src/m0.py", scope=["src/m0.py"])
    detached = p.create("Detaches", "detach", "edit: src/m1.py", "commits: 2", scope=["src/m1.py"])
    p.run(side, detached, "--no-integrate")
    run_id = p.latest_run()
    for task_id, path in ((side, "src/m0.py"), (detached, "src/m1.py")):
        shas = _branch_commits(p, run_id, task_id, base)
        assert len(shas) == 1, f"{task_id}: the task branch holds {len(shas)} commits"
        assert p.git("diff", "--name-only", base, shas[0]) == path


def test_claims_use_the_run_worker_as_assignee(project: Project) -> None:
    p = project
    task = p.create("Slow edit", "sleep: 2", "edit: src/m0.py", scope=["src/m0.py"])
    proc = p.popen("run", task, "--cmd", str(p.agent), "--no-integrate")
    try:
        shown = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            shown = p.show(task)
            if shown["status"] == "in_progress":
                break
            time.sleep(0.05)
        assert shown is not None and shown["status"] == "in_progress"
        run_id = p.latest_run()
        # The actor names the worker slot and this herd process (its token after the @).
        assert shown["assignee"].startswith(f"herd:{run_id}/w1@")
        # The claim is a compare-and-swap: another actor cannot take it meanwhile.
        taken = p.herd("update", task, "--claim", "--actor", "someone", check=None)
        assert taken.returncode == 4
    finally:
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err


def test_plan_refusal_stops_the_run_with_exit_4(project: Project) -> None:
    p = project
    blocker = p.create("Blocker", "edit: src/m0.py", scope=["src/m0.py"])
    blocked = p.create("Blocked", "edit: src/m1.py", scope=["src/m1.py"])
    p.herd("dep", "add", blocked, blocker)
    refused = p.run(blocked, "--no-integrate", check=4)
    assert blocker in refused.stderr
    assert p.calls() == [], "nothing may start when the plan is refused"
    assert p.show(blocked)["status"] == "open"


def test_waves_run_in_order(project: Project) -> None:
    p = project
    first = p.create("First", "sleep: 0.5", "edit: src/m0.py", scope=["src/m0.py"])
    second = p.create("Second", "edit: src/m0.py", scope=["src/m0.py"])  # same file: next wave
    third = p.create("Third", "edit: src/m1.py", scope=["src/m1.py"])
    p.herd("dep", "add", third, second)
    p.run(first, second, third, "-j", "3", "--no-integrate")
    run_id = p.latest_run()
    waves = [e["tasks"] for e in p.events(run_id) if e["event"] == "wave_start"]
    wave_of = {t: n for n, wave in enumerate(waves) for t in wave}
    assert len(waves) >= 2 and wave_of[first] != wave_of[second]
    assert wave_of[third] > wave_of[second]
    calls = {c["task"]: c for c in p.calls()}
    for earlier, later in itertools.pairwise(waves):
        assert max(calls[t]["end"] for t in earlier) <= min(calls[t]["start"] for t in later)
    # A later wave starts from the earlier waves' work (stacked on the base): the
    # overlapping edits of src/m0.py stack instead of conflicting, and the task that
    # depends on `second` sees its commit.
    for n, wave in enumerate(waves):
        before = [t for earlier in waves[:n] for t in earlier if t in (first, second)]
        for task in wave:
            m0 = p.git("show", f"herd/{run_id}/{task}:src/m0.py")
            assert all(f"edited by {t}" in m0 for t in before), (task, before, m0)
    assert f"edited by {second}" in p.git("show", f"herd/{run_id}/{third}:src/m0.py")


def test_overlapping_tasks_in_two_waves_both_land(project: Project) -> None:
    p = project
    one = p.create("One", "edit: src/m0.py", scope=["src/m0.py"])
    two = p.create("Two", "edit: src/m0.py", scope=["src/m0.py"])
    p.run(one, two, "--push")
    m0 = p.git("--git-dir", str(p.remote), "show", "main:src/m0.py")
    assert f"edited by {one}" in m0 and f"edited by {two}" in m0
    subjects = p.git("--git-dir", str(p.remote), "log", "-2", "--format=%s", "main").splitlines()
    assert sorted(subjects) == sorted([f"One ({one})", f"Two ({two})"])
    assert len(p.calls()) == 2, "no task needed a rerun to land"


def test_cmd_placeholders_are_substituted_without_a_shell(project: Project) -> None:
    p = project
    task = p.create("Placeholders", "edit: src/m0.py", scope=["src/m0.py"])
    cmd = f"{p.agent} --task={{id}} {{context}} '{{worktree}}' {{prompt}} 'two words' '$(echo no)' ';'"
    p.herd("run", task, "--cmd", cmd, "--no-integrate")
    [call] = p.calls()
    argv = call["argv"][1:]
    assert argv[0] == f"--task={task}"
    assert argv[1] == call["env"]["HERD_CONTEXT_FILE"]
    assert Path(argv[2]) == Path(call["cwd"])
    assert argv[3].startswith("You are a herd worker") and call["env"]["HERD_CONTEXT_FILE"] in argv[3]
    assert argv[4:] == ["two words", "$(echo no)", ";"]


def test_a_title_with_shell_syntax_runs_nothing(project: Project, tmp_path: Path) -> None:
    p = project
    target = tmp_path / "pwned"
    task = p.create(
        f"$(touch {target}) `touch {target}`; touch {target}", "edit: src/m0.py", scope=["src/m0.py"]
    )
    p.herd("run", task, "--cmd", f"{p.agent} {{id}} {{prompt}}", "--no-integrate")
    p.herd(
        "run",
        p.create(f"again $(touch {target})", "edit: src/m1.py", scope=["src/m1.py"]),
        "--cmd",
        str(p.agent),
    )  # with landing, too
    assert not target.exists()
    assert p.git("log", "-1", "--format=%s", "main").startswith("again $(touch ")


def test_failures_of_every_kind_are_retried_once_then_given_back(project: Project) -> None:
    p = project
    ok = p.create("Fine", "edit: src/m0.py", scope=["src/m0.py"])
    fails = p.create("Always fails", "fail-attempts: 9", scope=["src/m1.py"])
    outside = p.create("Strays", "edit: src/m2.py", "edit: README.md", scope=["src/m2.py"])
    forbidden = p.create(
        "Forbidden",
        "edit: src/m3.py",
        "edit: src/secret/key.py",
        scope=["src/**"],
        out_of_scope=["src/secret/*"],
    )
    rewrite = p.create("Rewrites history", "rewrite", "edit: src/m4.py", scope=["src/m4.py"])
    empty = p.create("Does nothing", scope=["src/m5.py"])
    done = p.run(ok, fails, outside, forbidden, rewrite, empty, "-j", "4", "--no-integrate", check=1)
    run_id = p.latest_run()
    attempts: dict[str, int] = {}
    for call in p.calls():
        attempts[call["task"]] = attempts.get(call["task"], 0) + 1
    assert attempts == {ok: 1, fails: 2, outside: 2, forbidden: 2, rewrite: 2, empty: 2}
    expected = {
        fails: "exited with code 3",
        outside: "outside its scope: README.md",
        forbidden: "outside its scope: src/secret/key.py",
        rewrite: "not a descendant of the base",
        empty: "changed nothing",
    }
    for task_id, why in expected.items():
        shown = p.show(task_id)
        assert shown["status"] == "open" and not shown.get("assignee"), shown
        [comment] = p.comments(task_id)
        assert why in comment["text"], comment["text"]
        assert "failed after 2 attempts" in comment["text"]
        assert "fake agent:" in comment["text"], "the comment carries the output tail"
        assert f"failed  {task_id}" in done.stdout
    assert "boom: the last line of a failing worker" in p.comments(fails)[0]["text"]
    assert p.show(ok)["status"] != "open"
    # Each attempt's output is kept in its own log.
    log2 = p.repo / ".herd" / "runs" / run_id / fails / "attempt-2.log"
    assert "simulated failure on attempt 2" in log2.read_text()


def test_flaky_task_retries_in_a_fresh_worktree_with_the_evidence(project: Project) -> None:
    p = project
    task = p.create("Flaky", "fail-attempts: 1", "edit: src/m0.py", scope=["src/m0.py"])
    p.run(task, "--no-integrate")
    run_id = p.latest_run()
    first, second = p.calls()
    assert (first["attempt"], second["attempt"]) == (1, 2)
    assert first["cwd"] != second["cwd"], "a retry gets a fresh worktree"
    context = Path(second["env"]["HERD_CONTEXT_FILE"]).read_text()
    assert context.startswith(render(p.show(task)))
    evidence = context.split("### Previous attempt failed\n", 1)[1]
    assert "exited with code 3" in evidence
    assert "simulated failure on attempt 1" in evidence and "boom:" in evidence
    assert "Previous attempt failed" not in Path(first["env"]["HERD_CONTEXT_FILE"]).read_text()
    assert len(p.git("rev-list", f"main..herd/{run_id}/{task}").split()) == 1


def test_retries_zero_gives_up_after_one_attempt(project: Project) -> None:
    p = project
    task = p.create("Flaky", "fail-attempts: 1", "edit: src/m0.py", scope=["src/m0.py"])
    p.run(task, "--no-integrate", "--retries", "0", check=1)
    assert len(p.calls()) == 1
    assert "failed after 1 attempt:" in p.comments(task)[0]["text"]


def test_a_push_from_a_worker_is_blocked_and_fails_the_attempt(project: Project) -> None:
    p = project
    task = p.create("Pushes", "edit: src/m0.py", "push", scope=["src/m0.py"])
    p.run(task, "--no-integrate", check=1)
    refs = p.git("--git-dir", str(p.remote), "for-each-ref", "--format=%(refname)").split()
    assert "refs/heads/sneaky" not in refs, "the pre-push guard let a worker push"
    [comment] = p.comments(task)
    assert "tried to push" in comment["text"]
    assert "workers must not push" in comment["text"], "git's refusal shows in the tail"
    assert "push exited 1" in comment["text"]


def test_a_push_skipping_hooks_is_blocked_too(project: Project) -> None:
    p = project
    task = p.create(
        "Pushes around the hook", "edit: src/m0.py", f"push-no-verify: {p.remote}", scope=["src/m0.py"]
    )
    p.run(task, "--no-integrate", check=1)
    refs = p.git("--git-dir", str(p.remote), "for-each-ref", "--format=%(refname)").split()
    assert "refs/heads/sneaky2" not in refs, "git push --no-verify got past herd"
    [comment] = p.comments(task)
    assert "tried to push" in comment["text"]
    assert "workers must not push" in comment["text"]
    # Fetching still works for a worker, and the landing push (herd's own) is unaffected.
    ok = p.create("Fine", "edit: src/m1.py", scope=["src/m1.py"])
    p.herd("run", ok, "--cmd", str(p.agent), "--push")
    assert p.git("--git-dir", str(p.remote), "log", "-1", "--format=%s", "main") == f"Fine ({ok})"


def test_timeout_kills_the_whole_worker_group(project: Project) -> None:
    p = project
    hung = p.create("Hangs", "hang", scope=["src/m0.py"])
    fine = p.create("Fine", "edit: src/m1.py", scope=["src/m1.py"])
    started = time.monotonic()
    done = p.run(hung, fine, "--timeout", "1s", "--retries", "1", "--no-integrate", check=1)
    assert time.monotonic() - started < 30
    run_id = p.latest_run()
    assert run_processes(run_id) == [], "a worker or its grandchild survived the timeout"
    [comment] = p.comments(hung)
    assert "timed out after 1s" in comment["text"] and "fake agent: hanging" in comment["text"]
    assert f"ok      {fine}" in done.stdout


def test_timeout_is_sigterm_then_grace_then_sigkill(project: Project, tmp_path: Path) -> None:
    p = project
    marks = tmp_path / "term.txt"
    stubborn = tmp_path / "stubborn.sh"
    # Ignores SIGTERM, and so does its background child: only SIGKILL ends them.
    stubborn.write_text(
        f"#!/bin/sh\ntrap 'echo TERM >> {marks}' TERM\n"
        "(trap '' TERM; sleep 600) &\necho stubborn started\n"
        "while :; do sleep 0.1; done\n"
    )
    stubborn.chmod(0o755)
    task = p.create("Stubborn", scope=["src/m0.py"])
    started = time.monotonic()
    p.herd(
        "run", task, "--cmd", str(stubborn), "--timeout", "1s", "--retries", "0", "--no-integrate", check=1
    )
    took = time.monotonic() - started
    assert marks.read_text().startswith("TERM"), "SIGTERM first"
    assert 6 <= took < 30, f"grace of 5 s before SIGKILL, took {took:.1f}s"
    assert run_processes(p.latest_run()) == []
    assert "timed out after 1s" in p.comments(task)[0]["text"]


def test_max_memory_kills_a_worker_over_the_ceiling(project: Project) -> None:
    p = project
    hog = p.create("Hog", "memory: 300", "edit: src/m0.py", scope=["src/m0.py"])
    small = p.create("Small", "edit: src/m1.py", scope=["src/m1.py"])
    p.run(hog, small, "--max-memory", "100M", "--retries", "0", "--no-integrate", check=1)
    [comment] = p.comments(hog)
    assert "used more than 100 MiB (killed)" in comment["text"]
    assert run_processes(p.latest_run()) == []


def test_rate_limit_spaces_worker_starts(project: Project) -> None:
    p = project
    ids = [p.create(f"T{n}", f"edit: src/m{n}.py", scope=[f"src/m{n}.py"]) for n in range(3)]
    p.run(*ids, "-j", "3", "--rate", "120/min", "--no-integrate")
    # The limiter spaces the spawns 0.5 s apart (tests/integration/test_executor.py checks each gap
    # on spawn times); here each worker notes its own start after its interpreter came up, which
    # a loaded machine delays by a varying amount, so only the span of the three is steady.
    starts = sorted(c["start"] for c in p.calls())
    assert starts[-1] - starts[0] >= 0.9, starts


def test_json_gives_only_events_on_stdout_and_progress_goes_to_stderr(project: Project) -> None:
    p = project
    ids = [p.create(f"T{n}", f"edit: src/m{n}.py", scope=[f"src/m{n}.py"]) for n in range(2)]
    done = p.run(*ids, "--no-integrate", "--json")
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[0]["event"] == "run_start" and events[-1]["event"] == "run_end"
    assert {e["task"] for e in events if e["event"] == "task_end"} == set(ids)
    assert events == p.events(events[0]["run"])
    # One name per worker: the slot an attempt started on is the one its end reports.
    started = {(e["task"], e["attempt"]): e["worker"] for e in events if e["event"] == "attempt_start"}
    ended = {(e["task"], e["attempt"]): e["worker"] for e in events if e["event"] == "attempt_end"}
    assert started == ended
    plain = p.run(p.create("T9", "edit: src/m7.py", scope=["src/m7.py"]), "--no-integrate")
    lines = [line for line in plain.stderr.splitlines() if line]
    assert lines and all(line.startswith("herd: ") for line in lines), plain.stderr
    assert any(" start " in line for line in lines)


def test_status_from_another_process_shows_workers_while_running(project: Project) -> None:
    p = project
    ids = [p.create(f"Slow {n}", "sleep: 3", f"edit: src/m{n}.py", scope=[f"src/m{n}.py"]) for n in range(2)]
    proc = p.popen("run", *ids, "--cmd", str(p.agent), "-j", "2", "--no-integrate")
    try:

        def running() -> dict[str, object] | None:
            runs = json.loads(p.herd("runs", "--json").stdout)
            if not runs:
                return None
            snap = json.loads(p.herd("status", runs[0]["id"], "--json").stdout)
            workers = snap["workers"]
            if len(workers) == 2 and all(w["last_line"] for w in workers):
                return dict(snap)
            return None

        from _run_helpers import wait_for

        snap = wait_for(running, timeout=20)
        assert snap["state"] == "running" and snap["counts"] == {"running": 2}
        assert {w["task"] for w in snap["workers"]} == set(ids)
        assert all(w["last_line"].startswith("fake agent:") for w in snap["workers"])
        assert all(w["elapsed"] >= 0 for w in snap["workers"])
        text = p.herd("status").stdout
        assert "running" in text and ids[0] in text
    finally:
        proc.communicate(timeout=60)
    assert proc.returncode == 0
    watched = p.herd("status", "--watch", "--interval", "0.1")
    assert "done" in watched.stdout and "no worker running" in watched.stdout


def test_budget_is_not_used_by_plain_commands(project: Project) -> None:
    """--cmd has no cost field: a budget never defers anything."""
    p = project
    ids = [p.create(f"T{n}", f"edit: src/m{n}.py", scope=[f"src/m{n}.py"]) for n in range(2)]
    p.run(*ids, "--budget-usd", "0.01", "--no-integrate")
    assert len(p.calls()) == 2


def test_worker_env_does_not_leak_into_the_store(project: Project) -> None:
    """A worker that runs `herd` itself would find the store; herd gives it none of its own
    variables besides the task's, and the run still finishes cleanly."""
    p = project
    task = p.create("Fine", "edit: src/m0.py", scope=["src/m0.py"])
    p.run(task, "--no-integrate")
    [call] = p.calls()
    assert set(call["env"]) >= {
        "HERD_TASK_ID",
        "HERD_CONTEXT_FILE",
        "HERD_RUN_ID",
        "HERD_WORKER",
        "HERD_ATTEMPT",
    }
    assert call["env"]["GIT_CONFIG_KEY_0"] == "core.hooksPath"
    assert os.path.isdir(call["env"]["GIT_CONFIG_VALUE_0"])


def test_the_journal_records_each_result_before_the_slot_starts_its_next_task(project: Project) -> None:
    """An attempt_end is journaled before its slot's next attempt_start, and never more than
    -j attempts are open at once (the slot's next task used to start while the previous one
    was still being squashed, so the log showed up to 2x -j attempts open)."""
    p = project
    ids = [p.create(f"T{n}", f"edit: src/m{n}.py", scope=[f"src/m{n}.py"]) for n in range(8)]
    done = p.run(*ids, "-j", "2", "--no-integrate", "--json")
    events = [json.loads(line) for line in done.stdout.splitlines()]
    open_now: dict[tuple[str, int], str] = {}
    busy_slots: set[str] = set()
    most = 0
    for event in events:
        key = (event.get("task"), event.get("attempt"))
        if event["event"] == "attempt_start":
            assert event["worker"] not in busy_slots, (
                f"{event['worker']} started before its previous attempt_end"
            )
            busy_slots.add(event["worker"])
            open_now[key] = event["worker"]
            most = max(most, len(open_now))
        elif event["event"] == "attempt_end":
            busy_slots.discard(open_now.pop(key))
    assert most <= 2 and not open_now
    assert sum(e["event"] == "attempt_end" for e in events) == 8
