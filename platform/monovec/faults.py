"""Deliberate failures for tests and drills: one mechanism for every family.

A component that can be made to fail takes a `FaultConfig` in its config (never set in shipped
configs; `tests/unit/test_config.py` checks that) and calls `maybe_fail(...)` where a real fault would
strike: an arm replica classifying a text, a training loop starting an epoch, an update job after N
events. The failure is an `InjectedFault`, so a test can tell it from a real bug. One switch slows
instead of failing: a tune driver that pauses after every step, so a test's kill lands between two of
its saved states. The switches travel inside the job's config (to Ray workers too), never through
environment variables.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from pydantic import Field

from monovec.config import StrictModel


class InjectedFault(RuntimeError):
    """Raised by a `FaultConfig` switch: a stand-in for a crash, an OOM, a killed worker."""


class FaultConfig(StrictModel):
    """Switches for fault-injection tests; all off by default."""

    fail_texts_containing: str | None = Field(
        None, description="an arm replica raises while classifying a text that contains this marker"
    )
    fail_at_epoch: int | None = Field(
        None, ge=1, description="training raises once at the start of this global epoch (the rerun resumes)"
    )
    fail_after_events: int | None = Field(
        None, ge=1, description="an update job raises after learning this many events in one run"
    )
    driver_step_delay_s: float | None = Field(
        None,
        gt=0,
        description="a tune driver sleeps this long after every Tune controller step (a slow, overloaded "
        "driver): trials then finish at most one per step, so a kill lands between two saved states",
    )

    def check_texts(self, texts: Iterable[object]) -> None:
        """Raise InjectedFault when a text carries the `fail_texts_containing` marker."""
        marker = self.fail_texts_containing
        if marker and any(isinstance(t, str) and marker in t for t in texts):
            raise InjectedFault(f"injected fault: a text contains {marker!r} (faults.fail_texts_containing)")

    def check_epoch(self, epoch: int, marker: Path) -> None:
        """Raise InjectedFault at the start of global epoch `fail_at_epoch`, once: the `marker` file (in
        the run dir, seen by a restarted worker and a rerun driver alike) records that it struck."""
        if self.fail_at_epoch != epoch or marker.exists():
            return
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(epoch))
        raise InjectedFault(f"injected fault at the start of epoch {epoch} (faults.fail_at_epoch)")

    def delay_step(self) -> None:
        """Sleep `driver_step_delay_s` (no-op when off); called by the tune driver after each controller step."""
        if self.driver_step_delay_s:
            time.sleep(self.driver_step_delay_s)

    def check_events(self, learned: int) -> None:
        """Raise InjectedFault once `learned` (events learned in this run) reaches `fail_after_events`."""
        if self.fail_after_events and learned >= self.fail_after_events:
            raise InjectedFault(f"injected fault after {learned} events (faults.fail_after_events)")
