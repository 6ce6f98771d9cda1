"""Two-proportion test, the peeking-safe boundary and the promote/rollback/continue rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from monovec.serving.stats import (
    ArmCounts,
    ExperimentDecisionConfig,
    arm_counts,
    brownian_crossing_prob,
    continuous_boundary_constant,
    decide,
    information_fraction,
    sequential_test,
    two_proportion_test,
)


def test_two_proportion_test_by_hand() -> None:
    res = two_proportion_test(80, 100, 90, 100)
    pooled = 170 / 200
    z = 0.1 / math.sqrt(pooled * (1 - pooled) * 0.02)
    assert res["z"] == pytest.approx(z)
    assert res["p_value"] == pytest.approx(2 * norm.sf(z))
    assert res["diff"] == pytest.approx(0.1) and res["relative_lift"] == pytest.approx(0.125)
    se = math.sqrt(0.8 * 0.2 / 100 + 0.9 * 0.1 / 100)
    assert res["ci95"] == pytest.approx([0.1 - norm.ppf(0.975) * se, 0.1 + norm.ppf(0.975) * se])
    flat = two_proportion_test(0, 10, 0, 10)
    assert flat["z"] == 0.0 and flat["p_value"] == 1.0 and flat["relative_lift"] is None
    with pytest.raises(ValueError, match="successes"):
        two_proportion_test(11, 10, 1, 10)
    with pytest.raises(ValueError, match="n must be"):
        two_proportion_test(0, 0, 1, 10)


def test_boundary_constant_and_information_fraction() -> None:
    c = continuous_boundary_constant(0.05)
    assert c == pytest.approx(2.2414, abs=1e-3)
    assert brownian_crossing_prob(c) == pytest.approx(0.05, abs=1e-9)
    # reflection principle: P(sup|B| >= c) ~ 4 (1 - Phi(c)) for large c
    assert brownian_crossing_prob(3.0) == pytest.approx(4 * norm.sf(3.0), rel=1e-3)
    assert information_fraction(500, 500, 1000) == pytest.approx(0.5)
    assert information_fraction(5000, 5000, 1000) == 1.0
    assert information_fraction(900, 100, 1000) < information_fraction(500, 500, 1000)
    early, late = sequential_test(50, 100, 60, 100, 1000), sequential_test(500, 1000, 600, 1000, 1000)
    assert early["boundary"] > late["boundary"] == pytest.approx(c)
    assert late["final"] and not early["final"] and early["alpha_spent"] < 0.001


def test_clear_improvement_promotes() -> None:
    d = decide(ArmCounts(1600, 2000), ArmCounts(1800, 2000))
    assert d.action == "promote_to_production", d.reason
    assert d.statistics["significant"] and d.statistics["relative_lift"] > 0.05
    assert d.to_dict()["action"] == "promote_to_production"
    midway = decide(ArmCounts(800, 1000), ArmCounts(900, 1000))  # t = 0.5 of the default plan
    assert midway.action == "promote_to_production", midway.reason


def test_clear_degradation_rolls_back() -> None:
    d = decide(ArmCounts(1800, 2000), ArmCounts(1500, 2000))
    assert d.action == "rollback" and "degradation" in d.reason


def test_below_min_samples_continues() -> None:
    d = decide(ArmCounts(199, 199), ArmCounts(0, 199))
    assert d.action == "continue_experiment" and "insufficient samples" in d.reason


def test_significant_but_small_lift_continues() -> None:
    cfg = ExperimentDecisionConfig(max_samples_per_arm=100_000)
    d = decide(ArmCounts(90_000, 100_000), ArmCounts(91_000, 100_000), cfg)  # +1.1%, z ~ 7.6
    assert d.statistics["significant"] and d.action == "continue_experiment" and "within" in d.reason


def test_early_peek_needs_more_evidence_than_fixed_test() -> None:
    cfg = ExperimentDecisionConfig(max_samples_per_arm=10_000)
    d = decide(ArmCounts(170, 200), ArmCounts(184, 200), cfg)  # fixed-horizon p ~ 0.02
    assert d.statistics["p_value"] < 0.05
    assert d.action == "continue_experiment" and not d.statistics["significant"]


def test_config_validation_and_arm_counts() -> None:
    with pytest.raises(ValueError, match="max_samples_per_arm"):
        ExperimentDecisionConfig(min_samples_per_arm=500, max_samples_per_arm=100)
    with pytest.raises(ValueError):
        ExperimentDecisionConfig(primary_metric="ctr")
    stats = {"accuracy_correct": 7, "accuracy_n": 10, "satisfied": 3, "satisfaction_n": 4}
    assert arm_counts(stats, "accuracy") == ArmCounts(7, 10)
    assert arm_counts(stats, "satisfaction") == ArmCounts(3, 4)
    with pytest.raises(ValueError):
        ArmCounts(5, 4)


def test_peeking_every_50_keeps_false_positives_under_alpha() -> None:
    """A/A simulation: 300 experiments, a look every 50 samples per arm up to 1000."""
    rng = np.random.default_rng(2024)
    n_exp, n_max, p = 300, 1000, 0.85
    a = np.cumsum(rng.random((n_exp, n_max)) < p, axis=1)
    b = np.cumsum(rng.random((n_exp, n_max)) < p, axis=1)
    sequential = naive = 0
    for e in range(n_exp):
        seq_hit = naive_hit = False
        for n in range(50, n_max + 1, 50):
            res = sequential_test(int(a[e, n - 1]), n, int(b[e, n - 1]), n, n_max, alpha=0.05)
            seq_hit |= res["significant"]
            naive_hit |= res["p_value"] < 0.05
        sequential += seq_hit
        naive += naive_hit
    seq_rate, naive_rate = sequential / n_exp, naive / n_exp
    assert seq_rate <= 0.07, seq_rate  # alpha plus Monte-Carlo slack (sd ~ 0.013)
    assert naive_rate > 0.12, naive_rate  # repeated fixed-alpha testing inflates it
    assert naive_rate > seq_rate
