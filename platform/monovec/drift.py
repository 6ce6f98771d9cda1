"""Drift detectors between a reference sample of embeddings and a window of recent ones.

Why three detectors: each catches a different failure and each has a blind spot.

* **PSI** (population stability index) per projected dimension is the number operations teams
  know (> 0.2 = "significant shift") and is cheap, but it is a heuristic with no p-value and an
  upward bias on small windows of about ``(bins - 1) * (1/n_ref + 1/n_cur)`` (≈ 0.19 at
  n_cur = 50, bins = 10), so it should be read with ``n`` beside it.
* **KS** per projected dimension gives a p-value per marginal; with ``k`` projections the
  decision is Bonferroni-corrected (``min p < alpha / k``) so more projections do not mean more
  false alarms.
* **MMD** with an RBF kernel compares the full joint distributions, so it sees changes that leave
  every 1-D marginal intact (e.g. a rotation inside the embedding space); its permutation p-value
  is exact in finite samples.

Projections: every 1-D detector looks at the embeddings through ``n_projections`` **fixed random
unit directions** drawn from a seeded Gaussian, not through PCA of the reference. Random
directions are data-independent (any process recomputes the same ones from the seed, with no
fitted state to ship) and probe every direction of the space with equal chance, whereas PCA
concentrates on directions where the reference already varies and can miss a shift along a
low-variance direction -- a common drift mode for normalised embeddings.
"""

from __future__ import annotations

import threading

import numpy as np
from pydantic import Field
from scipy.stats import kstwo

from monovec.config import StrictModel


