"""SQLiteFile: one connection per thread, reused; WAL; a closed connection is reopened on next use."""

from __future__ import annotations

import threading
from pathlib import Path

from monovec.sqlite_file import SQLiteFile


def test_one_connection_per_thread_reused_and_reopened_after_close(tmp_path: Path) -> None:
    db = SQLiteFile(tmp_path / "sub" / "x.sqlite", "CREATE TABLE IF NOT EXISTS t (v INTEGER);")
    with db.connect() as a, db.connect() as b:
        assert a is b
        assert a.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        a.execute("INSERT INTO t VALUES (1)")
    other: list[object] = []

    def in_thread() -> None:
        with db.connect() as conn:
            other.append(conn)
            conn.execute("INSERT INTO t VALUES (2)")

    t = threading.Thread(target=in_thread)
    t.start()
    t.join()
    with db.connect() as mine:
        assert other[0] is not mine
        assert sorted(v for (v,) in mine.execute("SELECT v FROM t")) == [1, 2]
    db.close()
    with db.connect() as again:
        assert again is not mine and again.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 2
