"""One SQLite file shared by threads and processes: a connection per thread, WAL, busy timeout.

The review queue and the experiment store both sit on serving hot paths (an escalated text, the
router's write-behind flush); opening a connection per call cost them a quarter of a replica's time
and a tenth of the router's CPU. Each thread therefore keeps one connection, opened on first use.
WAL lets readers proceed while a writer commits, the busy timeout serialises writers across
processes, and `synchronous=NORMAL` (safe with WAL: a process crash loses nothing, a power cut at
most the last commits) avoids an fsync per commit.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class SQLiteFile:
    """`with db.connect() as conn:` gives this thread's autocommit connection (`BEGIN` explicitly)."""

    def __init__(self, path: str | Path, schema: str, row_factory: type | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.row_factory = row_factory
        self._local = threading.local()
        with self.connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(schema)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            if self.row_factory is not None:
                conn.row_factory = self.row_factory
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        yield conn

    def close(self) -> None:
        """Close this thread's connection (other threads' close when those threads end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
