"""Guardrails: hard limits an arm must respect whatever the experiment's primary metric says.

A breached guardrail on the treatment triggers an automatic rollback, so a guardrail must never
fire on noise: each one needs ``min_samples`` observations first (requests for latency,
escalation and errors; feedback events for accuracy) and reports ``insufficient_data`` until
then instead of ``ok`` or ``breached``. Defaults are the seed's (p95 200 ms, accuracy 0.85,
escalation 15%) plus an error-rate limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import Field

from monovec.config import StrictModel

GuardrailStatus = Literal["ok", "breached", "insufficient_data"]


class GuardrailConfig(StrictModel):
    """Limits per arm; a value exactly at a limit is still ok."""

    max_latency_p95_ms: float = Field(default=200.0, gt=0, description="Upper bound on p95 latency (ms).")
    min_accuracy: float = Field(default=0.85, ge=0, le=1, description="Lower bound on feedback accuracy.")
    max_escalation_rate: float = Field(
        default=0.15,
        ge=0,
        le=1,
        description="Upper bound on the share of requests escalated to the LLM stage.",
    )
    max_error_rate: float = Field(
        default=0.02, ge=0, le=1, description="Upper bound on the share of failed requests."
    )
    min_samples: int = Field(
        default=100, ge=1, description="Observations a guardrail needs before it can be breached."
    )


@dataclass(frozen=True)
class GuardrailState:
    """One guardrail's verdict: its value, the limit, which side is bad and how many samples it saw."""

    name: str
    state: GuardrailStatus
    value: float | None
    threshold: float
    direction: Literal["max", "min"]
    samples: int
    message: str

    @property
    def breached(self) -> bool:
        return self.state == "breached"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Breach = GuardrailState
"""A :class:`GuardrailState` whose ``state`` is ``"breached"`` (what :func:`check_guardrails` returns)."""

# (name, stats key of the value, stats key of the sample count, config field, direction)
_GUARDRAILS: tuple[tuple[str, str, str, str, Literal["max", "min"]], ...] = (
    ("latency_p95_ms", "latency_p95_ms", "n", "max_latency_p95_ms", "max"),
    ("accuracy", "accuracy", "feedback_n", "min_accuracy", "min"),
    ("escalation_rate", "escalation_rate", "n", "max_escalation_rate", "max"),
    ("error_rate", "error_rate", "n", "max_error_rate", "max"),
)


def _evaluate(
    name: str, value: Any, samples: int, threshold: float, direction: Literal["max", "min"], min_samples: int
) -> GuardrailState:
    if value is None or samples < min_samples:
        msg = f"{name}: {samples} samples (< {min_samples}) or no value yet"
        return GuardrailState(name, "insufficient_data", value, threshold, direction, samples, msg)
    value = float(value)
    bad = value > threshold if direction == "max" else value < threshold
    sign = (">" if bad else "<=") if direction == "max" else ("<" if bad else ">=")
    msg = f"{name} {value:.4g} {sign} {direction} {threshold:.4g} over {samples} samples"
    return GuardrailState(name, "breached" if bad else "ok", value, threshold, direction, samples, msg)


def guardrail_states(
    arm_stats: Mapping[str, Any], cfg: GuardrailConfig | None = None
) -> list[GuardrailState]:
    """Every guardrail's state for one arm, in a fixed order (latency, accuracy, escalation, errors).

    ``arm_stats`` holds ``n``, ``latency_p95_ms``, ``accuracy`` (None without feedback),
    ``escalation_rate``, ``error_rate`` and ``feedback_n`` -- the keys of
    ``ExperimentStore.arm_stats``. A missing key counts as no data.
    """
    cfg = cfg or GuardrailConfig()
    out = []
    for name, value_key, n_key, cfg_field, direction in _GUARDRAILS:
        samples = int(arm_stats.get(n_key) or 0)
        out.append(
            _evaluate(
                name, arm_stats.get(value_key), samples, getattr(cfg, cfg_field), direction, cfg.min_samples
            )
        )
    return out


def check_guardrails(arm_stats: Mapping[str, Any], cfg: GuardrailConfig | None = None) -> list[Breach]:
    """Only the breached guardrails (empty list = safe to keep serving); see :func:`guardrail_states`."""
    return [s for s in guardrail_states(arm_stats, cfg) if s.breached]


def guardrail_summary(arm_stats: Mapping[str, Any], cfg: GuardrailConfig | None = None) -> dict[str, Any]:
    """JSON-ready ``{"breached": bool, "states": {name: state dict}}`` for ``GET /v1/experiment``."""
    states = guardrail_states(arm_stats, cfg)
    return {"breached": any(s.breached for s in states), "states": {s.name: s.to_dict() for s in states}}
