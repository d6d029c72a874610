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


class CappedLog:
    """A job's log file that keeps only about the last `limit` bytes.

    Output is appended to the file; past `limit / 2` bytes the file becomes the
    previous half and a new one starts, so at most `limit` bytes are on disk. When
    the job ends the halves are joined under a line that says output was dropped.
    """

    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self.limit = max(limit, 2)
        self.dropped = 0
        self._older = path.with_name(path.name + ".older")
        self._file = open(path, "wb")  # noqa: SIM115 (closed in close())
        self._size = 0

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self._file.flush()  # `herd status` shows the log's last line while the job runs
        self._size += len(chunk)
        if self._size >= self.limit // 2:
            self._file.close()
            if self._older.exists():
                self.dropped += self._older.stat().st_size
            os.replace(self.path, self._older)
            self._file = open(self.path, "wb")  # noqa: SIM115
            self._size = 0

    def close(self) -> None:
        self._file.close()
        if not self._older.exists():
            return
        kept = self._older.read_bytes() + self.path.read_bytes()
        self.dropped += max(0, len(kept) - self.limit)
        kept = kept[-self.limit :]
        note = (
            f"[herd: this log keeps the last {self.limit / 2**20:g} MiB of output; "
            f"{self.dropped} earlier bytes were dropped]\n"
        ).encode()
        self.path.write_bytes(note + kept)
        self._older.unlink()


class PipeReader:
    """The parent's non-blocking end of a job's output pipe.

    Keeps everything (`whole=True`, for captured stdout) or only a bounded tail,
    so a chatty job cannot grow the supervisor's memory. With a `log`, every
    chunk is also written there.
    """

    def __init__(self, fd: int, *, whole: bool, log: CappedLog | None = None) -> None:
        os.set_blocking(fd, False)
        self.fd = fd
        self.whole = whole
        self.log = log
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
            if self.log is not None:
                self.log.write(chunk)
            self.buf += chunk
            if not self.whole and len(self.buf) > 2 * TAIL_BYTES:
                del self.buf[:-TAIL_BYTES]

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)
            if self.log is not None:
                self.log.close()
