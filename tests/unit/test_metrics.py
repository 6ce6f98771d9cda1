"""Unit tests for monovec.metrics and monovec.plots: definitions pinned to sklearn and hand cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from monovec import metrics as M
from monovec import plots

LABELS = ["joy", "anger", "sad", "fear", "rare"]


def _random_case(seed: int, n: int = 200) -> tuple[list[str], list[str]]:
    """Random truth/predictions: 'rare' is never true, 'fear' never predicted, some 'unknown' preds."""
    rng = np.random.default_rng(seed)
    y_true = list(rng.choice(["joy", "anger", "sad", "fear"], size=n))
    y_pred = list(rng.choice(["joy", "anger", "sad", "rare", "unknown"], size=n))
    # Make the predictions somewhat informative so F1 is not trivially tiny.
    for i in range(0, n, 3):
        y_pred[i] = y_true[i]
    return y_true, y_pred


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_macro_f1_matches_sklearn(seed: int) -> None:
    y_true, y_pred = _random_case(seed)
    expected = skm.f1_score(y_true, y_pred, labels=LABELS, average="macro", zero_division=np.nan)
    assert M.macro_f1(y_true, y_pred, LABELS) == pytest.approx(expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_macro_f1_on_codes_equals_macro_f1_on_labels(seed: int) -> None:
    """Exactly the same number (not approximately): calibrate_bias compares candidate scores with it."""
    y_true, y_pred = _random_case(seed)
    code = {label: i for i, label in enumerate(LABELS)}
    t = np.array([code.get(v, -1) for v in y_true])
    p = np.array([code.get(v, -1) for v in y_pred])
    assert M.macro_f1_codes(t, p, len(LABELS)) == M.macro_f1(y_true, y_pred, LABELS)


def test_macro_f1_excludes_classes_absent_from_truth_and_predictions() -> None:
    y_true = ["a", "a", "b"]
    y_pred = ["a", "b", "b"]
    # "c" has no support and no predictions: the mean is over a and b only.
    f1_a, f1_b = 2 / 3, 2 / 3
    assert M.macro_f1(y_true, y_pred, ["a", "b", "c"]) == pytest.approx((f1_a + f1_b) / 2)
    # A never-true but predicted class counts as 0.
    assert M.macro_f1(["a", "a"], ["a", "c"], ["a", "c"]) == pytest.approx((2 / 3 + 0.0) / 2)
    assert M.macro_f1([], [], ["a"]) == 0.0


def test_classification_report_matches_sklearn() -> None:
    y_true, y_pred = _random_case(3)
    report = M.classification_report(y_true, y_pred, LABELS)
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=LABELS, zero_division=0)
    for i, label in enumerate(LABELS):
        row = report["per_class"][label]
        assert row["precision"] == pytest.approx(p[i])
        assert row["recall"] == pytest.approx(r[i])
        assert row["f1"] == pytest.approx(f[i])
        assert row["support"] == s[i]
    assert report["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert report["macro_f1"] == pytest.approx(M.macro_f1(y_true, y_pred, LABELS))
    assert report["n"] == len(y_true)
    json.dumps(report, allow_nan=False)  # JSON-safe: no NaN anywhere


def test_confusion_matrix_has_other_column() -> None:
    labels = ["a", "b", "c"]
    y_true = ["a", "a", "b", "c", "c", "zzz"]
    y_pred = ["a", "unknown", "a", "c", "b", "a"]
    cm = M.confusion_matrix(y_true, y_pred, labels)
    assert cm.shape == (3, 4)
    assert M.confusion_matrix_columns(labels) == ["a", "b", "c", M.OTHER]
    expected = np.array([[1, 0, 0, 1], [1, 0, 0, 0], [0, 1, 1, 0]])
    np.testing.assert_array_equal(cm, expected)
    # The labelled block agrees with sklearn's matrix on the items whose true label is listed.
    keep = [i for i, t in enumerate(y_true) if t in labels]
    sk = skm.confusion_matrix([y_true[i] for i in keep], [y_pred[i] for i in keep], labels=labels)
    np.testing.assert_array_equal(cm[:, :3], sk)


def test_binary_f1_hand_case() -> None:
    y_true = [True, True, True, False, False, False]
    y_pred = [True, True, False, True, False, False]
    out = M.binary_f1(y_true, y_pred)
    assert out == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support_pos": 3, "n": 6})
    never = M.binary_f1([True, False], [False, False])
    assert never["precision"] == 0.0 and never["f1"] == 0.0


def test_risk_coverage_hand_case() -> None:
    conf = np.array([0.6, 0.9, 0.7, 0.8])
    correct = np.array([1, 1, 1, 0])
    out = M.risk_coverage(conf, correct)
    # Ranked by confidence: correct = 1, 0, 1, 1 -> risks 0, 1/2, 1/3, 1/4.
    assert out["risk"] == pytest.approx([0.0, 0.5, 1 / 3, 0.25])
    assert out["coverage"] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    aurc = (0.0 + 0.5 + 1 / 3 + 0.25) / 4
    oracle = (0.0 + 0.0 + 0.0 + 0.25) / 4
    assert out["aurc"] == pytest.approx(aurc)
    assert out["e_aurc"] == pytest.approx(aurc - oracle)
    assert out["n"] == 4


def test_risk_coverage_perfect_and_random_rankings() -> None:
    rng = np.random.default_rng(0)
    n = 5000
    correct = rng.random(n) < 0.5
    perfect = M.risk_coverage(correct.astype(float) + rng.random(n) * 0.1, correct)
    assert perfect["e_aurc"] == pytest.approx(0.0, abs=1e-12)
    random_rank = M.risk_coverage(rng.random(n), correct)
    assert random_rank["aurc"] == pytest.approx(0.5, abs=0.03)
    # Curve downsampled for JSON, ends kept; the area still uses all n points.
    assert len(random_rank["coverage"]) == len(random_rank["risk"]) <= M.MAX_CURVE_POINTS
    assert random_rank["coverage"][0] == pytest.approx(1 / n) and random_rank["coverage"][-1] == 1.0
    json.dumps(random_rank, allow_nan=False)
    with pytest.raises(ValueError):
        M.risk_coverage(np.array([]), np.array([]))


def test_latency_summary_percentiles() -> None:
    lat = list(range(1, 101))  # 1..100 ms
    out = M.latency_summary(lat)
    assert out["n"] == 100
    assert out["mean"] == pytest.approx(50.5)
    assert out["p50"] == pytest.approx(50.5)
    assert out["p95"] == pytest.approx(95.05)
    assert out["p99"] == pytest.approx(99.01)
    assert out["max"] == 100.0
    assert M.latency_summary([]) == {"n": 0, "mean": 0.0, "p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}


def test_selective_metrics_only_counts_decided() -> None:
    y_true = ["a", "b", "a", "b"]
    y_pred = ["a", "b", "b", "unknown"]
    decided = np.array([True, True, False, False])
    out = M.selective_metrics(y_true, y_pred, decided, ["a", "b"])
    assert out == {"coverage": 0.5, "macro_f1": 1.0, "accuracy": 1.0, "n_decided": 2}
    none = M.selective_metrics(y_true, y_pred, np.zeros(4, dtype=bool), ["a", "b"])
    assert none == {"coverage": 0.0, "macro_f1": 0.0, "accuracy": 0.0, "n_decided": 0}


def _assert_png(path) -> None:
    assert path.exists() and path.stat().st_size > 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_write_png(tmp_path) -> None:
    labels = ["a", "b", "c"]
    cm = M.confusion_matrix(["a", "b", "c", "c"], ["a", "c", "c", "unknown"], labels)
    _assert_png(
        plots.plot_confusion_matrix(
            cm, labels, M.confusion_matrix_columns(labels), tmp_path / "sub" / "cm.png", "cm"
        )
    )
    rng = np.random.default_rng(1)
    curves = {"max_prob": M.risk_coverage(rng.random(50), rng.random(50) < 0.7)}
    _assert_png(plots.plot_risk_coverage(curves, tmp_path / "rc.png", title="rc"))
    _assert_png(
        plots.plot_lines({"train": ([0, 1, 2], [1.0, 0.5, 0.2])}, tmp_path / "loss.png", "epoch", "loss")
    )
    with pytest.raises(ValueError):
        plots.plot_confusion_matrix(cm, labels, labels, tmp_path / "bad.png")
