"""Collecting a job's output: whole stdout, or just the tail kept for diagnosis."""

from __future__ import annotations

import os
from pathlib import Path

TAIL_BYTES = 4096
TAIL_LINES = 40
_READ_CHUNK = 65536


def last_lines(text: str, lines: int) -> str:
    """The last `lines` lines of `text`, trailing blank space dropped."""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def tail_text(data: bytes) -> str:
    """The last TAIL_LINES lines within the last TAIL_BYTES bytes, decoded leniently."""
    text = data[-TAIL_BYTES:].decode("utf-8", errors="replace")
    lines = text.splitlines(keepends=True)
    return "".join(lines[-TAIL_LINES:])


def read_file_tail(path: Path, size: int = TAIL_BYTES) -> bytes:
    """The last `size` bytes of a file (b"" when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            end = f.seek(0, os.SEEK_END)
            f.seek(max(0, end - size))
            return f.read()
    except OSError:
        return b""


class PipeReader:
    """The parent's non-blocking end of a job's output pipe.

    Keeps everything (`whole=True`, for captured stdout) or only a bounded tail,
    so a chatty job cannot grow the supervisor's memory.
    """

    def __init__(self, fd: int, *, whole: bool) -> None:
        os.set_blocking(fd, False)
        self.fd = fd
        self.whole = whole
        self.buf = bytearray()
        self.closed = False

    def read_available(self) -> bool:
        """Read what the pipe holds now. True once the pipe reached EOF."""
        while True:
            try:
                chunk = os.read(self.fd, _READ_CHUNK)
            except BlockingIOError:
                return False
            if not chunk:
                return True
            self.buf += chunk
            if not self.whole and len(self.buf) > 2 * TAIL_BYTES:
                del self.buf[:-TAIL_BYTES]

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)
