"""How to install herd's extras, said correctly for a checkout and for a released package."""

from __future__ import annotations

from pathlib import Path

#: The name on PyPI ("herd" there is an unrelated project); the command and package are `herd`.
DISTRIBUTION = "herd-batch"


def checkout() -> Path | None:
    """The source checkout herd runs from (an editable install of the src layout), if any."""
    root = Path(__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and f'name = "{DISTRIBUTION}"' in pyproject.read_text(encoding="utf-8"):
        return root
    return None


def extra_hint(extra: str) -> str:
    """The pip command that adds `extra` to this installation of herd."""
    root = checkout()
    if root is not None:
        return f"pip install -e '{root}[{extra}]'"
    return f"pip install '{DISTRIBUTION}[{extra}]'"
