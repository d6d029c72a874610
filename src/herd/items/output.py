"""Where a map's job output goes: our stdout (whole per job, optionally in input order,
optionally tagged as GNU parallel's `--tag`/`--tagstring`), GNU parallel's `--results`
tree, and the `--joblog` file."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from herd.engine.executor.base import JobResult
from herd.items.template import Template, TextTemplate


class Tagger:
    """`--tag` (the job's values and a tab before each line) or `--tagstring STR`."""

    def __init__(self, template: Template, tagstring: str | None) -> None:
        self.template = template
        self.text = TextTemplate(tagstring, template, "--tagstring") if tagstring else None

    def tag(self, items: Sequence[str], seq: int, slot: int) -> bytes:
        if self.text is not None:
            label = self.text.render(items, seq, slot)
        else:
            label = " ".join(self.template.values(items))
        return label.encode() + b"\t"

    @staticmethod
    def apply(tag: bytes, data: bytes) -> bytes:
        """`tag` before every line (a last line without newline too)."""
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when data ends with a newline
        out = b"".join(tag + line + b"\n" for line in lines)
        return out + tag + tail if tail else out


class Results:
    """GNU parallel's `--results DIR` tree: `DIR/1/<value>/2/<value>/{stdout,stderr,seq}`,
    one level pair per value; `\\`, tab, NUL and `/` in a value quoted as GNU parallel does
    (`\\\\`, `\\t`, `\\0`, `\\_`)."""

    def __init__(self, root: Path, template: Template) -> None:
        self.root = root
        self.template = template

    def directory(self, items: Sequence[str]) -> Path:
        parts: list[str] = []
        for item in items:
            for n, value in enumerate(self.template.values([item]), 1):
                parts.extend((str(n), _quote(value)))
        path = self.root.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @staticmethod
    def write(directory: Path, seq: int, stdout: bytes | None) -> None:
        (directory / "stdout").write_bytes(stdout or b"")
        (directory / "seq").write_text(str(seq))  # no newline, as GNU parallel


def _quote(value: str) -> str:
    quoted = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\0", "\\0").replace("/", "\\_")
    return quoted  # empty: the value's level is the source number's own directory, as GNU


class Sink:
    """Where finished stdout goes: straight through, or in input order."""

    def __init__(self, out: IO[bytes], keep_order: bool) -> None:
        self.out = out
        self.keep_order = keep_order
        self.order: deque[int] = deque()
        self.ready: dict[int, bytes] = {}

    def started(self, seq: int) -> None:
        if self.keep_order:
            self.order.append(seq)

    def finished(self, seq: int, data: bytes | None) -> None:
        if not self.keep_order:
            if data:
                self.out.write(data)
                self.out.flush()
            return
        self.ready[seq] = data or b""
        wrote = False
        while self.order and self.order[0] in self.ready:
            chunk = self.ready.pop(self.order.popleft())
            if chunk:
                self.out.write(chunk)
                wrote = True
        if wrote:
            self.out.flush()

    def window_full(self, limit: int) -> bool:
        return self.keep_order and len(self.order) >= limit


class JobLog:
    """GNU parallel's `--joblog` format, byte for byte: one line per finished job (its
    last attempt), `Receive` is the bytes of stdout, as parallel writes it."""

    HEADER = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"

    def __init__(self, path: Path, append: bool = False) -> None:
        fresh = not append or not path.exists()
        self.handle = path.open("a" if append else "w", encoding="utf-8")
        if fresh:
            self.handle.write(self.HEADER)

    def write(self, seq: int, result: JobResult, argv: Sequence[str]) -> None:
        exit_code = result.exit_code if result.exit_code is not None else -1
        self.handle.write(
            f"{seq}\t:\t{result.started_at:.3f}\t{result.duration:10.3f}\t0\t"
            f"{len(result.stdout or b'')}\t{exit_code}\t{result.signal or 0}\t"
            f"{' '.join(argv)}\n"
        )

    def close(self) -> None:
        self.handle.close()
