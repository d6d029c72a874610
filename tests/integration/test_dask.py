"""The Dask executor against a real `dask scheduler` and real `dask worker` processes, started
the way a user starts them on several machines (here all on 127.0.0.1), and through the
`LocalCluster` herd starts itself. Same scenarios as the local executor: many small jobs,
git tasks that land, a worker killed mid-task, a scheduler that goes away."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

pytest.importorskip("distributed")

from conftest import make_repo
from test_land import AGENT
from test_land import herd as land_herd

from herd.engine.executor import JobSpec
from herd.engine.executor.dask import DaskExecutor
from herd.engine.executor.remote_job import PUSH_LIMIT

SRC = Path(__file__).resolve().parents[2] / "src"
LOOPBACK = "127.0.0.1"


@dataclass
class Cluster:
    """A scheduler and worker processes, each in its own process group."""

    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def worker_pids(self) -> list[int]:
        """The worker processes themselves (children of the `dask worker` nannies)."""
        return [child.pid for nanny in self.workers for child in psutil.Process(nanny.pid).children()]

    def stop(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in [*self.workers, self.scheduler]:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def start_cluster(tmp: Path, workers: int = 2) -> Cluster:
    tmp.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(SRC)}  # workers run herd's task code
    scheduler_file = tmp / "scheduler.json"
    # The scheduler's HTTP server runs even with --no-dashboard: keep it on loopback too.
    with open(tmp / "scheduler.log", "wb") as log:
        scheduler = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dask",
                "scheduler",
                "--host",
                LOOPBACK,
                "--port",
                "0",
                "--no-dashboard",
                "--dashboard-address",
                f"{LOOPBACK}:0",
                "--scheduler-file",
                str(scheduler_file),
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + 30
    while not scheduler_file.exists() or not scheduler_file.read_text().strip():
        assert scheduler.poll() is None, (tmp / "scheduler.log").read_text()
        assert time.monotonic() < deadline, "the scheduler never wrote its address"
        time.sleep(0.05)
    address = json.loads(scheduler_file.read_text())["address"]
    assert address.startswith(f"tcp://{LOOPBACK}:")
    cluster = Cluster(address, scheduler)
    for n in range(workers):
        with open(tmp / f"worker{n}.log", "wb") as log:
            cluster.workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "dask",
                        "worker",
                        address,
                        "--host",
                        LOOPBACK,
                        "--nworkers",
                        "1",
                        "--nthreads",
                        "1",
                        "--no-dashboard",
                        "--dashboard-address",
                        f"{LOOPBACK}:0",
                        "--local-directory",
                        str(tmp / f"w{n}"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    env=env,
                    start_new_session=True,
                )
            )
    from distributed import Client

    with Client(address, set_as_default=False, timeout=30) as client:  # type: ignore[no-untyped-call]
        client.wait_for_workers(workers, timeout=60)
    return cluster


def herd(repo: Path, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """A real `python -m herd`: the Dask client, its threads and a local cluster's worker
    processes belong to a herd process, not to pytest."""
    return land_herd(repo, *args, real=True, **kwargs)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    started = start_cluster(tmp_path / "cluster")
    try:
        yield started
    finally:
        started.stop()


def listening_addresses(pids: list[int]) -> set[str]:
    found = set()
    for pid in pids:
        for proc in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    found.add(conn.laddr.ip)
    return found


# -- the executor API --------------------------------------------------------------


def test_many_small_jobs_in_chunks(cluster: Cluster) -> None:
    """Far more jobs than slots go to Dask several per task; each still has its own result."""
    with DaskExecutor(2, scheduler=cluster.address) as ex:
        for n in range(400):
            ex.submit(JobSpec(f"n{n}", ("sh", "-c", f"exit {n % 3}")))
        results = {r.key: r for r in ex.results(timeout=120)}
    assert {k: r.exit_code for k, r in results.items()} == {f"n{n}": n % 3 for n in range(400)}


def test_fifty_items_run_on_both_workers(cluster: Cluster) -> None:
    jobs = [
        JobSpec(f"item-{n}", ("sh", "-c", f"echo item {n}; sleep 0.05"), capture_stdout=True)
        for n in range(50)
    ]
    with DaskExecutor(2, scheduler=cluster.address) as ex:
        for job in jobs:
            ex.submit(job)
        results = {r.key: r for r in ex.results(timeout=120)}
    assert sorted(results) == sorted(j.key for j in jobs)
    assert all(r.ok for r in results.values())
    assert all(results[f"item-{n}"].stdout == f"item {n}\n".encode() for n in range(50))
    workers = {r.worker for r in results.values()}
    assert len(workers) == 2, workers
    assert all(w.startswith(f"dask/tcp://{LOOPBACK}:") for w in workers)
    # Nothing herd or Dask started listens beyond the loopback interface.
    pids = [cluster.scheduler.pid, *(w.pid for w in cluster.workers)]
    assert listening_addresses(pids) == {LOOPBACK}


def test_small_outcomes_come_with_the_completion_and_big_ones_are_fetched(cluster: Cluster) -> None:
    """A task's small outcomes reach the coordinator as an event ahead of its completion:
    no gather through the scheduler. An outcome over PUSH_LIMIT is fetched, and whole."""
    from distributed import Client

    # A lambda travels by value (the scheduler cannot import this test module).
    gathers = lambda dask_scheduler: sum(  # noqa: E731
        1 for _, e in dask_scheduler.get_events("all") if isinstance(e, dict) and e.get("action") == "gather"
    )
    big = 2 * PUSH_LIMIT
    with Client(cluster.address, set_as_default=False, timeout=30) as client:  # type: ignore[no-untyped-call]
        before = client.run_on_scheduler(gathers)
        with DaskExecutor(2, scheduler=cluster.address) as ex:
            # The client's stream to the scheduler batches for 2 ms, not distributed's 10 ms.
            assert ex._client.scheduler_comm.interval <= 0.002
            for n in range(6):
                ex.submit(JobSpec(f"small-{n}", ("sh", "-c", f"echo {n}; exit {n % 2}"), capture_stdout=True))
            small = {r.key: r for r in ex.results(timeout=60)}
            assert client.run_on_scheduler(gathers) == before
            ex.submit(JobSpec("big", ("head", "-c", str(big), "/dev/zero"), capture_stdout=True))
            [fetched] = ex.results(timeout=60)
        assert client.run_on_scheduler(gathers) == before + 1
    assert {k: (r.exit_code, r.stdout) for k, r in small.items()} == {
        f"small-{n}": (n % 2, f"{n}\n".encode()) for n in range(6)
    }
    assert all(r.worker.startswith(f"dask/tcp://{LOOPBACK}:") for r in small.values())
    assert fetched.ok and fetched.stdout == bytes(big)


def test_supervision_is_the_local_one_on_the_worker(cluster: Cluster, tmp_path: Path) -> None:
    context = tmp_path / "context.md"
    context.write_text("the task\n")
    jobs = [
        JobSpec("slow", ("sleep", "30"), timeout=0.5),
        JobSpec("missing", ("no-such-command-herd",)),
        JobSpec("code", ("sh", "-c", "echo oops >&2; exit 3")),
        # Input files travel and their paths are rewritten in argv and env.
        JobSpec(
            "input",
            ("sh", "-c", 'cat "$1" "$CTX"', "sh", str(context)),
            env={"CTX": str(context)},
            inputs=(context,),
            capture_stdout=True,
        ),
    ]
    with DaskExecutor(2, scheduler=cluster.address, grace=1.0) as ex:
        for job in jobs:
            ex.submit(job)
        results = {r.key: r for r in ex.results(timeout=60)}
    assert results["slow"].timed_out and results["slow"].duration < 10
    assert results["missing"].exit_code == 127
    assert results["missing"].error == "command not found: no-such-command-herd"
    assert results["code"].exit_code == 3 and results["code"].tail == "oops\n"
    assert results["input"].stdout == b"the task\nthe task\n"


def test_cancel_all_stops_running_jobs_on_the_workers(cluster: Cluster, tmp_path: Path) -> None:
    marker = tmp_path / "pids"
    script = f"echo $$ >> {marker}; exec sleep 60"
    with DaskExecutor(2, scheduler=cluster.address, grace=1.0) as ex:
        for n in range(6):
            ex.submit(JobSpec(f"long-{n}", ("sh", "-c", script)))
        deadline = time.monotonic() + 30
        # Jobs reach Dask from inside wait(), as with any coordinator loop.
        while len(marker.read_text().split()) < 2 if marker.exists() else True:
            assert time.monotonic() < deadline
            assert ex.wait(0.05) == []
        started = time.monotonic()
        results = ex.cancel_all()
        assert time.monotonic() - started < 10
    assert len(results) == 6 and all(r.cancelled for r in results)
    for pid in map(int, marker.read_text().split()):
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"


LOCAL_CLUSTER_DRIVER = """
import json
from herd.engine.executor import JobSpec
from herd.engine.executor.dask import DaskExecutor

