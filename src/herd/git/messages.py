"""Commit messages and the user's git identity, asked outside any `Git` object."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

from herd.errors import BadInput
from herd.git.runner import _REPO_ENV

_TRAILER_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


def format_message(message: str, trailers: Mapping[str, str]) -> str:
    """`message`, a blank line, then one `Key: value` line per trailer."""
    lines = []
    for key, value in trailers.items():
        if not _TRAILER_KEY.fullmatch(key):
            raise BadInput(f"invalid trailer key {key!r}; use letters, digits and '-'")
        if "\n" in value or not value.strip():
            raise BadInput(f"invalid value {value!r} for trailer {key}; use one non-empty line")
        lines.append(f"{key}: {value.strip()}")
    body = message.strip("\n").rstrip()
    if not lines:
        return body + "\n"
    return f"{body}\n\n" + "\n".join(lines) + "\n"


def _with_newline(message: str) -> str:
    return message if message.endswith("\n") else message + "\n"


def user_identity(repo: Path) -> str | None:
    """The identity the user's own git commits with in `repo` ("Name <email>", from config or
    GIT_AUTHOR_*/GIT_COMMITTER_* in the environment), or None when git would refuse to commit.

    Asked without herd's fallback identity: a worker commits with the user's git, so a run
    needs a real one, checked before anything starts."""
    env = {k: v for k, v in os.environ.items() if k not in _REPO_ENV}
    idents = []
    for var in ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT"):
        proc = subprocess.run(
            ["git", "var", var], cwd=repo, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
        if proc.returncode != 0:
            return None
        idents.append(proc.stdout)
    # "Name <email> 1700000000 +0000": drop the timestamp.
    return idents[0].rsplit(" ", 2)[0]


def no_identity_message(repo: Path) -> str:
    return (
        f"git has no user identity to commit with in {repo} (the workers commit there); "
        "set one: git config --global user.name 'Your Name' && "
        "git config --global user.email you@example.com"
    )


def enclosing_repository(path: Path) -> Path | None:
    """The top of the git work tree that `path` (or, when it does not exist yet, its nearest
    existing parent) lies in; None outside any repository."""
    probe = Path(path).absolute()
    while not probe.is_dir() and probe != probe.parent:
        probe = probe.parent
    env = {k: v for k, v in os.environ.items() if k not in _REPO_ENV}
    proc = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"],
        cwd=probe,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    return Path(proc.stdout.strip()) if proc.returncode == 0 and proc.stdout.strip() else None
