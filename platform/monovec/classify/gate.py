"""Confidence gate: turns one head's class scores into a status the rest of the pipeline acts on.

Order of checks (seed, kept): below T_unknown -> unknown (nothing here looks like any class);
top-1 minus top-2 below margin -> ambiguous; top-1 above T_max -> confident; else low_confidence.
Multi-label: every class whose score passes `multi_label_threshold` (mixed emotions), best first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from monovec.config import StrictModel

Status = Literal["confident", "ambiguous", "low_confidence", "unknown"]
STATUSES: tuple[Status, ...] = ("confident", "ambiguous", "low_confidence", "unknown")


class GateConfig(StrictModel):
    T_max: float = Field(0.35, ge=-1.0, le=1.0, description="top-1 prototype cosine needed to be confident")
    T_unknown: float = Field(
        0.05, ge=-1.0, le=1.0, description="below this top-1 cosine the text is unknown to the head"
    )
    margin: float = Field(
        0.05, ge=0.0, le=2.0, description="minimum top-1 minus top-2 gap; smaller is ambiguous"
    )
    multi_label_threshold: float = Field(
        0.3, ge=-1.0, le=1.0, description="classes scoring above this are all reported in `labels`"
    )

    @model_validator(mode="after")
    def _ordered(self) -> GateConfig:
        if self.T_unknown > self.T_max:
            raise ValueError(f"T_unknown ({self.T_unknown}) must not exceed T_max ({self.T_max})")
        return self


@dataclass(frozen=True)
class GateResult:
    status: Status
    top: int
    score: float
    second: float
    labels: tuple[int, ...]


def gate(scores: np.ndarray, config: GateConfig) -> GateResult:
    """Gate one row of class scores."""
    order = np.argsort(-scores, kind="stable")
    top, s1 = int(order[0]), float(scores[order[0]])
    s2 = float(scores[order[1]]) if len(order) > 1 else -1.0
    if s1 < config.T_unknown:
        status: Status = "unknown"
    elif s1 - s2 < config.margin:
        status = "ambiguous"
    elif s1 >= config.T_max:
        status = "confident"
    else:
        status = "low_confidence"
    labels = tuple(int(j) for j in order if scores[j] >= config.multi_label_threshold)
    return GateResult(status, top, s1, s2, labels)
