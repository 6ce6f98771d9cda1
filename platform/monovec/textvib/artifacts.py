"""A trained TextVibCLIP model directory: self-contained, loadable by any process without Ray.

model.json       format, classes, domains trained, window settings, headline metrics
config.yaml      the full TextVibConfig of the run (window/split settings are reused by evaluate)
weights.pt       model state_dict (prototypes included: they are a buffer)
text_table.npz   every description with its frozen text embedding
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from monovec.config import dump_config, load_config
from monovec.textvib.config import TextVibConfig
from monovec.textvib.model import TextVibModel
from monovec.textvib.text import TextTable

FORMAT = "monovec-textvib/1"


@dataclass
class ModelBundle:
    config: TextVibConfig
    net: TextVibModel
    texts: TextTable
    manifest: dict[str, Any]


def save_model_dir(
    path: str | Path,
    cfg: TextVibConfig,
    state: dict[str, torch.Tensor],
    texts: TextTable,
    headline: dict[str, Any] | None = None,
) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    torch.save(state, path / "weights.pt")
    texts.save(path / "text_table.npz")
    dump_config(cfg, path / "config.yaml")
    manifest = {
        "format": FORMAT,
        "name": cfg.name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "classes": cfg.data.classes,
        "domains": cfg.data.domains,
        "window": cfg.data.window.model_dump(),
        "text_encoder": cfg.model.text.encoder.name,
        "text_dim": int(texts.emb.shape[1]),
        "metrics": headline or {},
    }
    (path / "model.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    return path


def load_model_dir(path: str | Path) -> ModelBundle:
    path = Path(path)
    if not (path / "model.json").is_file():
        raise FileNotFoundError(f"not a TextVibCLIP model directory (no model.json): {path}")
    manifest = json.loads((path / "model.json").read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown model format {manifest.get('format')!r}")
    cfg = load_config(TextVibConfig, path / "config.yaml")
    texts = TextTable.load(path / "text_table.npz")
    net = TextVibModel(cfg.model, texts.emb.shape[1], len(cfg.data.classes))
    net.load_state_dict(torch.load(path / "weights.pt", map_location="cpu", weights_only=True))
    return ModelBundle(cfg, net.eval(), texts, manifest)
