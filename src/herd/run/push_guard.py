"""Workers commit locally and never push: every git a worker runs refuses to push.

Two layers, both through the worker's environment (nothing in the repository's
config changes): `core.hooksPath` points at a directory holding the
repository's own hooks plus a pre-push hook that refuses; and because
`git push --no-verify` skips hooks, every push URL is also rewritten
(`pushInsteadOf` with the empty prefix; fetches are untouched) to a remote
helper that refuses. Either one records the attempt in `HERD_PUSH_MARKER`, so
the hypervisor fails the attempt with a clear reason. This stops accidents, not
a worker that resets its own environment.
"""

from __future__ import annotations

import os
from pathlib import Path

NO_PUSH_SCHEME = "herd-no-push"

_REFUSE = (
    "#!/bin/sh\n"
    "# Installed by herd: workers commit locally; herd pushes once after testing.\n"
    '[ -n "$HERD_PUSH_MARKER" ] && : > "$HERD_PUSH_MARKER"\n'
    'echo "herd: workers must not push; commit locally and exit" >&2\n'
    "exit 1\n"
)


def install(hooks_dir: Path, repo_hooks: Path | None) -> None:
    """The hooks directory workers use: the repository's own hooks (linked), a refusing
    pre-push, and the refusing remote helper under bin/."""
    hooks_dir.mkdir(parents=True, exist_ok=True)
    if repo_hooks is not None and repo_hooks.is_dir():
        for hook in repo_hooks.iterdir():
            link = hooks_dir / hook.name
            if hook.name != "pre-push" and not hook.name.endswith(".sample") and not link.exists():
                link.symlink_to(hook.resolve())
    for path in (hooks_dir / "pre-push", hooks_dir / "bin" / f"git-remote-{NO_PUSH_SCHEME}"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(_REFUSE)
        path.chmod(0o755)


def worker_env(hooks_dir: Path, marker: Path) -> dict[str, str]:
    """The variables that make a worker's git refuse (and report) any push."""
    return {
        "HERD_PUSH_MARKER": str(marker),
        "GIT_CONFIG_COUNT": "2",
        "GIT_CONFIG_KEY_0": "core.hooksPath",
        "GIT_CONFIG_VALUE_0": str(hooks_dir),
        "GIT_CONFIG_KEY_1": f"url.{NO_PUSH_SCHEME}::.pushInsteadOf",
        "GIT_CONFIG_VALUE_1": "",
        "PATH": f"{hooks_dir / 'bin'}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
    }
