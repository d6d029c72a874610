"""Install hints name the right distribution: `herd` on PyPI is someone else's project."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from herd import install

ROOT = Path(__file__).resolve().parents[2]


def test_the_distribution_is_herd_batch_and_the_command_herd() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == install.DISTRIBUTION == "herd-batch"
    assert project["scripts"] == {"herd": "herd.cli:main"}


def test_the_hint_in_a_checkout_installs_the_checkout() -> None:
    assert install.extra_hint("dask") == f"pip install -e '{ROOT}[dask]'"


def test_the_hint_in_a_released_package_names_herd_batch(tmp_path: Path) -> None:
    # herd installed as a package: no pyproject.toml of herd's around it.
    package = tmp_path / "site-packages" / "herd"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    shutil.copy(ROOT / "src" / "herd" / "install.py", package / "install.py")
    proc = subprocess.run(
        [sys.executable, "-c", "from herd.install import extra_hint; print(extra_hint('dask'))"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(package.parent)},
    )
    assert proc.stdout.strip() == "pip install 'herd-batch[dask]'"


def test_no_text_tells_anyone_to_install_the_other_herd() -> None:
    wrong = re.compile(r"pip install\s+['\"]?herd(\[|['\"\s]|$)", re.M)
    files = [
        ROOT / "README.md",
        ROOT / "CONTRIBUTING.md",
        *ROOT.glob("docs/**/*.md"),
        *ROOT.glob("src/**/*.py"),
        ROOT / ".ci" / "run",
    ]
    offenders = [
        f"{p.relative_to(ROOT)}: {m.group(0)}"
        for p in files
        if p.exists()
        for m in wrong.finditer(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []
