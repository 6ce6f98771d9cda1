"""Adaptive micro-batching for the router's calls to an arm: no fixed wait, batches grow with load.

A Serve hop costs several milliseconds of CPU on a small box, so the router sends an arm one call
per *group* of concurrent requests. `@serve.batch` would do that with a fixed wait (every request
pays up to `batch_wait_timeout_s` even when it is alone), and it forms the next batch before the
previous one has returned. This batcher instead sends at once whenever the arm has a free slot
(`max_in_flight`, normally its replica count) and lets requests that arrive while every slot is busy
pile up; when a call returns, everything waiting (up to `max_batch_size`) goes in the next one.
At low load a request travels alone with no added wait; under load the batch size tracks the
backlog — the usual "batch while the server is busy" rule of inference servers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

SendFn = Callable[[list[Any]], Awaitable[list[Any]]]


class AdaptiveBatcher:
    """`await batcher.submit(item)` -> that item's result from `send(items)` (one result per item)."""

    def __init__(self, send: SendFn, max_batch_size: int = 32, max_in_flight: int = 1) -> None:
        if max_batch_size < 1 or max_in_flight < 1:
            raise ValueError(
                f"max_batch_size and max_in_flight must be >= 1, got {max_batch_size}, {max_in_flight}"
            )
        self.send = send
        self.max_batch_size = max_batch_size
        self.max_in_flight = max_in_flight
        self._pending: list[tuple[Any, asyncio.Future]] = []
        self._in_flight = 0
        self._tasks: set[asyncio.Task] = set()  # the loop holds tasks weakly
        self.batches = 0  # how many calls carried how many items (tests, debugging)
        self.items = 0

    @property
    def mean_batch_size(self) -> float:
        return self.items / self.batches if self.batches else 0.0

    async def submit(self, item: Any) -> Any:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._in_flight < self.max_in_flight:
            self._in_flight += 1
            task = asyncio.ensure_future(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        """Send batches until nothing is pending; one slot of `max_in_flight` is held meanwhile."""
        try:
            while self._pending:
                batch, self._pending = (
                    self._pending[: self.max_batch_size],
                    self._pending[self.max_batch_size :],
                )
                self.batches += 1
                self.items += len(batch)
                try:
                    results = await self.send([item for item, _ in batch])
                    if len(results) != len(batch):
                        raise RuntimeError(
                            f"batch of {len(batch)} items came back with {len(results)} results"
                        )
                except asyncio.CancelledError:
                    for _, fut in batch + self._pending:
                        fut.cancel()
                    self._pending = []
                    raise
                except Exception as exc:  # every caller in the batch sees the failure
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for (_, fut), result in zip(batch, results, strict=True):
                    if fut.done():
                        continue
                    if isinstance(result, BaseException):  # `send` may fail items one by one
                        fut.set_exception(result)
                    else:
                        fut.set_result(result)
        finally:
            self._in_flight -= 1
