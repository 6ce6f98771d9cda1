"""Progress for long work: tqdm bars for people, every step in the log for the record.

Commands that run for minutes (a build, a quickstart, traffic through the A/B app) show one bar per
phase instead of a line per step. Bars go to stderr and switch themselves off when stderr is not a
terminal (CI logs, pipes: `disable=None` is tqdm's own switch), so logs stay readable; every step
message still goes to the Python log, which a command may route to a file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
log = logging.getLogger("monovec.progress")


def bar(total: int | None = None, desc: str = "", unit: str = "it", **kwargs: Any) -> tqdm:
    """A tqdm bar with the project's defaults (stderr, off when not a TTY, one line, kept at the end)."""
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        disable=None,
        dynamic_ncols=True,
        leave=kwargs.pop("leave", True),
        **kwargs,
    )


def track(items: Iterable[T], desc: str = "", total: int | None = None, unit: str = "it") -> Iterator[T]:
    """Iterate `items` with a bar."""
    with bar(total=total if total is not None else _len(items), desc=desc, unit=unit) as b:
        for item in items:
            yield item
            b.update(1)


def _len(items: Iterable[Any]) -> int | None:
    try:
        return len(items)  # type: ignore[arg-type]
    except TypeError:
        return None


class StepBar:
    """A `progress(message)` callback that advances one bar per call, shows the newest message next to
    it, and logs every message. Use it where a function reports steps as strings (e.g. a build)."""

    def __init__(self, desc: str, total: int | None = None) -> None:
        self._bar = bar(total=total, desc=desc, unit="step")

    def __call__(self, message: str) -> None:
        log.info(message)
        self._bar.update(1)
        self._bar.set_postfix_str(message.strip().splitlines()[0][:60], refresh=True)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> StepBar:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
