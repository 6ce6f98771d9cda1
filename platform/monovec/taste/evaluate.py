"""Prequential (test-then-train) evaluation: each window of events is scored first, then learned.

Three scorers see the same stream: the online model (learns every window), the frozen model (a copy of
the online model taken after `warmup_events` and never updated again: "trained once, deployed without
online updates") and popularity (lots ranked by likes so far). Per liked event, hit@10 ranks the lot among
itself + 99 lots drawn uniformly from the rest (the sampled protocol of He et al. 2017); ties are broken
at random. `hit_rate_at_10_full` ranks it among the whole catalogue. AUC is pooled over events (liked vs
disliked). "final" numbers are over the last `final_fraction` of the stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mann-Whitney AUC with ties counted half; NaN when one class is missing."""
    labels, scores = np.asarray(labels) > 0.5, np.asarray(scores, dtype=np.float64)
    pos, neg = int(labels.sum()), int((~labels).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[labels].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def hit_at_k(
    scores: np.ndarray, pos: np.ndarray, candidates: np.ndarray | None, k: int, rng: np.random.Generator
) -> np.ndarray:
    """scores (B, N), pos (B,) item rows, candidates (B, C) negatives or None for the full catalogue ->
    (B,) 1.0 if the positive ranks in the top k (random tie-breaking)."""
    rows = np.arange(len(pos))
    s_pos = scores[rows, pos]
    comp = scores if candidates is None else np.take_along_axis(scores, candidates, axis=1)
    if candidates is None:
        comp = comp.copy()
        comp[rows, pos] = -np.inf  # the positive itself does not compete
    greater = (comp > s_pos[:, None]).sum(1)
    ties = (comp == s_pos[:, None]).sum(1)
    rank = greater + np.floor(rng.uniform(size=len(pos)) * (ties + 1))
    return (rank < k).astype(np.float64)


def sample_negatives(pos: np.ndarray, n_items: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """(B, n) lots != pos, uniform (with replacement across rows, distinct from the positive)."""
    neg = rng.integers(0, n_items - 1, size=(len(pos), n))
    return neg + (neg >= pos[:, None])  # skip the positive's index


@dataclass
class Curve:
    """Per-window predictions of one scorer, kept to compute any metric over any span afterwards."""

    labels: list[np.ndarray] = field(default_factory=list)
    scores: list[np.ndarray] = field(default_factory=list)
    hits: list[np.ndarray] = field(default_factory=list)
    hits_full: list[np.ndarray] = field(default_factory=list)

    def add(self, labels: np.ndarray, scores: np.ndarray, hits: np.ndarray, hits_full: np.ndarray) -> None:
        self.labels.append(labels)
        self.scores.append(scores)
        self.hits.append(hits)
        self.hits_full.append(hits_full)

    def span(self, start: int, stop: int) -> dict[str, float]:
        """AUC and hit rates over windows [start, stop)."""
        if stop <= start or not self.labels[start:stop]:
            return {"auc": float("nan"), "hit_at_10": float("nan"), "hit_at_10_full": float("nan")}
        lab, sc = np.concatenate(self.labels[start:stop]), np.concatenate(self.scores[start:stop])
        hits, full = np.concatenate(self.hits[start:stop]), np.concatenate(self.hits_full[start:stop])
        return {
            "auc": auc(lab, sc),
            "hit_at_10": float(hits.mean()) if len(hits) else float("nan"),
            "hit_at_10_full": float(full.mean()) if len(full) else float("nan"),
        }


def window_metrics(
    labels: np.ndarray,
    items: np.ndarray,
    per_event: np.ndarray,
    catalogue: np.ndarray,
    negatives: np.ndarray,
    rng: np.random.Generator,
    k: int = 10,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(labels, scores, sampled hits, full hits) of one window for one scorer; catalogue rows = liked events."""
    liked = labels > 0.5
    pos = items[liked]
    hits = hit_at_k(catalogue, pos, negatives, k, rng) if len(pos) else np.zeros(0)
    full = hit_at_k(catalogue, pos, None, k, rng) if len(pos) else np.zeros(0)
    return labels, per_event, hits, full


def plot_curves(
    curves: dict[str, Curve], bounds: list[tuple[int, int, int]], path: str | Path, title: str
) -> Path:
    """AUC and hit@10 per segment for each scorer: bounds = (first window, end window, events seen at end)."""
    from monovec.plots import new_figure, save_figure

    fig = new_figure(11, 4)
    ax_auc, ax_hit = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    x = [b[2] for b in bounds]
    for name, curve in curves.items():
        spans = [curve.span(a, b) for a, b, _ in bounds]
        ax_auc.plot(x, [s["auc"] for s in spans], marker="o", ms=3, label=name)
        ax_hit.plot(x, [s["hit_at_10"] for s in spans], marker="o", ms=3, label=name)
    ax_auc.set(title="prequential AUC", xlabel="events", ylabel="AUC", ylim=(0.4, 1.0))
    ax_hit.set(title="hit-rate@10 (1 liked vs 99 sampled)", xlabel="events", ylabel="hit@10", ylim=(0, 1))
    for ax in (ax_auc, ax_hit):
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    fig.suptitle(title)
    return save_figure(fig, path)
