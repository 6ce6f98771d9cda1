"""A built classifier as a self-contained, versioned directory.

Layout (no pickles, readable by anything):
  model.json        manifest: format, name, version, encoder, normaliser/rule versions, labels, metrics
  config.yaml       the full ClassifierConfig it was built with (thresholds included)
  heads/<name>.npz  prototypes (vectors, owner, mean), linear weight/bias, harm weight/bias
  safety.npz        the safety categories' weights, per-language calibration, subtype prototypes
  reference.npy     a sample of training embeddings: the drift monitor's reference
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from monovec.classify.config import ClassifierConfig
from monovec.classify.harm import HarmScorer
from monovec.classify.head import Head
from monovec.classify.linear import LinearHead
from monovec.classify.prototypes import PrototypeSet
from monovec.classify.safety import SafetyModel
from monovec.config import ConfigError, dump_config, load_config

FORMAT = "monovec-classifier/1"


class ClassifierModel:
    def __init__(
        self,
        config: ClassifierConfig,
        heads: dict[str, Head],
        manifest: dict[str, Any] | None = None,
        reference: np.ndarray | None = None,
        safety: SafetyModel | None = None,
    ) -> None:
        if (config.safety is not None and config.safety.enabled) and safety is None:
            raise ValueError(
                "the config enables the safety stage but no safety model was given (rebuild the model)"
            )
        self.config = config
        self.heads = heads
        self.safety = safety
        self.manifest = manifest or {}
        self.reference = reference

    @property
    def version(self) -> str:
        return str(self.manifest.get("version", "dev"))

    def with_thresholds(self, config: ClassifierConfig) -> ClassifierModel:
        """Same learned arrays, new gate/linear/harm thresholds (what Tune and A/B treatments change)."""
        heads = {}
        for name, head in self.heads.items():
            heads[name] = Head(name, config.heads[name], head.prototypes, head.linear, head.harm)
        safety = self.safety
        if safety is not None and config.safety is not None:
            safety = SafetyModel.from_state(config.safety, safety.state())
        return ClassifierModel(config, heads, dict(self.manifest), self.reference, safety)

    def save(self, out_dir: str | Path) -> Path:
        out = Path(out_dir)
        (out / "heads").mkdir(parents=True, exist_ok=True)
        for name, head in self.heads.items():
            arrays = {f"proto_{k}": v for k, v in head.prototypes.state().items()}
            arrays.update({f"linear_{k}": v for k, v in head.linear.state().items()})
            if head.harm is not None:
                arrays.update({f"harm_{k}": v for k, v in head.harm.state().items()})
            np.savez(out / "heads" / f"{name}.npz", **arrays)
        if self.reference is not None:
            np.save(out / "reference.npy", self.reference.astype(np.float32))
        if self.safety is not None:
            np.savez(out / "safety.npz", **self.safety.state())
        dump_config(self.config, out / "config.yaml")
        manifest = {
            "format": FORMAT,
            "name": self.config.name,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **self.manifest,
        }
        manifest["heads"] = {
            n: {"labels": h.labels, "prototypes": h.prototypes.counts(), "harm": h.harm is not None}
            for n, h in self.heads.items()
        }
        (out / "model.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
        self.manifest = manifest
        return out

    @classmethod
    def load(cls, model_dir: str | Path) -> ClassifierModel:
        root = Path(model_dir)
        manifest_path = root / "model.json"
        if not manifest_path.is_file():
            raise FileNotFoundError(f"not a monovec classifier directory (no model.json): {root}")
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format") != FORMAT:
            raise ConfigError(f"{manifest_path}: format {manifest.get('format')!r}, expected {FORMAT!r}")
        config = load_config(ClassifierConfig, root / "config.yaml")
        heads = {}
        for name, hcfg in config.heads.items():
            with np.load(root / "heads" / f"{name}.npz") as z:
                arrays = {k: z[k] for k in z.files}
            protos = PrototypeSet.from_state(
                hcfg.labels, {k[6:]: v for k, v in arrays.items() if k.startswith("proto_")}
            )
            linear = LinearHead.from_state(
                hcfg.labels, {k[7:]: v for k, v in arrays.items() if k.startswith("linear_")}
            )
            harm = (
                HarmScorer.from_state(
                    hcfg.harm.lexical, {k[5:]: v for k, v in arrays.items() if k.startswith("harm_")}
                )
                if hcfg.harm
                else None
            )
            heads[name] = Head(name, hcfg, protos, linear, harm)
        ref_path = root / "reference.npy"
        reference = np.load(ref_path) if ref_path.is_file() else None
        safety = None
        if config.safety is not None and config.safety.enabled:
            with np.load(root / "safety.npz") as z:
                safety = SafetyModel.from_state(config.safety, {k: z[k] for k in z.files})
        return cls(config, heads, manifest, reference, safety)
