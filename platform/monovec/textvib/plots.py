"""TextVibCLIP figures: the accuracy matrix R[i][j] as a heat map, and a PCA of each domain's embeddings.

Headless (Agg canvas on a bare Figure, like `monovec.plots`), one PNG per call, path returned.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from monovec.plots import new_figure, save_figure


def plot_accuracy_matrix(r: list[list[float]], domains: list[str], path: str | Path, title: str = "") -> Path:
    """Rows = trained up to domain i, columns = tested on domain j; the diagonal is learning, below it is memory."""
    m = np.asarray(r, dtype=float)
    fig = new_figure(1.1 * len(domains) + 2.5, 1.0 * len(domains) + 1.8)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(m, vmin=max(0.0, float(np.nanmin(m)) - 0.05), vmax=1.0, cmap="viridis")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(
                j,
                i,
                f"{m[i, j]:.3f}",
                ha="center",
                va="center",
                color="white" if m[i, j] < 0.9 else "black",
                fontsize=9,
            )
    ax.set_xticks(range(len(domains)), [f"test {d}" for d in domains], rotation=30)
    ax.set_yticks(range(m.shape[0]), [f"after {d}" for d in domains[: m.shape[0]]])
    ax.set_title(title or "accuracy matrix R[i][j]")
    fig.colorbar(im, ax=ax, fraction=0.046)
    return save_figure(fig, path)


def plot_pca(
    per_domain: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]], classes: list[str], path: str | Path
) -> Path:
    """One panel per domain: 2-D PCA of the vibration embeddings (dots) and the text prototypes (stars)."""
    n = len(per_domain)
    cols = min(n, 2)
    rows = (n + cols - 1) // cols
    fig = new_figure(5.0 * cols + 1.5, 4.2 * rows)
    cmap = __import__("matplotlib").colormaps["tab10"]
    for p, (name, z, y, protos) in enumerate(per_domain):
        ax = fig.add_subplot(rows, cols, p + 1)
        both = np.concatenate([z, protos])
        mean = both.mean(0)
        _, _, vt = np.linalg.svd(both - mean, full_matrices=False)
        pz, pp = (z - mean) @ vt[:2].T, (protos - mean) @ vt[:2].T
        for k, label in enumerate(classes):
            sel = y == k
            ax.scatter(pz[sel, 0], pz[sel, 1], s=6, alpha=0.5, color=cmap(k % 10), label=label)
            ax.scatter(pp[k, 0], pp[k, 1], s=160, marker="*", edgecolor="black", color=cmap(k % 10))
        ax.set_title(f"domain {name}: vibration (dots), text prototypes (stars)", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.axes[0].legend(fontsize=7, markerscale=2, loc="best")
    return save_figure(fig, path)
