"""Persistent experiment state: split, per-request records, feedback and the decision log, in sqlite.

Why sqlite (WAL) and not an actor's memory: nothing counted may be lost when a router or
replica restarts or the app is redeployed, and several replicas (threads and processes) write
at once. Every call opens a short connection with a busy timeout and writes in one
``BEGIN IMMEDIATE`` transaction, so writers queue instead of failing and readers see a
consistent snapshot. ``synchronous=NORMAL`` in WAL mode survives process crashes and restarts;
only an OS crash or power cut can drop the last few commits.

Aggregates are computed from the rows on demand (no separate counters that could disagree with
them). Latency percentiles use the newest ``latency_window`` requests of the arm, so they
describe current behaviour and cost the same however long the experiment runs.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monovec.metrics import latency_summary
from monovec.paths import state_dir
from monovec.serving.assignment import arm_order, normalize_weights
from monovec.sqlite_file import SQLiteFile

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    ts REAL NOT NULL,
    arm TEXT NOT NULL,
    model_version TEXT,
    latency_ms REAL NOT NULL,
    decision TEXT,
    stage TEXT,
    unknown INTEGER NOT NULL DEFAULT 0,
    low_confidence INTEGER NOT NULL DEFAULT 0,
    error INTEGER NOT NULL DEFAULT 0,
    labels TEXT NOT NULL DEFAULT '{}',
    input_error INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS requests_by_arm ON requests(arm);
CREATE TABLE IF NOT EXISTS feedback (
    request_id TEXT PRIMARY KEY REFERENCES requests(request_id),
    ts REAL NOT NULL,
    correct TEXT,
    satisfied INTEGER
);
CREATE TABLE IF NOT EXISTS feedback_heads (
    request_id TEXT NOT NULL REFERENCES requests(request_id),
    head TEXT NOT NULL,
    correct INTEGER NOT NULL,
    PRIMARY KEY (request_id, head)
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS decision_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    action TEXT NOT NULL,
    reason TEXT NOT NULL,
    weights TEXT,
    details TEXT
);
CREATE TABLE IF NOT EXISTS test_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    metric TEXT NOT NULL,
    n_control INTEGER NOT NULL,
    successes_control INTEGER NOT NULL,
    n_treatment INTEGER NOT NULL,
    successes_treatment INTEGER NOT NULL,
    z REAL NOT NULL,
    boundary REAL NOT NULL,
    information_fraction REAL NOT NULL,
    p_value REAL NOT NULL,
    significant INTEGER NOT NULL,
    min_samples_met INTEGER NOT NULL,
    action TEXT
);
"""

_LOOK_KEYS = (
    "metric",
    "n_control",
    "successes_control",
    "n_treatment",
    "successes_treatment",
    "z",
    "boundary",
    "information_fraction",
    "p_value",
    "significant",
    "min_samples_met",
    "action",
)


class StoreBusy(RuntimeError):
    """The store could not be reached within a request's time budget (another writer holds its lock).

    The router answers 503 `store_busy` with `Retry-After`; nothing was changed.
    """


class SplitConflict(RuntimeError):
    """A split change was asked for against a split that is no longer in force (nothing was changed).

    ``current`` is the split in force; ``expected`` what the caller believed it was.
    """

    def __init__(self, current: dict[str, float] | None, expected: Mapping[str, float]) -> None:
        self.current, self.expected = current, dict(expected)
        now = ", ".join(f"{a}={(current or {}).get(a, 0.0):g}" for a in self.expected)
        want = ", ".join(f"{a}={w:g}" for a, w in self.expected.items())
        super().__init__(f"the split changed: it is now {now}, the request expected {want}; nothing was done")


@dataclass(frozen=True)
class RequestRecord:
    """One served request as the experiment counts it; ``labels`` are the served label per head."""

    request_id: str
    arm: str
    model_version: str | None
    latency_ms: float
    decision: str | None
    stage: str | None
    unknown: bool = False
    low_confidence: bool = False
    error: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    ts: float | None = None
    input_error: bool = False
    """The client's input could not be classified (a batch item, an empty normalised text): recorded,
    never counted as an arm failure by the error-rate guardrail."""

    def row(self) -> tuple[Any, ...]:
        if not self.request_id or not self.arm:
            raise ValueError("request_id and arm must be non-empty")
        if not math.isfinite(self.latency_ms) or self.latency_ms < 0:
            raise ValueError(f"latency_ms must be a finite number >= 0, got {self.latency_ms}")
        return (
            self.request_id,
            self.ts if self.ts is not None else time.time(),
            self.arm,
            self.model_version,
            float(self.latency_ms),
            self.decision,
            self.stage,
            int(bool(self.unknown)),
            int(bool(self.low_confidence)),
            int(bool(self.error)),
            json.dumps(dict(self.labels), sort_keys=True),
            int(bool(self.input_error)),
        )


