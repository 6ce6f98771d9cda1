"""Prototypes (trimmed centroid, multi-prototypes), the confidence gate and the linear head."""

from __future__ import annotations

import numpy as np
import pytest

from monovec.classify.gate import GateConfig, gate
from monovec.classify.linear import LinearHead, LinearHeadConfig, calibrate_bias
from monovec.classify.prototypes import PrototypeConfig, PrototypeSet, spherical_kmeans, trimmed_centroid
from monovec.embed.text import l2_normalise


def _blob(rng: np.random.Generator, centre: np.ndarray, n: int, noise: float) -> np.ndarray:
    return l2_normalise(centre + noise * rng.standard_normal((n, len(centre))))


def test_trimmed_centroid_ignores_outliers() -> None:
    rng = np.random.default_rng(0)
    d = 32
    true = l2_normalise(rng.standard_normal(d))
    inliers = _blob(rng, true, 90, 0.3)
    outliers = _blob(rng, -true, 10, 0.1)  # 10% mislabelled, pointing the other way
    x = np.concatenate([inliers, outliers])
    plain = l2_normalise(x.mean(0))
    trimmed = trimmed_centroid(x, 0.15)
    assert trimmed @ true > plain @ true
    assert trimmed @ true > 0.95
    with pytest.raises(ValueError, match="zero examples"):
        trimmed_centroid(np.zeros((0, d)), 0.1)


def test_diverse_class_gets_several_prototypes() -> None:
    rng = np.random.default_rng(1)
    d = 16
    a1, a2, b = (l2_normalise(rng.standard_normal(d)) for _ in range(3))
    x = np.concatenate([_blob(rng, a1, 60, 0.2), _blob(rng, a2, 60, 0.2), _blob(rng, b, 60, 0.2)])
    y = np.array([0] * 120 + [1] * 60)
    cfg = PrototypeConfig(multi_k=2, diversity_threshold=0.3, min_cluster_size=10, center=False)
    protos = PrototypeSet.fit(x, y, ["a", "b"], cfg)
    assert protos.counts() == {"a": 2, "b": 1}
    s = protos.scores(np.stack([a1, a2, b]))
    assert list(s.argmax(1)) == [0, 0, 1]
    # the nearest prototype of the right mode scores far higher than the single-centroid mean would
    single = PrototypeSet.fit(x, y, ["a", "b"], cfg.model_copy(update={"multi_k": 1}))
    assert s[0, 0] > single.scores(a1[None])[0, 0] + 0.1


def test_spherical_kmeans_is_deterministic() -> None:
    x = l2_normalise(np.random.default_rng(2).standard_normal((100, 8)))
    c1, a1 = spherical_kmeans(x, 3, seed=5)
    c2, a2 = spherical_kmeans(x, 3, seed=5)
    assert np.array_equal(a1, a2) and np.allclose(c1, c2)


def test_prototype_state_roundtrip() -> None:
    rng = np.random.default_rng(3)
    x = l2_normalise(rng.standard_normal((60, 8)))
    y = np.arange(60) % 3
    p = PrototypeSet.fit(x, y, ["a", "b", "c"], PrototypeConfig())
    q = PrototypeSet.from_state(["a", "b", "c"], p.state())
    assert np.allclose(p.scores(x), q.scores(x))


@pytest.mark.parametrize(
    ("scores", "status"),
    [
        ([0.9, 0.2, 0.1], "confident"),
        ([0.9, 0.88, 0.1], "ambiguous"),
        ([0.5, 0.2, 0.1], "low_confidence"),
        ([0.1, 0.05, 0.0], "unknown"),
    ],
)
def test_gate_statuses(scores: list[float], status: str) -> None:
    cfg = GateConfig(T_max=0.65, T_unknown=0.35, margin=0.12, multi_label_threshold=0.8)
    assert gate(np.array(scores), cfg).status == status


def test_gate_multi_label_mixed_emotions() -> None:
    cfg = GateConfig(T_max=0.6, T_unknown=0.2, margin=0.05, multi_label_threshold=0.5)
    r = gate(np.array([0.55, 0.7, 0.1, 0.52]), cfg)
    assert r.top == 1 and r.labels == (1, 0, 3)
    assert gate(np.array([0.3, 0.1]), cfg).labels == ()


def test_gate_config_rejects_inverted_thresholds() -> None:
    with pytest.raises(ValueError, match="T_unknown"):
        GateConfig(T_max=0.2, T_unknown=0.4)


def test_linear_head_learns_and_roundtrips() -> None:
    rng = np.random.default_rng(4)
    centres = l2_normalise(rng.standard_normal((3, 16)))
    y = rng.integers(0, 3, 600)
    x = l2_normalise(centres[y] + 0.4 * rng.standard_normal((600, 16)))
    head = LinearHead.fit(x, y, ["a", "b", "c"], LinearHeadConfig())
    acc = float((head.proba(x).argmax(1) == y).mean())
    assert acc > 0.9
    again = LinearHead.from_state(["a", "b", "c"], head.state())
    assert np.allclose(again.proba(x), head.proba(x))
    assert np.allclose(head.proba(x).sum(1), 1.0, atol=1e-5)


def test_bias_calibration_lifts_a_rare_class() -> None:
    rng = np.random.default_rng(5)
    n = 2000
    y = (rng.random(n) < 0.05).astype(int)  # 5% positives
    logits = np.stack([np.zeros(n), rng.normal(-3.0 + 2.0 * y, 0.7)], axis=1)  # rare class is under-predicted
    bias = calibrate_bias(logits, y, 2)
    from monovec.metrics import macro_f1

    before = macro_f1([str(v) for v in y], [str(v) for v in logits.argmax(1)], ["0", "1"])
    after = macro_f1([str(v) for v in y], [str(v) for v in (logits + bias).argmax(1)], ["0", "1"])
    assert after > before + 0.05


def test_linear_head_needs_two_classes() -> None:
    with pytest.raises(ValueError, match="at least two classes"):
        LinearHead.fit(np.ones((10, 4)), np.zeros(10, dtype=int), ["a", "b"], LinearHeadConfig())
