"""Drift detectors: PSI by hand, KS against scipy, MMD against a direct computation, the monitor."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import ks_2samp

from monovec.drift import (
    DriftConfig,
    DriftMonitor,
    ks_bonferroni,
    ks_pvalue,
    ks_statistic,
    mmd_permutation,
    psi,
    psi_per_dimension,
    random_directions,
)


def _gauss(n: int, d: int = 16, seed: int = 0, shift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)) + shift


def test_psi_matches_hand_computation() -> None:
    expected = np.arange(1, 11)  # median edge 5.5 with 2 bins: e = (0.5, 0.5)
    actual = np.array([1] * 8 + [10] * 2)  # a = (0.8, 0.2)
    # (0.8-0.5) ln(0.8/0.5) + (0.2-0.5) ln(0.2/0.5) = 0.3 ln 4
    assert psi(expected, actual, bins=2) == pytest.approx(0.3 * math.log(4.0), rel=1e-12)
    assert psi(expected, expected, bins=2) == 0.0


def test_psi_empty_bin_uses_eps_and_is_never_negative() -> None:
    expected = np.arange(1, 11)
    actual = np.ones(10)  # everything in the lower bin: upper share floored at eps
    eps = 1e-4
    hand = (1 - 0.5) * math.log(1 / 0.5) + (eps - 0.5) * math.log(eps / 0.5)
    assert psi(expected, actual, bins=2, eps=eps) == pytest.approx(hand)
    rng = np.random.default_rng(1)
    for _ in range(20):
        assert psi(rng.standard_normal(200), rng.standard_normal(50) * 2 + 1) >= 0.0


def test_psi_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="empty"):
        psi(np.array([]), np.ones(3))
    with pytest.raises(ValueError, match="NaN"):
        psi(np.array([1.0, np.nan]), np.ones(3))


def test_random_directions_are_unit_and_seeded() -> None:
    a, b = random_directions(8, 4, seed=3), random_directions(8, 4, seed=3)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0)
    assert np.array_equal(a, b)


def test_ks_matches_scipy_including_ties() -> None:
    rng = np.random.default_rng(2)
    cases = [
        (rng.standard_normal(300), rng.standard_normal(200) + 0.2),
        (rng.integers(0, 5, 120).astype(float), rng.integers(0, 6, 90).astype(float)),
    ]
    for x, y in cases:
        ref = ks_2samp(x, y, method="asymp")
        stat = ks_statistic(x, y)
        assert stat == pytest.approx(ref.statistic, abs=1e-12)
        assert ks_pvalue(stat, x.size, y.size) == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-12)


def test_ks_bonferroni_per_projection_matches_scipy() -> None:
    ref, cur = _gauss(200, seed=0), _gauss(150, seed=1)
    res = ks_bonferroni(ref, cur, n_projections=5, alpha=0.05, seed=7)
    dirs = random_directions(16, 5, seed=7)
    for j in range(5):
        sc = ks_2samp(ref @ dirs[j], cur @ dirs[j], method="asymp")
        assert res["statistics"][j] == pytest.approx(sc.statistic)
        assert res["p_values"][j] == pytest.approx(sc.pvalue, rel=1e-9)
    assert res["threshold"] == pytest.approx(0.01)
    assert res["drift"] == (res["min_p_value"] < 0.01)


def test_mmd_observed_value_matches_direct_formula() -> None:
    x, y = _gauss(30, d=4, seed=0), _gauss(25, d=4, seed=1, shift=0.3)
    res = mmd_permutation(x, y, n_permutations=50, seed=0, max_samples=100)
    z = np.concatenate([x, y])
    d2 = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    s2 = np.median(d2[np.triu_indices(len(z), 1)])
    k = np.exp(-d2 / (2 * s2))
    kxx, kyy, kxy = k[:30, :30], k[30:, 30:], k[:30, 30:]
    direct = (
        (kxx.sum() - np.trace(kxx)) / (30 * 29) + (kyy.sum() - np.trace(kyy)) / (25 * 24) - 2 * kxy.mean()
    )
    assert res["mmd2"] == pytest.approx(direct, rel=1e-9)
    assert res["bandwidth"] == pytest.approx(math.sqrt(s2))
    assert 1 / 51 <= res["p_value"] <= 1.0
    assert res == mmd_permutation(x, y, n_permutations=50, seed=0, max_samples=100)


def test_no_drift_on_same_distribution_and_drift_on_shift() -> None:
    ref = _gauss(500, seed=1)
    same = psi_per_dimension(ref, _gauss(400, seed=2))
    assert same["max"] < 0.2 and len(same["per_projection"]) == 16
    mon = DriftMonitor(ref, DriftConfig(reservoir_size=400))
    mon.update(_gauss(400, seed=2))
    rep = mon.report()
    assert rep["ready"] and rep["n"] == 400
    assert rep["drift"] is False, rep["reasons"]
    assert not rep["psi"]["drift"] and not rep["ks"]["drift"] and not rep["mmd"]["drift"]

    shifted = DriftMonitor(ref, DriftConfig(reservoir_size=400))
    shifted.update(_gauss(400, seed=12, shift=0.5))
    rep = shifted.report()
    assert rep["drift"] is True
    assert set(rep["reasons"]) == {"psi", "ks", "mmd"}
    assert rep["psi"]["max"] > 0.2 and rep["mmd"]["p_value"] < 0.05


def test_reservoir_bounded_uniform_and_seeded() -> None:
    ref = _gauss(60, d=3)
    cfg = DriftConfig(reservoir_size=500, min_samples=10)
    stream = np.repeat(np.arange(5000, dtype=float)[:, None], 3, axis=1)  # row value = its index
    mon = DriftMonitor(ref, cfg)
    for start in range(0, 5000, 37):  # uneven batches
        mon.update(stream[start : start + 37])
    win = mon.window()
    assert win.shape == (500, 3) and mon.seen == 5000
    assert len(np.unique(win[:, 0])) == 500  # no row kept twice
    assert abs(win[:, 0].mean() - 2499.5) < 300  # uniform over the stream, not the most recent
    twin = DriftMonitor(ref, cfg)
    for start in range(0, 5000, 37):
        twin.update(stream[start : start + 37])
    assert np.array_equal(win, twin.window())
    assert mon.report() == twin.report()


def test_monitor_not_ready_below_min_samples_and_checks_dimension() -> None:
    mon = DriftMonitor(_gauss(100, d=4), DriftConfig(min_samples=50))
    mon.update(_gauss(10, d=4)[0])  # a single (d,) vector is accepted
    rep = mon.report()
    assert rep["ready"] is False and rep["drift"] is False and rep["n"] == 1
    with pytest.raises(ValueError, match="dimension"):
        mon.update(np.ones((2, 5)))
