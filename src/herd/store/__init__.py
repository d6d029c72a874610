"""The SQLite store: one file, `.herd/herd.db`. The only package in herd that writes SQL.

`Store` only opens connections and transactions; the SQL itself lives in
per-transaction functions in `issues`, `work` (and `journal` for runs).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

from herd.errors import BadInput, NotFound
from herd.store.schema import migrate

# pathlib is imported where a Path is made: on Python 3.11 it brings urllib.parse and
# ipaddress along (~18M instructions, a seventh of a claim), which the click-free
# commands (`fast.py`) do not need. mypy reads any `TYPE_CHECKING` as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

HERD_DIR = ".herd"
DB_NAME = "herd.db"

__all__ = ["DB_NAME", "HERD_DIR", "Store", "find_db", "find_db_file", "user_store_path"]

# Python's sqlite3 binds a None by first asking its adapter protocol for one, which raises
# and clears an AttributeError each time (about 2,000 instructions per NULL: an import
# binds two per issue). With an adapter registered for None it finds one at once; the
# adapter (`{}.get`, a C function) gives None back, bound as NULL as before.
_NOTHING: dict[None, None] = {}
sqlite3.register_adapter(type(None), _NOTHING.get)


def user_store_path() -> Path:
    """The per-user store `herd map` uses outside a herd repository."""
    from pathlib import Path

    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "herd" / DB_NAME


def find_db(explicit: str | os.PathLike[str] | None = None, start: Path | None = None) -> Path:
    """`--db`, else `HERD_DB`, else `.herd/herd.db` in the nearest directory upwards."""
    from pathlib import Path

    return Path(find_db_file(explicit, start))


def find_db_file(
    explicit: str | os.PathLike[str] | None = None, start: str | os.PathLike[str] | None = None
) -> str:
    """`find_db` as the text of the path (what `str()` of its Path gives), without pathlib."""
    chosen = explicit or os.environ.get("HERD_DB")
    if chosen:
        return posix_path_text(os.fspath(chosen))
    directory = here = os.path.realpath(os.fspath(start) if start is not None else os.getcwd())
    while True:
        candidate = os.path.join(directory, HERD_DIR, DB_NAME)
        if os.path.exists(candidate):
            return candidate
        parent = os.path.dirname(directory)
        if parent == directory:
            raise NotFound(f"no {HERD_DIR}/ in {here} or any parent; run `herd init` in your repository")
        directory = parent


def posix_path_text(text: str) -> str:
    """`str(PurePosixPath(text))`: repeated and trailing slashes and `.` parts dropped
    (exactly two leading slashes kept), `..` kept; "." for nothing."""
    stripped = text.lstrip("/")
    root = "/" * (len(text) - len(stripped))
    if len(root) > 2:
        root = "/"
    parts = [part for part in stripped.split("/") if part and part != "."]
    return root + "/".join(parts) or "."


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch a new store to WAL. The switch needs the file to itself and SQLite does not
    wait for that (no busy handler), so processes opening a new store together retry."""
    for attempt in range(200):
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 199:
                raise
            time.sleep(0.01 + 0.001 * attempt)


class Store:
    """A connection to one store file. Not shared between threads or processes."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = False) -> None:
        # The file's path as text (a Path's, or `find_db_file`'s); `path` makes the Path.
        self.file = path = os.fspath(path)
        if not create and not os.path.exists(path):
            raise NotFound(f"store {path} does not exist; run `herd init` or check --db/HERD_DB")
        try:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            self.conn = sqlite3.connect(path, isolation_level=None, timeout=30.0, check_same_thread=False)
        except (sqlite3.Error, OSError) as exc:
            raise BadInput(f"cannot open store {path}: {exc}") from None
        self.conn.execute("PRAGMA busy_timeout = 30000")
        try:
            _use_wal(self.conn)
            self.conn.execute("PRAGMA synchronous = NORMAL")
            migrate(self.conn)
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise BadInput(f"{path} is not a herd store ({exc})") from None

    @property
    def path(self) -> Path:
        from pathlib import Path

        return Path(self.file)

    @property
    def root(self) -> Path:
        """The directory holding `.herd/` (the repository root for a default store)."""
        return self.path.parent.parent if self.path.parent.name == HERD_DIR else self.path.parent

    @property
    def herd_dir(self) -> Path:
        return self.path.parent

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front (BEGIN IMMEDIATE), so it never fails half-way
        on a lock upgrade; rolled back on any exception, KeyboardInterrupt included."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for several queries."""
        self.conn.execute("BEGIN")
        try:
            yield self.conn
        finally:
            self.conn.execute("COMMIT")

    def get_config(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM config WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else default

    def set_config(self, key: str, value: str) -> None:
        with self.write() as tx:
            tx.execute("INSERT OR REPLACE INTO config (key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
