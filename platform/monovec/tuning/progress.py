"""Trial rows (one per finished trial) and the driver-side Tune callbacks: a progress line per finished
trial, and the step delay of `faults.driver_step_delay_s` (a resume test's slow driver).

The sweep's rows are built from Tune's experiment state (`finished_rows`, read after `fit()`), not
from callback events: a resumed sweep (`Tuner.restore`) sees no events for the trials finished before
the crash, and the experiment state holds them all. Trial numbers follow creation order (the baseline,
enqueued first, is trial 0): Tune's per-sweep creation counter, the leading integer of each trial's
`experiment_tag`, which survives a restore (Tune requeues restored trials in another order).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ray.tune import Callback
from ray.tune.result import AUTO_RESULT_KEYS

from monovec.faults import FaultConfig
from monovec.tuning.objective import ObjectiveConfig, better

_SKIP = set(AUTO_RESULT_KEYS) | {"done", "trial_id", "experiment_tag", "should_checkpoint"}


def _created(trial: Any) -> tuple[int, str]:
    """Sort key in creation order: Tune's counter leads `experiment_tag` ("3_lr=0.1", BasicVariant: "3")."""
    head = str(getattr(trial, "experiment_tag", "") or "").split("_", 1)[0]
    return (int(head) if head.isdigit() else 1 << 30, trial.trial_id)


def trial_numbers(trials: list) -> dict[str, int]:
    """trial_id -> number in creation order (0 = the first trial created: the untuned baseline)."""
    return {t.trial_id: i for i, t in enumerate(sorted(trials, key=_created))}


def trial_row(trial: Any, number: int, params: list[str]) -> dict[str, Any] | None:
    """One row: number, id, the trial's parameters, every numeric metric of its last result; None without an objective."""
    result = trial.last_result or {}
    if "objective" not in result:
        return None
    row: dict[str, Any] = {"trial": number, "trial_id": trial.trial_id}
    row.update({k: trial.config.get(k) for k in params})
    row.update(
        {
            k: float(v)
            for k, v in result.items()
            if k not in _SKIP and isinstance(v, int | float) and not isinstance(v, bool)
        }
    )
    row["trial_seconds"] = float(result.get("time_total_s", 0.0))
    return row


def finished_rows(trials: list, params: list[str]) -> list[dict[str, Any]]:
    """Rows of every TERMINATED trial with an objective (ASHA-stopped ones included; errored ones not), in creation order."""
    numbers = trial_numbers(trials)
    rows = [trial_row(t, numbers[t.trial_id], params) for t in trials if t.status == "TERMINATED"]
    return sorted((r for r in rows if r is not None), key=lambda r: r["trial"])


class ProgressCallback(Callback):
    """Prints one line per finished trial. `done` counts trials finished before this driver (a resumed sweep)."""

    def __init__(
        self,
        params: list[str],
        objective: ObjectiveConfig,
        total: int,
        progress: Callable[[str], None] = print,
        done: list[dict[str, Any]] | None = None,
    ) -> None:
        self.params = params
        self.objective = objective
        self.total = total
        self.progress = progress
        self.rows: list[dict[str, Any]] = []  # finished by this driver
        self.done = list(done or [])
        self._best: dict[str, Any] | None = None
        for row in self.done:
            self._track_best(row)
        self._t0 = time.perf_counter()

    def _track_best(self, row: dict[str, Any]) -> None:
        if self._best is None or better(row["objective"], self._best["objective"], self.objective.mode):
            self._best = row

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        row = trial_row(
            trial, trial_numbers(trials).get(trial.trial_id, len(self.done) + len(self.rows)), self.params
        )
        if row is None:
            return
        self.rows.append(row)
        self._track_best(row)
        o, best = self.objective, self._best or row
        elapsed = time.perf_counter() - self._t0
        extra = f" {o.budget_metric}={row.get(o.budget_metric, float('nan')):.3f}" if o.budget_metric else ""
        self.progress(
            f"[{len(self.done) + len(self.rows):>4}/{self.total}] trial {row['trial']:>3} objective={row['objective']:+.4f} {o.metric}={row.get(o.metric, float('nan')):.4f}{extra}"
            f"{'' if row.get('feasible', 1) else ' (over budget)'} | best {best['objective']:+.4f} (trial {best['trial']})"
            f" | {len(self.rows) / max(elapsed, 1e-9) * 60:.0f} trials/min"
        )

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.progress(f"[trial {trial.trial_id}] failed: {trial.error_file or 'see the Ray logs'}")


class StepDelayCallback(Callback):
    """`faults.driver_step_delay_s`: the driver sleeps after every Tune controller step (each step handles at
    most one trial event and may save the experiment state). A resume test then sees the saved state move
    one trial at a time instead of racing a sweep whose trials finish in milliseconds."""

    def __init__(self, faults: FaultConfig) -> None:
        self.faults = faults

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self.faults.delay_step()
