"""Turning one trial's metrics into the number a search algorithm optimises (pure, no Ray).

Default: maximise macro-F1 on the items the pipeline decides itself (not escalated) subject to an
escalation-rate budget. A trial over budget is *infeasible*: its objective is the metric minus
`infeasible_penalty` minus the excess, so every feasible trial beats every infeasible one while the
search still sees which infeasible trials are closer. `pareto` switches Optuna to multi-objective
(e.g. F1 up, escalation down); the scalar objective is still computed and picks best.yaml.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import Field, field_validator, model_validator

from monovec.config import StrictModel


class ObjectiveConfig(StrictModel):
    metric: str = Field(
        "decided_macro_f1", description="trial metric optimised (see docs/tuning.md for the list)"
    )
    mode: Literal["max", "min"] = "max"
    budget_metric: str | None = Field(
        "escalation_rate", description="metric that must stay at or below `budget` (None: no constraint)"
    )
    budget: float | None = Field(
        0.15, description="upper limit for budget_metric; trials above it are infeasible"
    )
    infeasible_penalty: float = Field(
        1.0, ge=0, description="subtracted (added for mode=min) from infeasible trials, plus the excess"
    )
    pareto: list[str] | None = Field(
        None, description="multi-objective: ['metric:max', 'metric:min', ...] for OptunaSearch"
    )

    @field_validator("pareto")
    @classmethod
    def _pairs(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if len(value) < 2:
            raise ValueError("pareto needs at least two 'metric:mode' entries")
        for item in value:
            name, _, mode = item.partition(":")
            if not name or mode not in ("max", "min"):
                raise ValueError(f"pareto entry {item!r} must look like 'metric:max' or 'metric:min'")
        return value

    @model_validator(mode="after")
    def _budget(self) -> ObjectiveConfig:
        if (self.budget_metric is None) != (self.budget is None):
            raise ValueError("set budget_metric and budget together (or both to null)")
        return self

    def pareto_pairs(self) -> list[tuple[str, str]]:
        """(metric, mode) pairs of the Pareto view: `pareto`, else the metric against the budget metric."""
        if self.pareto:
            return [(p.split(":")[0], p.split(":")[1]) for p in self.pareto]
        if self.budget_metric:
            return [(self.metric, self.mode), (self.budget_metric, "min")]
        return [(self.metric, self.mode)]


def score(metrics: Mapping[str, float], cfg: ObjectiveConfig) -> dict[str, float]:
    """`objective`, `feasible` (1/0) and `budget_excess` for one trial's metrics."""
    sign = 1.0 if cfg.mode == "max" else -1.0
    if not metrics.get("valid", 1.0):  # the overrides failed the config's own validation
        return {"objective": -sign * (cfg.infeasible_penalty + 2.0), "feasible": 0.0, "budget_excess": 1.0}
    if cfg.metric not in metrics:
        raise KeyError(f"objective metric {cfg.metric!r} is not reported; reported: {sorted(metrics)}")
    value = float(metrics[cfg.metric])
    excess = 0.0
    if cfg.budget_metric is not None and cfg.budget is not None:
        if cfg.budget_metric not in metrics:
            raise KeyError(
                f"budget metric {cfg.budget_metric!r} is not reported; reported: {sorted(metrics)}"
            )
        excess = max(0.0, float(metrics[cfg.budget_metric]) - cfg.budget)
    feasible = excess <= 0.0
    objective = value if feasible else value - sign * (cfg.infeasible_penalty + excess)
    return {"objective": objective, "feasible": float(feasible), "budget_excess": excess}


def better(a: float, b: float, mode: str) -> bool:
    return a > b if mode == "max" else a < b


def best_index(objectives: Sequence[float], mode: str) -> int:
    """First trial with the best objective (ties go to the earlier trial, i.e. the baseline)."""
    best = 0
    for i, v in enumerate(objectives):
        if not math.isnan(v) and (math.isnan(objectives[best]) or better(v, objectives[best], mode)):
            best = i
    return best


def pareto_front(rows: Sequence[Mapping[str, float]], pairs: Sequence[tuple[str, str]]) -> list[int]:
    """Indices of the non-dominated rows (no other row at least as good everywhere, better somewhere)."""

    def key(row: Mapping[str, float]) -> list[float]:
        return [float(row[m]) if mode == "max" else -float(row[m]) for m, mode in pairs]

    pts = [key(r) for r in rows]
    front = []
    for i, p in enumerate(pts):
        dominated = any(
            all(q[j] >= p[j] for j in range(len(p))) and any(q[j] > p[j] for j in range(len(p))) for q in pts
        )
        duplicate = any(pts[k] == p for k in front)
        if not dominated and not duplicate:
            front.append(i)
    return sorted(front, key=lambda i: pts[i])
