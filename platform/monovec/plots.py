"""PNG figures for run reports (confusion matrices, risk-coverage curves, training curves).

Why this shape: jobs run headless inside Ray workers and Serve replicas, so figures are drawn
with the Agg canvas on a bare ``matplotlib.figure.Figure`` -- never ``pyplot``, whose global
state and backend selection are not thread-safe and may try to open a display. matplotlib is
imported inside each function so that ``import monovec.plots`` costs nothing for code paths
that never draw. Every function writes one file, creating parent folders, and returns its path
so the caller can log it as an MLflow artifact.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def new_figure(width: float, height: float) -> Figure:
    """A pyplot-free figure bound to the Agg canvas (headless, safe to use from any thread)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write the figure as PNG, making parent folders, and return the resolved path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", bbox_inches="tight")
    return out


def plot_confusion_matrix(
    cm: np.ndarray,
    row_labels: list[str],
    col_labels: list[str],
    path: str | Path,
    title: str = "",
) -> Path:
    """Heat map of a confusion matrix, coloured by row-normalised rate and annotated with counts.

    Row normalisation makes a rare class's errors as visible as a common one's (colour = recall
    share), while the annotated raw counts keep the support readable. ``col_labels`` may be one
    longer than ``row_labels`` (the ``other`` column from :func:`monovec.metrics.confusion_matrix`).
    """
    counts = np.asarray(cm)
    if counts.shape != (len(row_labels), len(col_labels)):
        raise ValueError(f"cm has shape {counts.shape} but labels give {(len(row_labels), len(col_labels))}")
    row_sums = counts.sum(axis=1, keepdims=True).astype(float)
    rates = np.divide(counts, row_sums, out=np.zeros(counts.shape, dtype=float), where=row_sums > 0)

    n_rows, n_cols = counts.shape
    fig = new_figure(max(4.0, 0.6 * n_cols + 2.0), max(3.5, 0.5 * n_rows + 1.5))
    ax = fig.add_subplot()
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    fig.colorbar(image, ax=ax, label="row share")
    ax.set_xticks(range(n_cols), labels=col_labels, rotation=45, ha="right")
    ax.set_yticks(range(n_rows), labels=row_labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n_rows * n_cols <= 900:  # beyond ~30x30 the numbers are unreadable anyway
        for i in range(n_rows):
            for j in range(n_cols):
                colour = "white" if rates[i, j] > 0.5 else "black"
                ax.text(j, i, str(int(counts[i, j])), ha="center", va="center", fontsize=8, color=colour)
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def plot_risk_coverage(curves: dict[str, dict], path: str | Path, title: str = "") -> Path:
    """Overlay risk-coverage curves (outputs of :func:`monovec.metrics.risk_coverage`).

    Several confidence scores are drawn on one axis so they can be compared at a glance; the
    legend carries each AURC because the area, not the shape, is what Tune optimises.
    """
    fig = new_figure(6.0, 4.5)
    ax = fig.add_subplot()
    for name, curve in curves.items():
        ax.plot(curve["coverage"], curve["risk"], label=f"{name} (AURC={curve['aurc']:.3f})")
    ax.set_xlabel("coverage")
    ax.set_ylabel("risk (1 - accuracy)")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(bottom=0.0)
    ax.grid(True, alpha=0.3)
    if curves:
        ax.legend(loc="upper left")
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def plot_lines(
    series: dict[str, tuple[list[float], list[float]]],
    path: str | Path,
    xlabel: str,
    ylabel: str,
    title: str = "",
) -> Path:
    """Generic named x/y line plot, e.g. loss per epoch or accuracy per domain.

    Kept generic so jobs need no plotting code of their own: a job collects ``name -> (xs, ys)``
    and calls this once.
    """
    fig = new_figure(6.0, 4.5)
    ax = fig.add_subplot()
    for name, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o" if len(xs) <= 30 else None, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if series:
        ax.legend()
    if title:
        ax.set_title(title)
    return save_figure(fig, path)
