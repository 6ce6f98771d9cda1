"""Evaluation metrics shared by every model family, in plain numpy.

Why our own and not sklearn's: every number here ends up in MLflow, in a Tune objective or in
the ``/v1/experiment`` answer, so each must be JSON-safe (no NaN), deterministic, and have one
documented rule for the awkward cases -- classes nobody predicted, predictions outside the label
set (the classifier's ``"unknown"``), empty inputs. The tests pin the definitions to sklearn's
where both are defined.

Conventions:

* A class listed in ``labels`` with no support *and* no predictions is excluded from the macro
  mean (sklearn's ``zero_division=np.nan``); a class with support that is never predicted, or
  predicted but never true, counts with F1 = 0.
* A prediction outside ``labels`` is always wrong: a false negative for the true class and a false
  positive for no listed class.
* Ratios with a zero denominator are 0.0, never NaN, so results serialise as JSON.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

OTHER = "other"
"""Name of the extra confusion-matrix column that collects predictions outside ``labels``."""

MAX_CURVE_POINTS = 101
"""Risk-coverage curves are downsampled to at most this many points before they are returned."""


def _safe_div(num: np.ndarray | float, den: np.ndarray | float) -> np.ndarray:
    """Elementwise num/den with 0 where den == 0, so no metric is ever NaN."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    out = np.zeros(np.broadcast(num, den).shape, dtype=float)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _label_index(labels: Sequence[Hashable]) -> dict[Hashable, int]:
    """Map each label to its column; duplicates would silently merge classes, so reject them."""
    index = {label: i for i, label in enumerate(labels)}
    if len(index) != len(labels):
        raise ValueError(f"labels contain duplicates: {list(labels)}")
    return index


def _encode(
    y_true: Sequence[Hashable], y_pred: Sequence[Hashable], labels: Sequence[Hashable]
) -> tuple[np.ndarray, np.ndarray]:
    """Turn both label sequences into integer codes; anything outside ``labels`` becomes -1."""
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} items but y_pred has {len(y_pred)}")
    index = _label_index(labels)
    true_idx = np.fromiter((index.get(t, -1) for t in y_true), dtype=np.int64, count=len(y_true))
    pred_idx = np.fromiter((index.get(p, -1) for p in y_pred), dtype=np.int64, count=len(y_pred))
    return true_idx, pred_idx