if __name__ == "__main__":  # the cluster's worker processes are spawned and re-import this
    with DaskExecutor(2) as ex:
        for n in range(10):
            ex.submit(JobSpec(f"j{n}", ("sh", "-c", f"exit {n % 2}")))
        print(json.dumps({r.key: [r.exit_code, r.worker] for r in ex.results(timeout=60)}))
"""


def test_a_shared_scheduler_and_the_loggers_are_left_as_they_were(cluster: Cluster) -> None:
    """herd switches Dask's own re-runs off only while it uses the scheduler, and changes
    no logger's level."""
    import logging

    from distributed import Client

    # A lambda travels by value (the scheduler cannot import this test module).
    allowed_failures = lambda dask_scheduler: dask_scheduler.allowed_failures  # noqa: E731
    names = ("distributed", "distributed.client", "distributed.scheduler")
    levels = {name: logging.getLogger(name).level for name in names}
    with Client(
        cluster.address,
        set_as_default=False,  # type: ignore[no-untyped-call]
        timeout=30,
    ) as client:
        before = client.run_on_scheduler(allowed_failures)
        with DaskExecutor(1, scheduler=cluster.address) as ex:
            assert client.run_on_scheduler(allowed_failures) == 0
            ex.submit(JobSpec("x", ("true",)))
            assert [r.exit_code for r in ex.results(timeout=60)] == [0]
        assert client.run_on_scheduler(allowed_failures) == before != 0
    assert {name: logging.getLogger(name).level for name in names} == levels


