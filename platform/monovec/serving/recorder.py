"""Write-behind of request records: an answer never waits for sqlite, and nothing answered is lost.

The router records every answered request; writing it inline would put sqlite (and any other writer
holding its lock: a CLI, another router replica, a backup) on the request path. Records therefore go
to a bounded in-memory buffer that one thread writes in batches. When a write fails (the file is
locked past its busy timeout, the disk is full) the batch goes back to the front of the buffer and
is retried with backoff until it lands: measured against a file locked for 40 s, the old loop dropped
the batch after its 30 s timeout and lost an answered request.

The buffer is bounded (`max_pending`): past it the oldest records are dropped, counted in `dropped`
and logged, because a router that grows without bound until it is killed loses everything. Callers
that need the records on disk (feedback, status) wait with `flush(timeout_s)` and get False instead
of blocking when the store does not come back in time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)


class RecordSink(Protocol):
    """Where records land (`ExperimentStore.record_requests`)."""

    def record_requests(self, rows: list[Any]) -> int: ...


@dataclass
class RecorderStats:
    """What the write-behind did so far: exported in `/v1/experiment` as `recording`."""

    pending: int
    written: int
    dropped: int
    failed_writes: int
    last_error: str | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class RequestRecorder:
    """A bounded buffer plus one writer thread that retries until each record lands.

    Args:
        sink: the store that receives batches (`record_requests(list) -> int`).
        max_pending: records kept while the store is unavailable; older ones are dropped past it.
        batch_size: records per write.
        retry_initial_s / retry_max_s: backoff between failed writes (doubling, capped).
    """

    def __init__(
        self,
        sink: RecordSink,
        max_pending: int = 100_000,
        batch_size: int = 1000,
        retry_initial_s: float = 0.2,
        retry_max_s: float = 5.0,
    ) -> None:
        if max_pending < 1 or batch_size < 1:
            raise ValueError(f"max_pending and batch_size must be >= 1, got {max_pending}, {batch_size}")
        self.sink, self.max_pending, self.batch_size = sink, max_pending, batch_size
        self.retry_initial_s, self.retry_max_s = retry_initial_s, retry_max_s
        self._pending: deque[Any] = deque()
        self._in_flight = 0
        self._cond = threading.Condition()
        self._written = self._dropped = self._failed = 0
        self._last_error: str | None = None
        self._thread = threading.Thread(target=self._loop, name="request-recorder", daemon=True)
        self._thread.start()

    def add(self, record: Any) -> None:
        """Queue one record (never blocks on the store)."""
        with self._cond:
            if len(self._pending) >= self.max_pending:
                self._pending.popleft()
                self._dropped += 1
                if self._dropped == 1 or self._dropped % 1000 == 0:
                    log.error(
                        "request records dropped: %d so far (buffer of %d full; store: %s)",
                        self._dropped,
                        self.max_pending,
                        self._last_error,
                    )
            self._pending.append(record)
            self._cond.notify()

    def _take(self) -> list[Any]:
        with self._cond:
            while not self._pending:
                self._cond.wait()
            batch = [self._pending.popleft() for _ in range(min(self.batch_size, len(self._pending)))]
            self._in_flight = len(batch)
            return batch

    def _loop(self) -> None:
        delay = self.retry_initial_s
        while True:
            batch = self._take()
            try:
                self.sink.record_requests(batch)
            except Exception as exc:  # keep the batch, retry later: nothing answered is lost
                with self._cond:
                    self._pending.extendleft(reversed(batch))
                    self._in_flight = 0
                    self._failed += 1
                    self._last_error = f"{type(exc).__name__}: {exc}"
                    excess = len(self._pending) - self.max_pending
                    for _ in range(max(excess, 0)):
                        self._pending.popleft()
                        self._dropped += 1
                    self._cond.notify_all()
                log.warning(
                    "could not write %d request records (%s); retrying in %.1fs",
                    len(batch),
                    self._last_error,
                    delay,
                )
                time.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)
                continue
            delay = self.retry_initial_s
            with self._cond:
                self._written += len(batch)
                self._in_flight = 0
                if self._failed and not self._pending:
                    log.warning("request records caught up after %d failed writes", self._failed)
                self._cond.notify_all()

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every record added so far is written; False when `timeout_s` passed first."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while self._pending or self._in_flight:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(timeout=left)
        return True

    def stats(self) -> RecorderStats:
        with self._cond:
            return RecorderStats(
                len(self._pending) + self._in_flight,
                self._written,
                self._dropped,
                self._failed,
                self._last_error,
            )

    def is_pending(self, request_id: str) -> bool:
        """Whether a record with this `request_id` is still waiting to be written."""
        with self._cond:
            return any(getattr(r, "request_id", None) == request_id for r in self._pending)