def _as_1d(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float).ravel()
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def _as_2d(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"{name} must have shape (n, d) with n >= 1, got {np.shape(x)}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def _check_pair(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r, c = _as_2d(ref, "reference"), _as_2d(cur, "current")
    if r.shape[1] != c.shape[1]:
        raise ValueError(f"reference has dimension {r.shape[1]} but current has {c.shape[1]}")
    return r, c


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10, eps: float = 1e-4) -> float:
    """Population stability index of a 1-D sample against a 1-D reference.

    ``PSI = sum_i (a_i - e_i) * ln(a_i / e_i)`` over bins, with ``e_i``/``a_i`` the shares of the
    reference/current sample in bin ``i``. Each term is >= 0, so PSI is a symmetric KL-type
    divergence (the seed's formula, which dropped the ``(a - e)`` factor, could go negative).
    Bin edges are the reference's quantiles, so each bin holds ~1/bins of the reference; tied
    edges (a discrete reference) are merged. Shares are floored at ``eps`` (not renormalised)
    so an empty bin gives a large finite term instead of inf.
    """
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    e = _as_1d(expected, "expected")
    a = _as_1d(actual, "actual")
    inner = np.unique(np.quantile(e, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    n_bins = inner.size + 1
    e_frac = np.bincount(np.searchsorted(inner, e, side="right"), minlength=n_bins) / e.size
    a_frac = np.bincount(np.searchsorted(inner, a, side="right"), minlength=n_bins) / a.size
    e_frac = np.maximum(e_frac, eps)
    a_frac = np.maximum(a_frac, eps)
    return float(np.sum((a_frac - e_frac) * np.log(a_frac / e_frac)))


def random_directions(dim: int, n_projections: int, seed: int = 0) -> np.ndarray:
    """``(n_projections, dim)`` unit vectors from a seeded Gaussian: the same seed gives the same axes."""
    if dim < 1 or n_projections < 1:
        raise ValueError(f"need dim >= 1 and n_projections >= 1, got {dim}, {n_projections}")
    dirs = np.random.default_rng(seed).standard_normal((n_projections, dim))
    return dirs / np.linalg.norm(dirs, axis=1, keepdims=True)


def _project(ref: np.ndarray, cur: np.ndarray, n_projections: int, seed: int) -> tuple[np.ndarray, ...]:
    r, c = _check_pair(ref, cur)
    dirs = random_directions(r.shape[1], n_projections, seed)
    return r @ dirs.T, c @ dirs.T


def psi_per_dimension(
    ref: np.ndarray, cur: np.ndarray, n_projections: int = 16, seed: int = 0, bins: int = 10
) -> dict:
    """PSI of each random projection (see module docstring). Returns ``{"per_projection", "max", "mean"}``."""
    pr, pc = _project(ref, cur, n_projections, seed)
    values = [psi(pr[:, j], pc[:, j], bins=bins) for j in range(pr.shape[1])]
    return {"per_projection": values, "max": float(max(values)), "mean": float(np.mean(values))}


def ks_statistic(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic ``sup |F_x - F_y|`` (equals scipy's ``ks_2samp``)."""
    xs, ys = np.sort(_as_1d(x, "x")), np.sort(_as_1d(y, "y"))
    grid = np.concatenate([xs, ys])
    cdf_x = np.searchsorted(xs, grid, side="right") / xs.size
    cdf_y = np.searchsorted(ys, grid, side="right") / ys.size
    return float(np.max(np.abs(cdf_x - cdf_y)))


def ks_pvalue(statistic: float, n_x: int, n_y: int) -> float:
    """Asymptotic two-sided p-value, as ``ks_2samp(method="asymp")``: Kolmogorov law at n = nm/(n+m).

    Asymptotic rather than exact because windows are hundreds of points, where the two agree
    and the exact recursion is needlessly slow.
    """
    m, n = sorted((float(n_x), float(n_y)), reverse=True)
    return float(np.clip(kstwo.sf(statistic, np.round(m * n / (m + n))), 0.0, 1.0))


def ks_bonferroni(
    ref: np.ndarray, cur: np.ndarray, n_projections: int = 16, alpha: float = 0.05, seed: int = 0
) -> dict:
    """KS test per random projection with a Bonferroni-corrected decision (``min p < alpha / k``).

    Returns ``{"statistics", "p_values", "max_statistic", "min_p_value", "threshold", "drift"}``.
    """
    pr, pc = _project(ref, cur, n_projections, seed)
    stats = [ks_statistic(pr[:, j], pc[:, j]) for j in range(pr.shape[1])]
    pvals = [ks_pvalue(s, pr.shape[0], pc.shape[0]) for s in stats]
    threshold = alpha / len(stats)
    return {
        "statistics": stats,
        "p_values": pvals,
        "max_statistic": float(max(stats)),
        "min_p_value": float(min(pvals)),
        "threshold": threshold,
        "drift": bool(min(pvals) < threshold),
    }


def _subsample(x: np.ndarray, max_samples: int, rng: np.random.Generator) -> np.ndarray:
    if x.shape[0] <= max_samples:
        return x
    return x[np.sort(rng.choice(x.shape[0], size=max_samples, replace=False))]


def mmd_permutation(
    ref: np.ndarray,
    cur: np.ndarray,
    n_permutations: int = 200,
    seed: int = 0,
    max_samples: int = 500,
    alpha: float = 0.05,
) -> dict:
    """Unbiased RBF-kernel MMD² with a permutation p-value.

    Bandwidth by the median heuristic on the pooled sample: ``k(x, y) = exp(-|x-y|² / (2 s²))``
    with ``s²`` the median of the non-zero pooled pairwise squared distances. Each side is
    subsampled (seeded) to ``max_samples`` to bound the O(n²) kernel. All permutations are
    evaluated at once as quadratic forms ``sᵀ K s`` of label vectors, one matrix product instead
    of ``n_permutations`` kernel slices. ``p = (1 + #{perm >= observed}) / (1 + n_permutations)``.
    Returns ``{"mmd2", "p_value", "bandwidth", "n_ref", "n_cur", "drift"}``.
    """
    r, c = _check_pair(ref, cur)
    if r.shape[0] < 2 or c.shape[0] < 2:
        raise ValueError("MMD needs at least 2 samples on each side")
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations}")
    rng = np.random.default_rng(seed)
    r, c = _subsample(r, max_samples, rng), _subsample(c, max_samples, rng)
    z = np.concatenate([r, c])
    sq = np.sum(z * z, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (z @ z.T), 0.0)
    upper = d2[np.triu_indices(z.shape[0], k=1)]
    positive = upper[upper > 0]
    s2 = float(np.median(positive)) if positive.size else 1.0
    k = np.exp(-d2 / (2.0 * s2))
    np.fill_diagonal(k, 0.0)
    n, m = r.shape[0], c.shape[0]

    labels = np.zeros((n + m, n_permutations + 1))
    labels[:n, 0] = 1.0
    for j in range(1, n_permutations + 1):
        labels[rng.permutation(n + m)[:n], j] = 1.0
    other = 1.0 - labels
    k_lab = k @ labels
    k_oth = k @ other
    xx = np.einsum("ij,ij->j", labels, k_lab)
    yy = np.einsum("ij,ij->j", other, k_oth)
    xy = np.einsum("ij,ij->j", labels, k_oth)
    mmd2 = xx / (n * (n - 1)) + yy / (m * (m - 1)) - 2.0 * xy / (n * m)
    observed = float(mmd2[0])
    p_value = float((1 + np.sum(mmd2[1:] >= observed)) / (1 + n_permutations))
    return {
        "mmd2": observed,
        "p_value": p_value,
        "bandwidth": float(np.sqrt(s2)),
        "n_ref": int(n),
        "n_cur": int(m),
        "drift": bool(p_value < alpha),
    }


class DriftConfig(StrictModel):
    """Thresholds and sizes of the drift monitor (defaults from the seed's monitoring table)."""

    psi_threshold: float = Field(
        default=0.2, gt=0, description="Max-over-projections PSI above which drift is flagged."
    )
    psi_bins: int = Field(default=10, ge=2, description="Quantile bins of the reference per projection.")
    ks_alpha: float = Field(
        default=0.05, gt=0, lt=1, description="Family-wise alpha of the Bonferroni KS test."
    )
    mmd_alpha: float = Field(default=0.05, gt=0, lt=1, description="Alpha of the MMD permutation test.")
    mmd_permutations: int = Field(default=200, ge=1, description="Permutations for the MMD p-value.")
    mmd_max_samples: int = Field(
        default=500, ge=2, description="Per-side subsample cap for MMD (O(n²) kernel)."
    )
    min_samples: int = Field(default=50, ge=2, description="Window size below which no detector runs.")
    n_projections: int = Field(default=16, ge=1, description="Random unit directions for PSI and KS.")
    reservoir_size: int = Field(default=1000, ge=2, description="Recent embeddings kept (uniform reservoir).")
    seed: int = Field(default=0, description="Seeds projections, reservoir and permutations.")


class DriftMonitor:
    """Keeps a uniform reservoir of served embeddings and compares it with the build-time reference.

    Reservoir sampling (Vitter's algorithm R) keeps a uniform sample of everything seen in fixed
    memory, so a replica can call :meth:`update` on every batch. Thread-safe: one lock guards
    the reservoir, because Serve replicas may update from several threads.
    """

    def __init__(self, reference: np.ndarray, config: DriftConfig | None = None) -> None:
        self.config = config or DriftConfig()
        self.reference = _as_2d(reference, "reference")
        if self.reference.shape[0] < 2:
            raise ValueError("reference needs at least 2 embeddings")
        self.dim = self.reference.shape[1]
        self._buffer = np.empty((self.config.reservoir_size, self.dim))
        self._filled = 0
        self._seen = 0
        self._rng = np.random.default_rng(self.config.seed)
        self._lock = threading.Lock()

    @property
    def seen(self) -> int:
        """Embeddings passed to :meth:`update` since creation."""
        return self._seen

    def window(self) -> np.ndarray:
        """A copy of the current reservoir, ``(n, d)``."""
        with self._lock:
            return self._buffer[: self._filled].copy()

    def update(self, embeddings: np.ndarray) -> None:
        """Offer ``(n, d)`` (or one ``(d,)``) embeddings to the reservoir."""
        x = _as_2d(embeddings, "embeddings")
        if x.shape[1] != self.dim:
            raise ValueError(f"embeddings have dimension {x.shape[1]}, reference has {self.dim}")
        size = self.config.reservoir_size
        with self._lock:
            free = min(size - self._filled, x.shape[0])
            if free > 0:
                self._buffer[self._filled : self._filled + free] = x[:free]
                self._filled += free
            rest = x[free:]
            if rest.shape[0]:
                # item t (0-based overall) replaces slot j ~ U{0..t} when j < size
                t = self._seen + free + np.arange(rest.shape[0])
                slots = self._rng.integers(0, t + 1)
                keep = np.flatnonzero(slots < size)
                # sequential semantics: a later item overwrites an earlier one in the same slot
                last = {int(slots[i]): int(i) for i in keep}
                if last:
                    self._buffer[list(last)] = rest[list(last.values())]
            self._seen += x.shape[0]

    def report(self) -> dict:
        """PSI, KS and MMD of the reservoir vs the reference, and one ``drift`` flag (any detector).

        Below ``min_samples`` the detectors are ``None`` and ``drift`` is False: too few points
        would only produce noise (PSI especially, see the module docstring).
        """
        cfg = self.config
        cur = self.window()
        out: dict = {"n": int(cur.shape[0]), "seen": self._seen, "n_reference": int(self.reference.shape[0])}
        if cur.shape[0] < cfg.min_samples:
            return {
                **out,
                "ready": False,
                "psi": None,
                "ks": None,
                "mmd": None,
                "drift": False,
                "reasons": [],
            }
        p = psi_per_dimension(self.reference, cur, cfg.n_projections, cfg.seed, cfg.psi_bins)
        p["threshold"] = cfg.psi_threshold
        p["drift"] = bool(p["max"] > cfg.psi_threshold)
        ks = ks_bonferroni(self.reference, cur, cfg.n_projections, cfg.ks_alpha, cfg.seed)
        mmd = mmd_permutation(
            self.reference, cur, cfg.mmd_permutations, cfg.seed, cfg.mmd_max_samples, cfg.mmd_alpha
        )
        reasons = [name for name, res in (("psi", p), ("ks", ks), ("mmd", mmd)) if res["drift"]]
        return {
            **out,
            "ready": True,
            "psi": p,
            "ks": ks,
            "mmd": mmd,
            "drift": bool(reasons),
            "reasons": reasons,
        }
