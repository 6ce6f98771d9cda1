"""Guardrails: each limit breaches on its own side, and never on too little data."""

from __future__ import annotations

import pytest

from monovec.serving.guardrails import GuardrailConfig, check_guardrails, guardrail_states, guardrail_summary

HEALTHY = {
    "n": 500,
    "latency_p95_ms": 120.0,
    "accuracy": 0.9,
    "escalation_rate": 0.05,
    "error_rate": 0.0,
    "feedback_n": 150,
}


def _state(stats: dict, name: str, cfg: GuardrailConfig | None = None) -> str:
    return {s.name: s for s in guardrail_states(stats, cfg)}[name].state


def test_healthy_arm_is_all_ok() -> None:
    states = guardrail_states(HEALTHY)
    assert [s.name for s in states] == ["latency_p95_ms", "accuracy", "escalation_rate", "error_rate"]
    assert {s.state for s in states} == {"ok"}
    assert check_guardrails(HEALTHY) == []


@pytest.mark.parametrize(
    "name, bad, at_limit",
    [
        ("latency_p95_ms", 250.0, 200.0),
        ("accuracy", 0.80, 0.85),
        ("escalation_rate", 0.40, 0.15),
        ("error_rate", 0.05, 0.02),
    ],
)
def test_each_guardrail_breaches_alone(name: str, bad: float, at_limit: float) -> None:
    breaches = check_guardrails({**HEALTHY, name: bad})
    assert [b.name for b in breaches] == [name]
    assert breaches[0].breached and breaches[0].value == bad and name in breaches[0].message
    assert _state({**HEALTHY, name: at_limit}, name) == "ok"  # the limit itself is allowed


def test_too_few_samples_is_insufficient_not_breached() -> None:
    few = {**HEALTHY, "n": 99, "latency_p95_ms": 999.0, "escalation_rate": 0.9, "error_rate": 0.5}
    assert check_guardrails(few) == []
    assert {s.state for s in guardrail_states(few) if s.name != "accuracy"} == {"insufficient_data"}
    # accuracy counts feedback events, not requests
    assert _state({**HEALTHY, "accuracy": 0.1, "feedback_n": 99}, "accuracy") == "insufficient_data"
    assert _state({**HEALTHY, "accuracy": None, "feedback_n": 0}, "accuracy") == "insufficient_data"
    assert _state({"n": 1000}, "latency_p95_ms") == "insufficient_data"  # missing key = no data


def test_config_thresholds_and_summary() -> None:
    cfg = GuardrailConfig(max_latency_p95_ms=100, min_samples=10)
    assert _state(HEALTHY, "latency_p95_ms", cfg) == "breached"
    summary = guardrail_summary(HEALTHY, cfg)
    assert summary["breached"] is True
    assert summary["states"]["latency_p95_ms"]["threshold"] == 100
    with pytest.raises(ValueError):
        GuardrailConfig(min_accuracy=1.5)
    with pytest.raises(ValueError):
        GuardrailConfig(typo=1)
