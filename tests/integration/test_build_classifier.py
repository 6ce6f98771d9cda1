"""The build job end to end on a small real slice: Ray tasks embed, MLflow registers, metrics move."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REPO, tiny_build_overrides

pytestmark = pytest.mark.integration


def test_build_on_ray_registers_and_beats_chance(ray_session: None, data_dir: Path, tmp_path: Path) -> None:
    from monovec.classify.build import BuildConfig, build_classifier
    from monovec.classify.model import ClassifierModel
    from monovec.config import load_config
    from monovec.tracking.mlflow_store import resolve_model

    overrides = tiny_build_overrides(tmp_path / "models", rows=3000)
    overrides = [o for o in overrides if not o.startswith(("tracking.enabled", "ray.embed_shards", "classifier.encoder.threads"))]
    overrides += ["tracking.enabled=true", f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}", "ray.embed_shards=2", "classifier.encoder.threads=1"]
    cfg = load_config(BuildConfig, REPO / "jobs/configs/classifier.yaml", overrides)
    logs: list[str] = []
    result = build_classifier(cfg, progress=logs.append)

    # the metric moved: 7-class chance macro-F1 is ~0.14, 9-class ~0.11, harmful-vs-not F1 of "all harmful" is ~0.6
    m = result.metrics
    assert m["emotion.en.pipeline.macro_f1"] > 0.30, m
    assert m["emotion.ko.pipeline.macro_f1"] > 0.25, m
    assert m["safety.kmhas_dev.all.harmful_block.f1"] > 0.65, m
    assert m["safety.davidson_dev.en.harmful_not_allow.f1"] > 0.75, m
    assert m["emotion.all.linear_only.macro_f1"] > m["emotion.all.prototype_only.macro_f1"] - 0.05
    assert any("embedded" in line for line in logs)

    reg = result.registered
    assert reg is not None and reg["version"] == "1"
    local = resolve_model(f"models:/{reg['name']}/1", uri=reg["tracking_uri"], dst=tmp_path / "from_registry")
    again = ClassifierModel.load(local)
    assert again.version == result.version
    assert json.loads((local / "report.json").read_text())["emotion"]["n"] > 100
