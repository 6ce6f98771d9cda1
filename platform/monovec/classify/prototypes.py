"""Class prototypes in the shared embedding space.

A class is represented by one robust centroid, or by several when its members are spread out
(a "joy" comment about food and one about a wedding sit far apart). Scores are cosine
similarities in a *centred* space: sentence encoders put every text in a narrow cone, so raw cosines
all sit near 0.3-0.6; subtracting the corpus mean (stored with the model) spreads them so that
thresholds like T_max/T_unknown mean something.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from monovec.config import StrictModel
from monovec.embed.text import l2_normalise


class PrototypeConfig(StrictModel):
    trim_fraction: float = Field(
        0.1,
        ge=0.0,
        lt=0.9,
        description="share of members farthest from the centroid dropped before re-averaging",
    )
    multi_k: int = Field(
        3, ge=1, le=32, description="k-means prototypes for a diverse class (1 = always single)"
    )
    diversity_threshold: float = Field(
        0.75,
        ge=0.0,
        le=2.0,
        description="1 - mean cosine to centroid above which a class gets multi_k prototypes",
    )
    min_cluster_size: int = Field(20, ge=1, description="k-means clusters smaller than this are dropped")
    center: bool = Field(True, description="score in the space centred on the training mean")
    seed: int = 0


def trimmed_centroid(x: np.ndarray, trim_fraction: float) -> np.ndarray:
    """Mean direction after dropping the `trim_fraction` of rows least similar to the first mean.

    Label noise in GoEmotions-like data is real; a handful of mislabelled rows should not drag a
    prototype. Trimming by cosine to the first centroid is the vector analogue of a trimmed mean.
    """
    x = l2_normalise(x)
    if len(x) == 0:
        raise ValueError("cannot build a prototype from zero examples")
    first = l2_normalise(x.mean(0))
    keep = max(1, int(round(len(x) * (1.0 - trim_fraction))))
    order = np.argsort(-(x @ first), kind="stable")[:keep]
    return l2_normalise(x[order].mean(0))


def spherical_kmeans(x: np.ndarray, k: int, seed: int = 0, iters: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """k-means on the unit sphere (cosine), k-means++ init, deterministic for a seed."""
    x = l2_normalise(x)
    rng = np.random.default_rng(seed)
    centres = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d = 1.0 - np.max(x @ np.stack(centres).T, axis=1)
        p = np.clip(d, 0, None)
        p = p / p.sum() if p.sum() > 0 else np.full(len(x), 1.0 / len(x))
        centres.append(x[rng.choice(len(x), p=p)])
    c = np.stack(centres)
    assign = np.zeros(len(x), dtype=np.int64)
    for _ in range(iters):
        new = np.argmax(x @ c.T, axis=1)
        if _ > 0 and np.array_equal(new, assign):
            break
        assign = new
        for j in range(k):
            members = x[assign == j]
            if len(members):
                c[j] = l2_normalise(members.mean(0))
    return c, assign


class PrototypeSet:
    """Prototypes for one head: `vectors[i]` belongs to class `owner[i]`; a class may own several."""

    def __init__(
        self, labels: list[str], vectors: np.ndarray, owner: np.ndarray, mean: np.ndarray | None
    ) -> None:
        self.labels = list(labels)
        self.vectors = l2_normalise(vectors)
        self.owner = np.asarray(owner, dtype=np.int64)
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float32)
        missing = set(range(len(labels))) - set(self.owner.tolist())
        if missing:
            raise ValueError(f"classes without a prototype: {[labels[i] for i in sorted(missing)]}")

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, labels: list[str], config: PrototypeConfig) -> PrototypeSet:
        """x: (n, d) embeddings, y: (n,) class indices into `labels`."""
        mean = l2_normalise(x.mean(0)) * float(np.linalg.norm(x.mean(0))) if config.center else None
        xs = cls._centre(x, mean)
        vectors, owner = [], []
        for j, label in enumerate(labels):
            members = xs[y == j]
            if len(members) == 0:
                raise ValueError(f"class {label!r} has no training examples")
            centroid = trimmed_centroid(members, config.trim_fraction)
            diversity = 1.0 - float(np.mean(members @ centroid))
            if (
                config.multi_k > 1
                and diversity > config.diversity_threshold
                and len(members) >= 2 * config.min_cluster_size
            ):
                centres, assign = spherical_kmeans(members, config.multi_k, seed=config.seed + j)
                sizes = np.bincount(assign, minlength=config.multi_k)
                kept = [
                    trimmed_centroid(members[assign == c], config.trim_fraction)
                    for c in range(config.multi_k)
                    if sizes[c] >= config.min_cluster_size
                ]
                if len(kept) > 1:
                    vectors.extend(kept)
                    owner.extend([j] * len(kept))
                    continue
            vectors.append(centroid)
            owner.append(j)
        return cls(labels, np.stack(vectors), np.array(owner), mean)

    @staticmethod
    def _centre(x: np.ndarray, mean: np.ndarray | None) -> np.ndarray:
        return l2_normalise(x if mean is None else x - mean)

    def scores(self, x: np.ndarray) -> np.ndarray:
        """(n, n_classes) cosine of each row to its nearest prototype of each class."""
        sims = self._centre(np.atleast_2d(x), self.mean) @ self.vectors.T
        out = np.full((sims.shape[0], len(self.labels)), -1.0, dtype=np.float32)
        for j in range(len(self.labels)):
            out[:, j] = sims[:, self.owner == j].max(axis=1)
        return out

    def counts(self) -> dict[str, int]:
        return {label: int((self.owner == j).sum()) for j, label in enumerate(self.labels)}

    def state(self) -> dict[str, np.ndarray]:
        s = {"vectors": self.vectors, "owner": self.owner}
        if self.mean is not None:
            s["mean"] = self.mean
        return s

    @classmethod
    def from_state(cls, labels: list[str], state: dict[str, np.ndarray]) -> PrototypeSet:
        return cls(labels, state["vectors"], state["owner"], state.get("mean"))
