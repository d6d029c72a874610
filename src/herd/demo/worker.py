"""The built-in deterministic worker used by `herd demo` (no agent needed).

It reads its context file, edits the one file in its scope the way the task's
title asks, and commits. A title with "flaky" fails on the first attempt; a
title with "breaks the tests" writes code that the demo's test suite rejects.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


def main() -> int:
    context = Path(os.environ["HERD_CONTEXT_FILE"]).read_text(encoding="utf-8")
    task_id = os.environ["HERD_TASK_ID"]
    attempt = int(os.environ.get("HERD_ATTEMPT", "1"))
    title = re.search(r"^\*\*Title\*\*: (.*)$", context, re.M)
    scope = re.search(r"^\*\*Scope\*\*: (\S+)", context, re.M)
    if not title or not scope:
        print("demo worker: context file has no title or scope", file=sys.stderr)
        return 2
    print(f"demo worker: {task_id} attempt {attempt}: {title.group(1)}")
    if "flaky" in title.group(1) and attempt == 1:
        print("demo worker: simulated flaky failure (network timeout talking to the model)", file=sys.stderr)
        return 1
    target = Path(scope.group(1))
    name = "f_" + re.sub(r"\W", "_", task_id)
    value = "None  # BROKEN" if "breaks the tests" in title.group(1) else repr(task_id)
    with target.open("a", encoding="utf-8") as handle:
        handle.write(f"\n\ndef {name}():\n    return {value}\n")
    subprocess.run(["git", "add", str(target)], check=True)
    subprocess.run(["git", "commit", "-q", "-m", f"demo: {title.group(1)}"], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
