"""Shared fixtures: real git repositories in tmp_path, never mocks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The code-quality checkers of tests/test_quality.py: argv, run from the repository root.
QUALITY = {
    "ruff": ["ruff", "check", "src", "tests", "bench"],
    "ruff-format": ["ruff", "format", "--check", "src", "tests", "bench"],
    "mypy": ["mypy"],
}
_checks: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}


def git(cwd: Path, *args: str) -> str:
    """Run git in a test repo and return stripped stdout (raises on failure)."""
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def make_repo(tmp_path: Path) -> tuple[Path, Path]:
    """A repo on `main` with three commits, pushed to a bare remote named `origin`."""
    repo, remote = tmp_path / "repo", tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", "-b", "main", str(remote))
    git(tmp_path, "init", "--quiet", "-b", "main", str(repo))
    git(repo, "config", "user.name", "Test")
    git(repo, "config", "user.email", "test@example.invalid")
    (repo / "src").mkdir()
    for n, name in enumerate(["README.md", "src/a.py", "src/b.py"]):
        (repo / name).write_text(f"{name} line 1\nline 2\nline 3\n")
        git(repo, "add", name)
        git(repo, "commit", "--quiet", "-m", f"commit {n}")
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "--quiet", "origin", "main")
    return repo, remote


@pytest.fixture(scope="session", autouse=True)
def hermetic_git(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every git the tests start (and every herd and fake agent they start) reads this config
    instead of the user's global and system ones: the suite passes on a machine where git has
    no identity, and a user's settings (hooks, signing, init.defaultBranch) cannot leak in.
    Tests of the no-identity case use `no_git_identity(env)`."""
    config = tmp_path_factory.mktemp("git-home") / "gitconfig"
    config.write_text(
        "[user]\n\tname = Test\n\temail = test@example.invalid\n[init]\n\tdefaultBranch = main\n"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GIT_CONFIG_GLOBAL", str(config))
        patch.setenv("GIT_CONFIG_NOSYSTEM", "1")
        yield config


def no_git_identity(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """`env` as on a fresh machine whose git has no user.name/user.email."""
    empty = tmp_path / "empty-gitconfig"
    # useConfigOnly: git must not guess one from the host name either (some hosts have a domain).
    empty.write_text("[user]\n\tuseConfigOnly = true\n")
    env = {k: v for k, v in env.items() if not k.startswith(("GIT_AUTHOR_", "GIT_COMMITTER_"))}
    # EMAIL would give git an address to use; a fresh container has none.
    env.pop("EMAIL", None)
    return {**env, "GIT_CONFIG_GLOBAL": str(empty), "GIT_CONFIG_NOSYSTEM": "1"}


@pytest.fixture
def repo_remote(tmp_path: Path) -> tuple[Path, Path]:
    return make_repo(tmp_path)


def start_quality_checks() -> None:
    """Start ruff and mypy in the background (once); `quality_check` collects the verdict."""
    # Coverage measures herd, not the checkers: their runs do not inherit its subprocess hook.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    for name, argv in QUALITY.items():
        if name in _checks or shutil.which(argv[0]) is None:
            continue  # a missing checker fails its test, with the install hint
        fd, out = tempfile.mkstemp(prefix=f"herd-{name}-", suffix=".log")
        with os.fdopen(fd, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", *argv],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _checks[name] = (proc, Path(out))


def quality_check(name: str) -> tuple[int, str]:
    """Exit code and output of checker `name` (started now if collection did not)."""
    if shutil.which(QUALITY[name][0]) is None:
        # Part of the test extra: missing means a broken set-up, not an optional tool.
        pytest.fail(f"{QUALITY[name][0]} is not installed: pip install -e '.[test]'")
    start_quality_checks()
    proc, out = _checks[name]
    code = proc.wait(timeout=600)
    return code, out.read_text(errors="replace")


_deselected: list[pytest.Item] = []


def pytest_deselected(items: list[pytest.Item]) -> None:
    _deselected.extend(items)


def background_pids() -> set[int]:
    """The checkers running in the background: children of this process no test started."""
    return {proc.pid for proc, _ in _checks.values()}


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist the coverage floor is judged here, in the controller, which collects
    nothing: only a run of the whole suite (no paths, -k, -m or --lf) is held to it."""
    narrowed = (
        config.args_source != pytest.Config.ArgsSource.TESTPATHS
        or config.getoption("keyword", "")
        or config.getoption("markexpr", "")
        or config.getoption("lf", False)
    )
    cov = config.pluginmanager.getplugin("_cov")
    if cov is not None and narrowed:
        cov.options.cov_fail_under = None


def pytest_collection_finish(session: pytest.Session) -> None:
    # Under pytest-xdist every worker collects everything: the first one starts the checkers
    # early; elsewhere test_quality starts them when it runs.
    early = os.environ.get("PYTEST_XDIST_WORKER", "gw0") == "gw0"
    if early and any(item.path.name == "test_quality.py" for item in session.items):
        start_quality_checks()
    # The coverage floor is the whole suite's: a run of some tests (named files, -k, -m,
    # --lf) still reports coverage but does not fail on it.
    whole = session.config.args_source == pytest.Config.ArgsSource.TESTPATHS and not _deselected
    cov = session.config.pluginmanager.getplugin("_cov")
    if cov is not None and not whole:
        cov.options.cov_fail_under = None


def pytest_sessionfinish(session: pytest.Session) -> None:
    for proc, out in _checks.values():
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        out.unlink(missing_ok=True)
