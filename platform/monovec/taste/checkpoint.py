"""One checkpoint = model + optimizer + replay + RNG + watermark + ledger, written as one directory.

Why one directory: the watermark (how far each events file was consumed) and the model must roll back
together, or a crash between two separate writes would learn events twice or never. A checkpoint is
built in a temp dir and renamed into place (atomic on one filesystem); `LATEST` names the newest.

Layout:
    ckpt-<learned>/model/        the servable part: model.pt, model.json, scaler.json (registered in MLflow)
    ckpt-<learned>/train_state.pt   optimizer (Adam m/v), replay reservoir, context histories, torch RNG
    ckpt-<learned>/state.json    watermark, ledger (ids of learned events, in order), counters, metrics
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from monovec.paths import resolve_data_path, state_dir
from monovec.taste.config import Taste2VecJobConfig
from monovec.taste.encoders import NumericScaler
from monovec.taste.learner import OnlineLearner
from monovec.taste.model import Taste2Vec

STATE, TRAIN, MODEL = "state.json", "train_state.pt", "model"


@dataclass
class JobState:
    """Everything about the stream position; committed with the weights it describes."""

    watermark: dict[str, int] = field(default_factory=dict)
    ledger: list[str] = field(default_factory=list)
    learned: int = 0
    dead_letters: int = 0
    last_registered: int = 0
    versions: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    fingerprint: str = ""

    @classmethod
    def read(cls, ckpt: Path) -> JobState:
        return cls(**json.loads((Path(ckpt) / STATE).read_text()))

    def write(self, ckpt: Path) -> None:
        tmp = Path(ckpt) / f".{STATE}.tmp"
        tmp.write_text(json.dumps(asdict(self), ensure_ascii=False))
        os.replace(tmp, Path(ckpt) / STATE)


def save_checkpoint(
    root: Path,
    model: Taste2Vec,
    learner: OnlineLearner,
    scaler: NumericScaler,
    state: JobState,
    keep: int = 2,
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{uuid.uuid4().hex[:8]}"
    model.save(tmp / MODEL, extra={"fingerprint": state.fingerprint, "learned": state.learned})
    scaler.save(tmp / MODEL / "scaler.json")
    torch.save(learner.state_dict(), tmp / TRAIN)
    state.write(tmp)
    final = root / f"ckpt-{state.learned:010d}"
    if final.exists():  # same position committed again (e.g. only dead letters moved the watermark)
        shutil.rmtree(final)
    os.replace(tmp, final)
    pointer = root / ".LATEST.tmp"
    pointer.write_text(final.name)
    os.replace(pointer, root / "LATEST")
    for old in sorted(root.glob("ckpt-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(root: Path) -> Path | None:
    pointer = Path(root) / "LATEST"
    if not pointer.is_file():
        return None
    path = Path(root) / pointer.read_text().strip()
    return path if (path / STATE).is_file() else None


def load_train_state(ckpt: Path) -> dict[str, Any]:
    return torch.load(Path(ckpt) / TRAIN, map_location="cpu", weights_only=True)


def job_root(cfg: Taste2VecJobConfig) -> Path:
    """The job's folder (checkpoints, watermark, dead letters): `out_dir`/`run_name`, default under the state dir."""
    base = resolve_data_path(cfg.out_dir) if cfg.out_dir else state_dir() / "taste2vec"
    return base / cfg.run_name
