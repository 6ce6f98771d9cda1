"""Continual-learning and alignment metrics (numpy, no torch), with the Avalanche definitions.

R[i][j] is the test accuracy on domain j after training up to and including domain i (T x T).
- average accuracy after step i: mean_j R[i][j] over all T domains (the stream accuracy) and
  mean_{j<=i} R[i][j] over the domains seen so far;
- forgetting of domain j < T-1: R[j][j] - R[T-1][j] (accuracy right after learning it minus now);
- backward transfer: mean_{j<T-1} R[T-1][j] - R[j][j] = -forgetting;
- max-forgetting (Chaudhry et al.): max_{l<T-1} R[l][j] - R[T-1][j], reported beside it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.asarray(pred) == np.asarray(y))) if len(y) else float("nan")


def nearest(z: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Index of the most cosine-similar anchor for each row (inputs L2-normalised)."""
    return np.argmax(z @ anchors.T, axis=1)


def continual_summary(r: Sequence[Sequence[float]]) -> dict[str, float | list[float]]:
    """Average accuracy, forgetting, BWT from a full T x T accuracy matrix."""
    r = np.asarray(r, dtype=float)
    t = r.shape[0]
    if r.shape != (t, t):
        raise ValueError(f"accuracy matrix must be square, got {r.shape}")
    last = r[t - 1]
    out: dict[str, float | list[float]] = {
        "average_accuracy": float(last.mean()),
        "average_accuracy_seen": [float(r[i, : i + 1].mean()) for i in range(t)],
        "average_accuracy_all": [float(r[i].mean()) for i in range(t)],
    }
    if t > 1:
        forget = np.array([r[j, j] - last[j] for j in range(t - 1)])
        max_forget = np.array([r[: t - 1, j].max() - last[j] for j in range(t - 1)])
        out.update(
            {
                "forgetting": float(forget.mean()),
                "forgetting_per_domain": forget.tolist(),
                "bwt": float(-forget.mean()),
                "max_forgetting": float(max_forget.mean()),
            }
        )
    else:
        out.update({"forgetting": 0.0, "forgetting_per_domain": [], "bwt": 0.0, "max_forgetting": 0.0})
    return out


def retrieval_topk(
    q: np.ndarray, q_labels: np.ndarray, keys: np.ndarray, k_labels: np.ndarray, ks: Sequence[int] = (1, 5)
) -> dict[int, float]:
    """Class-level retrieval: a query hits at k if any of its k most similar keys has its class."""
    sim = q @ keys.T
    order = np.argsort(-sim, axis=1, kind="stable")
    out = {}
    for k in ks:
        top = np.asarray(k_labels)[order[:, : min(k, keys.shape[0])]]
        out[k] = float(np.mean((top == np.asarray(q_labels)[:, None]).any(axis=1)))
    return out


def cosine_stats(z: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Mean cosine between different windows of the same class and of different classes."""
    sim = z @ z.T
    same = np.asarray(y)[:, None] == np.asarray(y)[None, :]
    off = ~np.eye(len(y), dtype=bool)
    within = sim[same & off]
    between = sim[~same]
    return {
        "within_class_cos": float(within.mean()) if within.size else float("nan"),
        "between_class_cos": float(between.mean()) if between.size else float("nan"),
    }
