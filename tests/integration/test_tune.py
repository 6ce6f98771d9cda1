"""A tiny real sweep end to end on the shared local Ray: `monovec tune run` (Optuna TPE, 8 trials on a
small slice of GoEmotions / K-MHaS) -> MLflow parent + child runs -> best.yaml -> `monovec classifier
build --from-tune RUN_ID` builds a version with the tuned thresholds.

best >= baseline holds by construction, not by luck: the untuned defaults are the first point the
search evaluates (OptunaSearch points_to_evaluate) and the best trial is the max over all trials.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import REPO, tiny_build_overrides

pytestmark = pytest.mark.integration


def test_tiny_sweep_logs_to_mlflow_and_feeds_a_build(ray_session: None, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    from monovec.classify.model import ClassifierModel
    from monovec.cli.main import app

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    # the same slice (and embedding cache) as the session's tiny model: embeddings are cache hits
    base_overrides = tiny_build_overrides(tmp_path / "models", tiny_model_dir.parents[1] / "cache")
    job = yaml.safe_load((REPO / "jobs/configs/tune_classifier.yaml").read_text())
    job["base_overrides"] = base_overrides
    job["classifier"]["session_size"] = 3
    config = tmp_path / "tune.yaml"
    config.write_text(yaml.safe_dump(job))
    out = tmp_path / "sweep"

    runner = CliRunner()
    res = runner.invoke(app, ["tune", "run", "--space", str(REPO / "tune_spaces/prototype_thresholds.yaml"), "--config", str(config),
                              "--num-samples", "8", "--out", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "untuned defaults" in res.output and "trials/min" in res.output  # progress lines while it runs

    for name in ("best.yaml", "trials.csv", "top_trials.csv", "summary.json", "objective.png", "pareto.csv", "pareto.png"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trials"] == 8 and summary["errors"] == 0 and summary["trials_per_minute"] > 0
    # the defaults were trial 0, scored exactly as the driver scored them, so best >= baseline by construction
    assert summary["baseline_trial_objective"] == pytest.approx(summary["baseline_objective"], abs=1e-9)
    assert summary["best_objective"] >= summary["baseline_objective"]
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert len(rows) == 8 and rows[0]["trial"] == "0"
    assert float(rows[0]["classifier.heads.emotion.gate.T_max"]) == 0.35 and rows[0]["classifier.heads.emotion.prototypes.multi_k"] == "3"
    assert len({r["classifier.heads.emotion.gate.T_max"] for r in rows}) == 8  # the searcher really moved the parameters

    best = yaml.safe_load((out / "best.yaml").read_text())
    assert best["objective"] == pytest.approx(summary["best_objective"]) and len(best["overrides"]) == 15

    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("monovec-tune")
    parent = client.get_run(summary["mlflow_run_id"])
    children = client.search_runs([exp.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 8
    assert {"objective", "decided_macro_f1", "escalation_rate", "coverage", "aurc"} <= set(children[0].data.metrics)
    assert "classifier.heads.ethics.linear.threshold" in children[0].data.params
    assert parent.data.metrics["best_objective"] == pytest.approx(summary["best_objective"])
    assert {"best.yaml", "trials.csv", "objective.png"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}

    # the winner becomes a new classifier version (the treatment of an A/B experiment), straight from the run id
    res = runner.invoke(app, ["classifier", "build", "--from-tune", parent.info.run_id, *base_overrides, "evaluate=false"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    model = ClassifierModel.load(Path(res.output.strip().splitlines()[-1]))
    tuned = best["overrides"]
    assert model.config.heads["emotion"].gate.T_max == pytest.approx(tuned["classifier.heads.emotion.gate.T_max"])
    assert model.config.heads["ethics"].linear.threshold == pytest.approx(tuned["classifier.heads.ethics.linear.threshold"])
    assert model.config.context.alpha == pytest.approx(tuned["classifier.context.alpha"])