def test_local_cluster_on_its_own(tmp_path: Path) -> None:
    # In a child process: multiprocessing leaves a resource tracker behind in whichever
    # process starts a LocalCluster, and other tests check that pytest has no children.
    driver = tmp_path / "driver.py"
    driver.write_text(LOCAL_CLUSTER_DRIVER)
    out = subprocess.run(
        [sys.executable, str(driver)],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    assert {k: code for k, (code, _) in results.items()} == {f"j{n}": n % 2 for n in range(10)}
    assert all(worker.startswith(f"dask/tcp://{LOOPBACK}:") for _, worker in results.values())


def test_local_path_never_imports_distributed() -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    code = (
        "import sys, herd.run.batch, herd.cli.run_cmds, herd.run.hypervisor; "
        "print('distributed' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
    imported = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "herd", "run", "--help"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    assert "distributed" not in imported


# -- herd run --executor dask ------------------------------------------------------

# The first attempt of a task titled "hang" records its pid and blocks (to be caught mid-run by a
# worker kill); everything else does the fake agent's work: append a line, commit.
HANGING_AGENT = AGENT.replace(
    "context = open(",
    'if "hang" in open(os.environ["HERD_CONTEXT_FILE"]).read() '
    "and not os.path.exists(sys.argv[1]):\n"
    '    open(sys.argv[1], "w").write(str(os.getpid()))\n'
    "    import time; time.sleep(120)\n"
    "context = open(",
    1,
)


@pytest.fixture
def shop(tmp_path: Path) -> dict[str, Path]:
    repo, remote = make_repo(tmp_path)
    agent = tmp_path / "agent.py"
    agent.write_text(HANGING_AGENT)
    agent.chmod(0o755)
    herd(repo, "init", "--prefix", "t")
    return {"repo": repo, "remote": remote, "agent": agent, "marker": tmp_path / "hung.pid"}


def create_tasks(shop: dict[str, Path], titles: list[str]) -> list[str]:
    ids = []
    for n, title in enumerate(titles):
        ids.append(
            herd(
                shop["repo"], "create", title, "--criteria", "done", "--scope", f"src/t{n}.txt"
            ).stdout.strip()
        )
    return ids


def attempts(repo: Path) -> list[tuple[str, int, str, str, str]]:
    with sqlite3.connect(repo / ".herd" / "herd.db") as db:
        return db.execute(
            "select task_id, attempt, worker, outcome, coalesce(reason, '') "
            "from attempts order by task_id, attempt"
        ).fetchall()


def landed_tasks(remote: Path) -> list[str]:
    out = subprocess.run(
        ["git", "log", "--format=%(trailers:key=Herd-Task,valueonly)", "main"],
        cwd=remote,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(line.strip() for line in out.splitlines() if line.strip())


def run_dask(
    shop: dict[str, Path], ids: list[str], *extra: str, check: int | None = 0
) -> subprocess.CompletedProcess[str]:
    return herd(
        shop["repo"],
        "run",
        *ids,
        "--cmd",
        f"{sys.executable} {shop['agent']} {shop['marker']}",
        "-j",
        "2",
        "--push",
        "--executor",
        "dask",
        *extra,
        check=check,
    )


def test_four_tasks_land_through_a_running_scheduler(shop: dict[str, Path], cluster: Cluster) -> None:
    ids = create_tasks(shop, ["one", "two", "three", "four"])
    run_dask(shop, ids, "--scheduler", cluster.address)
    assert landed_tasks(shop["remote"]) == sorted(ids)
    rows = attempts(shop["repo"])
    assert [(r[0], r[1], r[3]) for r in rows] == [(t, 1, "ok") for t in sorted(ids)]
    workers = {r[2] for r in rows}
    assert all(w.startswith(f"dask/tcp://{LOOPBACK}:") for w in workers)
    assert len(workers) == 2, rows
    for n, task in enumerate(ids):  # each worker's commit came back and landed
        shown = subprocess.run(
            ["git", "show", f"main:src/t{n}.txt"],
            cwd=shop["remote"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert shown == f"{task}\n"


def test_a_killed_worker_fails_the_attempt_and_the_retry_lands(
    shop: dict[str, Path], cluster: Cluster
) -> None:
    ids = create_tasks(shop, ["hang"])
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "herd",
            "run",
            *ids,
            "--cmd",
            f"{sys.executable} {shop['agent']} {shop['marker']}",
            "-j",
            "1",
            "--push",
            "--executor",
            "dask",
            "--scheduler",
            cluster.address,
        ],
        cwd=shop["repo"],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    hung = None
    try:
        deadline = time.monotonic() + 60
        while not (shop["marker"].exists() and shop["marker"].read_text()):
            assert run.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        hung = int(shop["marker"].read_text())
        worker_pid = psutil.Process(hung).ppid()  # the agent is the Dask worker's child
        assert worker_pid in cluster.worker_pids()
        os.kill(worker_pid, signal.SIGKILL)
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
        if hung is not None and psutil.pid_exists(hung):
            os.killpg(hung, signal.SIGKILL)  # the orphan of the killed worker
    assert run.returncode == 0, out + err
    rows = attempts(shop["repo"])
    assert [(r[0], r[1], r[3]) for r in rows] == [(ids[0], 1, "crash"), (ids[0], 2, "ok")]
    assert rows[0][4].startswith("worker died: tcp://127.0.0.1:")
    assert rows[0][2] == f"dask/{rows[0][4].split()[2]}"  # the worker that died
    assert landed_tasks(shop["remote"]) == ids


def test_a_lost_scheduler_stops_the_run_and_resume_finishes_it(shop: dict[str, Path], tmp_path: Path) -> None:
    cluster = start_cluster(tmp_path / "doomed")
    ids = create_tasks(shop, ["hang", "fine"])
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "herd",
            "run",
            *ids,
            "--cmd",
            f"{sys.executable} {shop['agent']} {shop['marker']}",
            "-j",
            "2",
            "--push",
            "--executor",
            "dask",
            "--scheduler",
            cluster.address,
        ],
        cwd=shop["repo"],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (shop["marker"].exists() and shop["marker"].read_text()):
            assert run.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        hung = int(shop["marker"].read_text())
        os.killpg(cluster.scheduler.pid, signal.SIGKILL)
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
        cluster.stop()
        if psutil.pid_exists(hung):
            os.killpg(hung, signal.SIGKILL)
    assert run.returncode == 130, out + err
    assert "lost the Dask scheduler" in err and "herd resume" in err
    assert "Traceback" not in err, err
    resumed = herd(shop["repo"], "resume")  # on the local executor
    assert "2 landed" in resumed.stdout, resumed.stdout
    assert landed_tasks(shop["remote"]) == sorted(ids)


def test_herd_run_on_its_own_local_cluster(shop: dict[str, Path]) -> None:
    ids = create_tasks(shop, ["one", "two"])
    run_dask(shop, ids)
    assert landed_tasks(shop["remote"]) == sorted(ids)
    assert all(r[2].startswith(f"dask/tcp://{LOOPBACK}:") and r[3] == "ok" for r in attempts(shop["repo"]))


def test_fifty_item_map_through_the_cli_on_a_running_scheduler(cluster: Cluster, tmp_path: Path) -> None:
    db = tmp_path / "map.db"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"), "HERD_DB": str(db)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "herd",
            "map",
            *[str(n) for n in range(50)],
            "-j",
            "4",
            "--executor",
            "dask",
            "--scheduler",
            cluster.address,
            "--keep-order",
            "--",
            "sh",
            "-c",
            'echo "item $0"; sleep 0.05',
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"item {n}" for n in range(50)]
    workers = {row[0] for row in sqlite3.connect(db).execute("SELECT worker FROM attempts")}
    assert len(workers) == 2 and all(w.startswith("dask/tcp://127.0.0.1:") for w in workers)
