"""Loading a classifier for use: from a directory, the registry, or the newest local build.

Shared by the CLI, jobs and Serve deployments so "which model am I running" has one answer.
"""

from __future__ import annotations

import os
from collections.abc import Callable
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


def resolve_model_ref(ref: str | None, note: Callable[[str], None] | None = None) -> Path:
    """The model folder for `ref`: a model folder, a folder of versions (`--out` of a build: the newest
    is taken and `note` says which), `models:/name/version` or `models:/name@alias`; None means
    $MONOVEC_MODEL, else the newest local build.

    Raises:
        FileNotFoundError: nothing found for `ref` (the message says where it looked).
    """
    ref = ref or os.environ.get("MONOVEC_MODEL")
    if not ref:
        return latest_local_model()
    if not ref.startswith("models:/"):
        from monovec.model_dirs import find_model_dir

        path, message = find_model_dir(ref, "classifier")
        if message and note is not None:
            note(message)
        return path
    from monovec.tracking.mlflow_store import resolve_model

    return resolve_model(ref)


def load_pipeline(
    ref: str | None = None,
    threads: int | None = None,
    encoder: TextEncoder | None = None,
    escalator: Escalator | None = None,
    note: Callable[[str], None] | None = None,
) -> ClassifierPipeline:
    """A ready pipeline for `ref` (see `resolve_model_ref`); `threads` overrides the encoder's thread count."""
    model = ClassifierModel.load(resolve_model_ref(ref, note))
    if threads is not None:
        model.config.encoder.threads = threads
    pipe = ClassifierPipeline(model, encoder=encoder, escalator=escalator)
    pipe.warm_up()
    return pipe
