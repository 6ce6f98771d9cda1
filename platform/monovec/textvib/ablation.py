"""Ablation runner: the seed's order plus naive sequential fine-tuning, one command, one table.

Rows (each a set of dotted overrides on the base config, so any row can be rerun by hand):
naive (full method without replay/RKD: plain sequential fine-tuning), clip (every alignment switch
off, with replay), then the seed's cumulative order: proto -> +multi_positive -> +residual ->
+bilinear -> +rkd (= the full method). Procrustes init and the two-stage first domain stay as in the
base config in every row; all rows share the seed, data and epochs.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monovec.config import apply_overrides
from monovec.paths import state_dir
from monovec.textvib.config import TextVibConfig

_ALL_OFF = [
    "model.prototypes.enabled=false",
    "model.similarity.multi_positive=false",
    "model.residual_projection.enabled=false",
    "model.similarity.bilinear_enabled=false",
    "model.regularizers.rkd_enabled=false",
    "continual.replay.enabled=true",
]
VARIANTS: dict[str, list[str]] = {
    "naive": [
        "continual.replay.enabled=false",
        "model.regularizers.rkd_enabled=false",
        "model.regularizers.lwf_enabled=false",
    ],
    "clip": _ALL_OFF,
    "proto": [*_ALL_OFF, "model.prototypes.enabled=true"],
    "+multi_positive": [*_ALL_OFF, "model.prototypes.enabled=true", "model.similarity.multi_positive=true"],
    "+residual": [
        *_ALL_OFF,
        "model.prototypes.enabled=true",
        "model.similarity.multi_positive=true",
        "model.residual_projection.enabled=true",
    ],
    "+bilinear": [
        *_ALL_OFF,
        "model.prototypes.enabled=true",
        "model.similarity.multi_positive=true",
        "model.residual_projection.enabled=true",
        "model.similarity.bilinear_enabled=true",
    ],
    "+rkd": [
        *_ALL_OFF,
        "model.prototypes.enabled=true",
        "model.similarity.multi_positive=true",
        "model.residual_projection.enabled=true",
        "model.similarity.bilinear_enabled=true",
        "model.regularizers.rkd_enabled=true",
    ],
}
COLUMNS = ["variant", "average_accuracy", "forgetting", "bwt", "top5_v2t", "top5_t2v", "top1_v2t", "seconds"]


@dataclass
class AblationTable:
    rows: list[dict[str, Any]]
    csv_path: Path
    md_path: Path
    markdown: str


def variant_config(base: TextVibConfig, name: str, out_dir: Path) -> TextVibConfig:
    data = apply_overrides(
        base.model_dump(mode="json"),
        [*VARIANTS[name], f"out_dir={out_dir / name.lstrip('+')}", "tracking.enabled=false"],
    )
    return TextVibConfig.model_validate(data)


def _row(name: str, m: dict[str, Any]) -> dict[str, Any]:
    return {
        "variant": name,
        "average_accuracy": m["average_accuracy"],
        "forgetting": m["forgetting"],
        "bwt": m["bwt"],
        "top5_v2t": m.get("mean_v2t_top5"),
        "top5_t2v": m.get("mean_t2v_top5"),
        "top1_v2t": m.get("mean_v2t_top1"),
        "seconds": m.get("seconds"),
    }


def to_markdown(rows: list[dict[str, Any]]) -> str:
    head = "| variant | mean ACC | forgetting | BWT | top-5 v→t | top-5 t→v | top-1 v→t | seconds |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [f"{r[c]:.4f}" if isinstance(r[c], float) and c != "seconds" else str(r[c]) for c in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_ablation(
    base: TextVibConfig,
    out_dir: str | Path | None = None,
    variants: list[str] | None = None,
    progress: Callable[[str], None] = print,
    runner: Callable[[TextVibConfig], dict[str, Any]] | None = None,
) -> AblationTable:
    """Run each variant through the training job's own code path and write ablation.csv / ablation.md."""
    import time

    out = (
        Path(out_dir)
        if out_dir
        else state_dir() / "textvib" / "ablations" / time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    )
    out.mkdir(parents=True, exist_ok=True)
    if runner is None:
        from monovec.textvib.train import run_training

        def runner(cfg: TextVibConfig) -> dict[str, Any]:
            return run_training(cfg, progress=progress).metrics

    rows = []
    for name in variants or list(VARIANTS):
        progress(f"[ablation] {name}: {' '.join(VARIANTS[name])}")
        rows.append(_row(name, runner(variant_config(base, name, out))))
        _write(rows, out)
    md = to_markdown(rows)
    return AblationTable(rows, out / "ablation.csv", out / "ablation.md", md)


def _write(rows: list[dict[str, Any]], out: Path) -> None:
    with (out / "ablation.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    (out / "ablation.md").write_text(to_markdown(rows) + "\n")