def _rate(num: int, den: int) -> float:
    return num / den if den else 0.0


class ExperimentStore:
    """The experiment's durable memory; safe to use from many threads and processes at once
    (`SQLiteFile`: a connection per thread, WAL, shared by router replicas and the CLI)."""

    busy_timeout_s = 30.0
    """How long a background writer waits for another writer's lock before its write fails (and is retried)."""

    def __init__(self, path: str | Path | None = None, latency_window: int = 10_000) -> None:
        self._db = SQLiteFile(path if path is not None else state_dir() / "experiment.sqlite", _SCHEMA)
        self.path = self._db.path
        self._migrate()
        self.latency_window = latency_window

    def _migrate(self) -> None:
        """Add columns newer than the file (experiments outlive deploys of newer code)."""
        with self._connect() as conn:
            have = {row[1] for row in conn.execute("PRAGMA table_info(requests)")}
            if "input_error" not in have:
                conn.execute("ALTER TABLE requests ADD COLUMN input_error INTEGER NOT NULL DEFAULT 0")

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._db.connect()

    def close(self) -> None:
        """Close this thread's connection."""
        self._db.close()

    @contextmanager
    def _transaction(self, write: bool, timeout_s: float | None = None) -> Iterator[sqlite3.Connection]:
        """One transaction: IMMEDIATE for writes (take the lock up front, no upgrade deadlocks).

        `timeout_s` bounds the wait for another writer's lock (request paths pass a short one) and
        turns a timeout into `StoreBusy`; None keeps the connection's long busy timeout (background
        writers, which retry).
        """
        with self._connect() as conn:
            conn.execute(
                f"PRAGMA busy_timeout={int(1000 * (timeout_s if timeout_s is not None else self.busy_timeout_s))}"
            )
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.OperationalError as exc:
                if timeout_s is not None and "locked" in str(exc):
                    raise StoreBusy(
                        f"the experiment store is locked by another writer (waited {timeout_s:g}s)"
                    ) from exc
                raise
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                conn.execute("ROLLBACK")
                if timeout_s is not None and "locked" in str(exc):
                    raise StoreBusy(
                        f"the experiment store is locked by another writer (waited {timeout_s:g}s)"
                    ) from exc
                raise

    # -- split and decision log -------------------------------------------------------------

    def get_split(self) -> dict[str, float] | None:
        """The current normalised weights, or None if no split was ever set."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT weights FROM decision_log WHERE weights IS NOT NULL ORDER BY id DESC LIMIT 1"
            ).fetchone()
        return json.loads(row[0]) if row else None

    def _append(
        self, conn: sqlite3.Connection, action: str, reason: str, weights: dict | None, details: dict | None
    ) -> int:
        cur = conn.execute(
            "INSERT INTO decision_log (ts, action, reason, weights, details) VALUES (?, ?, ?, ?, ?)",
            (
                time.time(),
                action,
                reason,
                json.dumps(weights) if weights is not None else None,
                json.dumps(details, default=str) if details is not None else None,
            ),
        )
        return int(cur.lastrowid)

    def set_split(
        self,
        weights: Mapping[str, float],
        reason: str,
        action: str = "set_split",
        details: Mapping[str, Any] | None = None,
        expected: Mapping[str, float] | None = None,
        timeout_s: float | None = None,
    ) -> dict[str, float]:
        """Validate, normalise and store new weights, appending the change to the decision log.

        ``expected`` (arm -> weight) makes it a compare-and-set: the change is written only if
        each named arm still has that weight (±1e-9), checked inside the same write transaction,
        so two admins, two router replicas or a stale page cannot both move the split from the
        same starting point. Otherwise raises :class:`SplitConflict` and changes nothing.
        """
        norm = normalize_weights(weights)
        with self._transaction(write=True, timeout_s=timeout_s) as conn:
            if expected is not None:
                row = conn.execute(
                    "SELECT weights FROM decision_log WHERE weights IS NOT NULL ORDER BY id DESC LIMIT 1"
                ).fetchone()
                current = json.loads(row[0]) if row else None
                if any(abs((current or {}).get(a, 0.0) - float(w)) > 1e-9 for a, w in expected.items()):
                    raise SplitConflict(current, expected)
            self._append(conn, action, reason, norm, dict(details) if details else None)
        return norm

    def ensure_split(self, weights: Mapping[str, float], reason: str = "initial split from config") -> dict:
        """The split in force after a (re)deploy whose config asks for ``weights``; atomic.

        A restart or a redeploy of the same config keeps the persisted split (a rollback survives).
        A config whose weights differ from the config deployed before is an operator's change: it is
        applied and logged (`config_split`), instead of being ignored without a word.
        """
        norm = normalize_weights(weights)
        with self._transaction(write=True) as conn:
            row = conn.execute(
                "SELECT weights FROM decision_log WHERE weights IS NOT NULL ORDER BY id DESC LIMIT 1"
            ).fetchone()
            before = conn.execute("SELECT value FROM meta WHERE key = 'config_split'").fetchone()
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('config_split', ?)",
                (json.dumps(norm, sort_keys=True),),
            )
            if row is None:
                self._append(conn, "initial_split", reason, norm, None)
                return norm
            current = json.loads(row[0])
            previous = json.loads(before[0]) if before else None
            changed = previous is not None and any(
                abs(previous.get(a, 0.0) - w) > 1e-9 for a, w in norm.items()
            )
            if changed:
                self._append(
                    conn,
                    "config_split",
                    f"the deployed config changed the split from {previous} to {norm}",
                    norm,
                    {"previous_config": previous, "was_in_force": current},
                )
                return norm
            return current

    def log_decision(self, action: str, reason: str, details: Mapping[str, Any] | None = None) -> int:
        """Append a decision that does not change the split (e.g. ``continue_experiment``)."""
        with self._transaction(write=True) as conn:
            return self._append(conn, action, reason, None, dict(details) if details else None)

    def last_step(self) -> float | None:
        """Unix time of the newest ramp step, promote or rollback (not a deploy's split), None if none."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT ts FROM decision_log WHERE action IN ('ramp', 'promote', 'rollback') ORDER BY id DESC LIMIT 1"
            ).fetchone()
        return float(row[0]) if row else None

    def decision_log(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Log entries oldest first (the newest ``limit`` when given), with ISO-8601 UTC times."""
        sql = "SELECT id, ts, action, reason, weights, details FROM decision_log ORDER BY id DESC"
        with self._connect() as conn:
            rows = conn.execute(sql + (" LIMIT ?" if limit else ""), (limit,) if limit else ()).fetchall()
        return [
            {
                "id": i,
                "ts": ts,
                "time": datetime.fromtimestamp(ts, tz=UTC).isoformat(),
                "action": action,
                "reason": reason,
                "weights": json.loads(w) if w else None,
                "details": json.loads(d) if d else None,
            }
            for i, ts, action, reason, w, d in reversed(rows)
        ]

    # -- sequential test history -------------------------------------------------------------

    def record_look(self, look: Mapping[str, Any]) -> bool:
        """Append one look at the sequential test (``stats.sequential_look`` plus ``action``).

        A look whose metric and counts equal the newest stored one is skipped (returns False):
        the page polls every few seconds, and only a look at new data is a new point. The check
        and the insert share one write transaction, so concurrent readers add a point once.
        """
        row = tuple(look.get(k) for k in _LOOK_KEYS)
        with self._transaction(write=True) as conn:
            last = conn.execute(
                "SELECT metric, n_control, successes_control, n_treatment, successes_treatment"
                " FROM test_history ORDER BY id DESC LIMIT 1"
            ).fetchone()
            if last is not None and tuple(last) == row[:5]:
                return False
            conn.execute(
                f"INSERT INTO test_history (ts, {', '.join(_LOOK_KEYS)}) VALUES (?{', ?' * len(_LOOK_KEYS)})",
                (time.time(), *row),
            )
        return True

    def test_history(self, limit: int = 200) -> list[dict[str, Any]]:
        """Stored looks oldest first; past ``limit`` thinned to every k-th, always keeping the newest.

        Thinning (not truncation) keeps the whole course of the experiment in a chart-sized answer.
        """
        cols = "id, ts, " + ", ".join(_LOOK_KEYS)
        with self._transaction(write=False) as conn:
            (count,) = conn.execute("SELECT COUNT(*) FROM test_history").fetchone()
            stride = max(1, math.ceil(count / limit)) if limit > 0 else 1
            rows = conn.execute(
                f"SELECT {cols} FROM (SELECT *, ROW_NUMBER() OVER (ORDER BY id DESC) - 1 AS k"
                " FROM test_history) WHERE k % ? = 0 ORDER BY id",
                (stride,),
            ).fetchall()
        out = []
        for r in rows:
            item = dict(zip(("id", "ts", *_LOOK_KEYS), r, strict=True))
            item["significant"], item["min_samples_met"] = (
                bool(item["significant"]),
                bool(item["min_samples_met"]),
            )
            item["time"] = datetime.fromtimestamp(item["ts"], tz=UTC).isoformat()
            out.append(item)
        return out

    # -- requests and feedback --------------------------------------------------------------

    def record_requests(self, rows: Iterable[RequestRecord | Mapping[str, Any]]) -> int:
        """Insert many requests in one transaction (the fast path); returns how many were new.

        A repeated ``request_id`` is ignored, so a retried write never double-counts.
        """
        values = [(r if isinstance(r, RequestRecord) else RequestRecord(**r)).row() for r in rows]
        if not values:
            return 0
        with self._transaction(write=True) as conn:
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO requests (request_id, ts, arm, model_version, latency_ms, decision,"
                " stage, unknown, low_confidence, error, labels, input_error) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                values,
            )
            return conn.total_changes - before

    def record_feedback(
        self,
        request_id: str,
        correct: Mapping[str, str] | None = None,
        satisfied: bool | None = None,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """Attach feedback to a served request; raises KeyError for an unknown ``request_id``.

        ``correct`` maps head -> true label; each head is judged against the label that was
        served (heads the request did not serve are ignored and listed). Repeated feedback
        for a request updates it instead of counting twice; a field left None keeps its value.
        Returns ``{"request_id", "arm", "heads": {head: bool}, "ignored_heads"}``; raises
        ``StoreBusy`` when another writer holds the lock past ``timeout_s``.
        """
        if correct is None and satisfied is None:
            raise ValueError("feedback needs `correct`, `satisfied` or both")
        if correct is not None and not all(
            isinstance(k, str) and isinstance(v, str) for k, v in dict(correct).items()
        ):
            raise ValueError("`correct` must map head names to label strings")
        with self._transaction(write=True, timeout_s=timeout_s) as conn:
            row = conn.execute(
                "SELECT arm, labels FROM requests WHERE request_id = ?", (request_id,)
            ).fetchone()
            if row is None:
                raise KeyError(f"unknown request_id {request_id!r}: no request with this id was recorded")
            arm, labels = row[0], json.loads(row[1])
            judged = {h: labels[h] == v for h, v in (correct or {}).items() if h in labels}
            conn.executemany(
                "INSERT OR REPLACE INTO feedback_heads (request_id, head, correct) VALUES (?, ?, ?)",
                [(request_id, h, int(ok)) for h, ok in judged.items()],
            )
            old = conn.execute(
                "SELECT correct, satisfied FROM feedback WHERE request_id = ?", (request_id,)
            ).fetchone()
            merged = {**(json.loads(old[0]) if old and old[0] else {}), **dict(correct or {})}
            sat = int(satisfied) if satisfied is not None else (old[1] if old else None)
            conn.execute(
                "INSERT OR REPLACE INTO feedback (request_id, ts, correct, satisfied) VALUES (?, ?, ?, ?)",
                (request_id, time.time(), json.dumps(merged, sort_keys=True) if merged else None, sat),
            )
        ignored = sorted(set(correct or {}) - set(judged))
        return {"request_id": request_id, "arm": arm, "heads": judged, "ignored_heads": ignored}

    # -- reading --------------------------------------------------------------------------------

    def all_arms(self) -> list[str]:
        """Arms in the split or with recorded requests, in assignment layout order."""
        with self._connect() as conn:
            seen = {r[0] for r in conn.execute("SELECT DISTINCT arm FROM requests")}
        return arm_order(dict.fromkeys(seen | set(self.get_split() or {}), 0.0))

    def arm_stats(self, arm: str, model_version: str | None = None) -> dict[str, Any]:
        """Counts, rates, latency percentiles and feedback quality of one arm (JSON-ready).

        ``accuracy`` pools every judged head (micro average) and is None with no judged head;
        ``satisfaction`` likewise with no ``satisfied`` answer. ``model_version`` restricts
        the numbers to one version (e.g. after a promotion changed what the arm serves).
        Latencies are in milliseconds over the newest ``latency_window`` served requests.
        """
        where, args = "r.arm = ?", [arm]
        if model_version is not None:
            where, args = where + " AND r.model_version = ?", [arm, model_version]
        with self._transaction(write=False) as conn:
            (input_errors,) = conn.execute(
                f"SELECT COUNT(*) FROM requests r WHERE {where} AND r.input_error = 1", args
            ).fetchone()
            where += " AND r.input_error = 0"  # a client's bad input is not a served request
            traffic = self._traffic(conn, where, args)
            quality = self._quality(conn, where, args)
        return {"arm": arm, **traffic, "input_errors": input_errors, **quality}

    def _traffic(self, conn: sqlite3.Connection, where: str, args: list[Any]) -> dict[str, Any]:
        """Served requests: counts and rates, the decision and model-version mix, latency percentiles."""
        n, errors, unknown, low, esc = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(error), 0), COALESCE(SUM(unknown), 0),"
            " COALESCE(SUM(low_confidence), 0), COALESCE(SUM(decision = 'escalate'), 0)"
            f" FROM requests r WHERE {where}",
            args,
        ).fetchone()
        decisions = dict(
            conn.execute(
                f"SELECT COALESCE(decision, 'none'), COUNT(*) FROM requests r WHERE {where} GROUP BY 1", args
            ).fetchall()
        )
        versions = dict(
            conn.execute(
                f"SELECT COALESCE(model_version, 'none'), COUNT(*) FROM requests r WHERE {where} GROUP BY 1",
                args,
            ).fetchall()
        )
        latencies = [
            row[0]
            for row in conn.execute(
                f"SELECT latency_ms FROM requests r WHERE {where} ORDER BY r.rowid DESC LIMIT ?",
                [*args, self.latency_window],
            )
        ]
        lat = latency_summary(latencies)
        return {
            "n": n,
            "errors": errors,
            "error_rate": _rate(errors, n),
            "latency_window": lat["n"],
            "latency_mean_ms": lat["mean"],
            "latency_p50_ms": lat["p50"],
            "latency_p95_ms": lat["p95"],
            "latency_p99_ms": lat["p99"],
            "decisions": decisions,
            "decision_mix": {k: _rate(v, n) for k, v in decisions.items()},
            "model_versions": versions,
            "unknown": unknown,
            "unknown_rate": _rate(unknown, n),
            "low_confidence_rate": _rate(low, n),
            "escalations": esc,
            "escalation_rate": _rate(esc, n),
        }

    @staticmethod
    def _quality(conn: sqlite3.Connection, where: str, args: list[Any]) -> dict[str, Any]:
        """Feedback on served requests: pooled and per-head accuracy, satisfaction."""
        fb_n, sat_n, sat_yes = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(f.satisfied IS NOT NULL), 0), COALESCE(SUM(f.satisfied = 1), 0)"
            f" FROM feedback f JOIN requests r USING (request_id) WHERE {where}",
            args,
        ).fetchone()
        heads = conn.execute(
            "SELECT h.head, COUNT(*), SUM(h.correct) FROM feedback_heads h"
            f" JOIN requests r USING (request_id) WHERE {where} GROUP BY h.head ORDER BY h.head",
            args,
        ).fetchall()
        acc_n = sum(h[1] for h in heads)
        acc_ok = sum(h[2] for h in heads)
        return {
            "feedback_n": fb_n,
            "accuracy_n": acc_n,
            "accuracy_correct": acc_ok,
            "accuracy": acc_ok / acc_n if acc_n else None,
            "accuracy_per_head": {h: {"n": c, "correct": k, "accuracy": k / c} for h, c, k in heads},
            "satisfaction_n": sat_n,
            "satisfied": sat_yes,
            "satisfaction": sat_yes / sat_n if sat_n else None,
        }
