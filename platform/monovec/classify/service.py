"""Loading a classifier for use: from a directory, the registry, or the newest local build.

Shared by the CLI, jobs and Serve deployments so "which model am I running" has one answer.
"""

from __future__ import annotations

import os
from pathlib import Path

from monovec.classify.escalation import Escalator
from monovec.classify.model import ClassifierModel
from monovec.classify.pipeline import ClassifierPipeline
from monovec.embed.text import TextEncoder
from monovec.paths import state_dir


def latest_local_model(root: Path | None = None) -> Path:
    """Newest build under <state dir>/models/monovec-classifier (what `classifier build` writes by default)."""
    root = root or state_dir() / "models" / "monovec-classifier"
    candidates = sorted(p for p in root.glob("*") if (p / "model.json").is_file()) if root.is_dir() else []
    if not candidates:
        raise FileNotFoundError(
            f"no classifier found under {root}; build one with `monovec classifier build --config jobs/configs/classifier.yaml` "
            "or pass --model DIR|models:/name/version"
        )
    return candidates[-1]


def resolve_model_ref(ref: str | None) -> Path:
    """`ref` may be a directory, `models:/name/version`, `models:/name@alias`; None = $MONOVEC_MODEL or newest local build."""
    ref = ref or os.environ.get("MONOVEC_MODEL")
    if not ref:
        return latest_local_model()
    from monovec.tracking.mlflow_store import resolve_model

    return resolve_model(ref)


def load_pipeline(ref: str | None = None, threads: int | None = None, encoder: TextEncoder | None = None, escalator: Escalator | None = None) -> ClassifierPipeline:
    model = ClassifierModel.load(resolve_model_ref(ref))
    if threads is not None:
        model.config.encoder.threads = threads
    return ClassifierPipeline(model, encoder=encoder, escalator=escalator)