def _per_class_counts(
    true_idx: np.ndarray, pred_idx: np.ndarray, n_labels: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True positives, predicted count and support per class (codes of -1 are never counted)."""
    hit = (true_idx == pred_idx) & (true_idx >= 0)
    tp = np.bincount(true_idx[hit], minlength=n_labels)
    n_pred = np.bincount(pred_idx[pred_idx >= 0], minlength=n_labels)
    support = np.bincount(true_idx[true_idx >= 0], minlength=n_labels)
    return tp, n_pred, support


def _macro_from_counts(tp: np.ndarray, n_pred: np.ndarray, support: np.ndarray) -> float:
    """Mean F1 over classes that were true or predicted at least once (0.0 when there are none)."""
    f1 = _safe_div(2 * tp, n_pred + support)
    active = (n_pred + support) > 0
    return float(f1[active].mean()) if active.any() else 0.0


def macro_f1(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> float:
    """Unweighted mean of per-class F1 over ``labels``.

    Macro rather than micro because the classifier's classes are imbalanced and a rare class
    (e.g. hate speech) matters as much as a common one. Classes with neither support nor
    predictions are left out of the mean instead of counting as 0, so evaluating on a slice
    that lacks a class does not punish the model; this equals sklearn's
    ``f1_score(..., average="macro", labels=labels, zero_division=np.nan)``.
    """
    true_idx, pred_idx = _encode(y_true, y_pred, labels)
    return _macro_from_counts(*_per_class_counts(true_idx, pred_idx, len(labels)))


def macro_f1_codes(true_idx: np.ndarray, pred_idx: np.ndarray, n_labels: int) -> float:
    """`macro_f1` on integer class codes in [0, n_labels) (-1: outside the labels), (n,) each.

    The same number as `macro_f1` on the labels the codes stand for, without turning every
    prediction into a string first: for loops that score thousands of candidate predictions
    (`monovec.classify.linear.calibrate_bias`)."""
    return _macro_from_counts(*_per_class_counts(np.asarray(true_idx), np.asarray(pred_idx), n_labels))


def classification_report(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict:
    """Accuracy, macro F1 and per-class precision/recall/F1/support as one JSON-ready dict.

    Returns ``{"accuracy", "macro_f1", "per_class": {label: {"precision", "recall", "f1",
    "support"}}, "n"}``. Accuracy is over all ``n`` items, so predictions outside ``labels``
    lower it. Per-class ratios with a zero denominator are 0.0 (see the module docstring);
    ``macro_f1`` still excludes classes with no support and no predictions.
    """
    true_idx, pred_idx = _encode(y_true, y_pred, labels)
    tp, n_pred, support = _per_class_counts(true_idx, pred_idx, len(labels))
    precision = _safe_div(tp, n_pred)
    recall = _safe_div(tp, support)
    f1 = _safe_div(2 * tp, n_pred + support)
    n = len(y_true)
    correct = sum(1 for t, p in zip(y_true, y_pred, strict=True) if t == p)
    return {
        "accuracy": float(_safe_div(correct, n)),
        "macro_f1": _macro_from_counts(tp, n_pred, support),
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "n": n,
    }


def confusion_matrix(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Counts with rows = true label and columns = predicted label, plus a last ``OTHER`` column.

    The extra column keeps abstentions and out-of-vocabulary predictions (``"unknown"``)
    visible instead of dropping them, so the shape is ``(len(labels), len(labels) + 1)``.
    Items whose *true* label is not in ``labels`` have no row and are not counted.
    """
    true_idx, pred_idx = _encode(y_true, y_pred, labels)
    n_labels = len(labels)
    keep = true_idx >= 0
    cols = np.where(pred_idx[keep] >= 0, pred_idx[keep], n_labels)
    cm = np.zeros((n_labels, n_labels + 1), dtype=np.int64)
    np.add.at(cm, (true_idx[keep], cols), 1)
    return cm


def confusion_matrix_columns(labels: Sequence[str]) -> list[str]:
    """Column names matching :func:`confusion_matrix` (``labels`` then ``OTHER``), for plots."""
    return [*labels, OTHER]


def binary_f1(y_true: Sequence[bool], y_pred: Sequence[bool]) -> dict:
    """Precision, recall and F1 of the positive class, for one-vs-rest heads such as ethics/hate.

    Returns ``{"precision", "recall", "f1", "support_pos", "n"}``; ratios with a zero
    denominator are 0.0, so a model that never fires reports precision 0 rather than NaN.
    """
    t = np.asarray(y_true, dtype=bool)
    p = np.asarray(y_pred, dtype=bool)
    if t.shape != p.shape:
        raise ValueError(f"y_true has shape {t.shape} but y_pred has {p.shape}")
    tp = int(np.sum(t & p))
    n_pred = int(p.sum())
    support = int(t.sum())
    return {
        "precision": float(_safe_div(tp, n_pred)),
        "recall": float(_safe_div(tp, support)),
        "f1": float(_safe_div(2 * tp, n_pred + support)),
        "support_pos": support,
        "n": int(t.size),
    }


def _risk_curve(correct_sorted: np.ndarray) -> np.ndarray:
    """Risk of the top-k items for every k = 1..n, given correctness in ranking order."""
    k = np.arange(1, correct_sorted.size + 1)
    return 1.0 - np.cumsum(correct_sorted) / k


def risk_coverage(confidence: np.ndarray, correct: np.ndarray) -> dict:
    """Risk-coverage curve of a confidence score and its area (AURC), Geifman et al.

    Why: a confidence gate is only useful if it ranks right answers above wrong ones; AURC
    measures that ranking independently of any one threshold. Items are sorted by confidence,
    descending (stable, so ties keep input order); for each k, ``coverage = k/n`` and
    ``risk = 1 - accuracy of the top k``. ``aurc`` is the mean risk over all n values of k and
    ``e_aurc`` subtracts the AURC of the oracle ranking (all correct items first), which
    removes the part due to the model's error rate and leaves only the ranking quality.

    The returned curve is downsampled to at most ``MAX_CURVE_POINTS`` points (always keeping
    the first and last) to keep JSON small; both areas use the full curve.
    Returns ``{"coverage", "risk", "aurc", "e_aurc", "n"}``.
    """
    conf = np.asarray(confidence, dtype=float).ravel()
    corr = np.asarray(correct, dtype=float).ravel()
    if conf.shape != corr.shape:
        raise ValueError(f"confidence has {conf.size} items but correct has {corr.size}")
    n = conf.size
    if n == 0:
        raise ValueError("risk_coverage needs at least one item")
    if np.isnan(conf).any():
        raise ValueError("confidence contains NaN; the ranking would be undefined")
    order = np.argsort(-conf, kind="stable")
    risk = _risk_curve(corr[order])
    oracle = _risk_curve(np.sort(corr)[::-1])
    aurc = float(risk.mean())
    keep = np.unique(np.round(np.linspace(0, n - 1, min(n, MAX_CURVE_POINTS))).astype(np.int64))
    coverage = (np.arange(1, n + 1) / n)[keep]
    return {
        "coverage": coverage.tolist(),
        "risk": risk[keep].tolist(),
        "aurc": aurc,
        "e_aurc": aurc - float(oracle.mean()),
        "n": int(n),
    }


def latency_summary(latencies_ms: Sequence[float]) -> dict:
    """Count, mean and tail percentiles of request latencies in milliseconds.

    Tails (p95/p99) rather than the mean decide A/B guardrails, because a slower arm shows up
    there first. Percentiles use numpy's default linear interpolation. An empty sample (an arm
    that has not served yet) gives zeros with ``n = 0`` instead of raising.
    Returns ``{"n", "mean", "p50", "p95", "p99", "max"}``.
    """
    x = np.asarray(latencies_ms, dtype=float).ravel()
    if x.size == 0:
        return {"n": 0, "mean": 0.0, "p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    p50, p95, p99 = np.percentile(x, [50, 95, 99], method="linear")
    return {
        "n": int(x.size),
        "mean": float(x.mean()),
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "max": float(x.max()),
    }


def selective_metrics(
    y_true: Sequence[str], y_pred: Sequence[str], decided: np.ndarray, labels: Sequence[str]
) -> dict:
    """Quality on the items a stage decided, with the share it decided.

    Why: each classifier stage (rules, prototypes, heads) either decides or defers to the next;
    its worth is accuracy *at* a coverage, so both are reported together.
    Returns ``{"coverage", "macro_f1", "accuracy", "n_decided"}``; with nothing decided the
    quality numbers are 0.0.
    """
    mask = np.asarray(decided, dtype=bool).ravel()
    if not (mask.size == len(y_true) == len(y_pred)):
        raise ValueError(f"decided has {mask.size} items, y_true {len(y_true)}, y_pred {len(y_pred)}")
    idx = np.flatnonzero(mask)
    t = [y_true[i] for i in idx]
    p = [y_pred[i] for i in idx]
    correct = sum(1 for a, b in zip(t, p, strict=True) if a == b)
    return {
        "coverage": float(_safe_div(idx.size, mask.size)),
        "macro_f1": macro_f1(t, p, labels),
        "accuracy": float(_safe_div(correct, idx.size)),
        "n_decided": int(idx.size),
    }
