"""Driver-side Tune callback: collects one row per finished trial and prints a progress line.

Rows are collected on the driver (not read back from trial directories) so MLflow logging, the
results table and the plots need no per-trial files, and trial numbers follow creation order (the
baseline, enqueued first, is trial 0).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ray.tune import Callback
from ray.tune.result import AUTO_RESULT_KEYS

from monovec.tuning.objective import ObjectiveConfig, better

_SKIP = set(AUTO_RESULT_KEYS) | {"done", "trial_id", "experiment_tag", "should_checkpoint"}


class ProgressCallback(Callback):
    def __init__(self, params: list[str], objective: ObjectiveConfig, total: int, progress: Callable[[str], None] = print) -> None:
        self.params = params
        self.objective = objective
        self.total = total
        self.progress = progress
        self.rows: list[dict[str, Any]] = []
        self._best: dict[str, Any] | None = None
        self._t0 = time.perf_counter()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        if "objective" not in result:
            return
        order = next((i for i, t in enumerate(trials) if t is trial), len(self.rows))  # `trials` is in creation order
        row: dict[str, Any] = {"trial": order, "trial_id": trial.trial_id}
        row.update({k: trial.config.get(k) for k in self.params})
        row.update({k: float(v) for k, v in result.items() if k not in _SKIP and isinstance(v, int | float) and not isinstance(v, bool)})
        row["trial_seconds"] = float(result.get("time_total_s", 0.0))
        self.rows.append(row)
        if self._best is None or better(row["objective"], self._best["objective"], self.objective.mode):
            self._best = row
        o = self.objective
        elapsed = time.perf_counter() - self._t0
        extra = f" {o.budget_metric}={row.get(o.budget_metric, float('nan')):.3f}" if o.budget_metric else ""
        self.progress(
            f"[{len(self.rows):>4}/{self.total}] trial {row['trial']:>3} objective={row['objective']:+.4f} {o.metric}={row.get(o.metric, float('nan')):.4f}{extra}"
            f"{'' if row.get('feasible', 1) else ' (over budget)'} | best {self._best['objective']:+.4f} (trial {self._best['trial']})"
            f" | {len(self.rows) / max(elapsed, 1e-9) * 60:.0f} trials/min"
        )

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.progress(f"[trial {trial.trial_id}] failed: {trial.error_file or 'see the Ray logs'}")
