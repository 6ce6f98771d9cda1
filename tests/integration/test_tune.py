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


def test_tiny_sweep_logs_to_mlflow_and_feeds_a_build(
    ray_session: None, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    from monovec.classify.model import ClassifierModel
    from monovec.cli.main import app

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    # the same slice (and embedding cache) as the session's tiny model: embeddings are cache hits
    base_overrides = tiny_build_overrides(tmp_path / "models")
    job = yaml.safe_load((REPO / "jobs/configs/tune_classifier.yaml").read_text())
    job["base_overrides"] = base_overrides
    job["classifier"]["session_size"] = 3
    config = tmp_path / "tune.yaml"
    config.write_text(yaml.safe_dump(job))
    out = tmp_path / "sweep"

    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "tune",
            "run",
            "--space",
            str(REPO / "tune_spaces/prototype_thresholds.yaml"),
            "--config",
            str(config),
            "--num-samples",
            "8",
            "--out",
            str(out),
        ],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    assert "untuned defaults" in res.output and "trials/min" in res.output  # progress lines while it runs

    for name in (
        "best.yaml",
        "trials.csv",
        "top_trials.csv",
        "summary.json",
        "objective.png",
        "pareto.csv",
        "pareto.png",
    ):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trials"] == 8 and summary["errors"] == 0 and summary["trials_per_minute"] > 0
    # the defaults were trial 0, scored exactly as the driver scored them, so best >= baseline by construction
    assert summary["baseline_trial_objective"] == pytest.approx(summary["baseline_objective"], abs=1e-9)
    assert summary["best_objective"] >= summary["baseline_objective"]
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert len(rows) == 8 and rows[0]["trial"] == "0"
    assert (
        float(rows[0]["classifier.heads.emotion.gate.T_max"]) == 0.35
        and rows[0]["classifier.heads.emotion.prototypes.multi_k"] == "3"
    )
    assert (
        len({r["classifier.heads.emotion.gate.T_max"] for r in rows}) == 8
    )  # the searcher really moved the parameters

    best = yaml.safe_load((out / "best.yaml").read_text())
    assert best["objective"] == pytest.approx(summary["best_objective"]) and len(best["overrides"]) == 15

    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("monovec-tune")
    parent = client.get_run(summary["mlflow_run_id"])
    children = client.search_runs(
        [exp.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert len(children) == 8
    assert {"objective", "decided_macro_f1", "escalation_rate", "coverage", "aurc"} <= set(
        children[0].data.metrics
    )
    assert "classifier.heads.ethics.linear.threshold" in children[0].data.params
    assert parent.data.metrics["best_objective"] == pytest.approx(summary["best_objective"])
    assert {"best.yaml", "trials.csv", "objective.png"} <= {
        a.path for a in client.list_artifacts(parent.info.run_id)
    }

    # the winner becomes a new classifier version (the treatment of an A/B experiment), straight from the run id
    res = runner.invoke(
        app,
        ["classifier", "build", "--from-tune", parent.info.run_id, *base_overrides, "evaluate=false"],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    model = ClassifierModel.load(Path(res.output.strip().splitlines()[-1]))
    tuned = best["overrides"]
    assert model.config.heads["emotion"].gate.T_max == pytest.approx(
        tuned["classifier.heads.emotion.gate.T_max"]
    )
    assert model.config.heads["ethics"].linear.threshold == pytest.approx(
        tuned["classifier.heads.ethics.linear.threshold"]
    )
    assert model.config.context.alpha == pytest.approx(tuned["classifier.context.alpha"])


def test_a_sweep_whose_driver_died_resumes_on_the_same_out(
    ray_session: None, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """`jobs/tune.py` is SIGKILLed once Tune has saved >= 2 finished trials of 12; `monovec tune run` on the same
    --out restores the experiment (Tuner.restore) and runs only the rest: every trial once in trials.csv, the
    search continued (the untuned defaults are not proposed again, no parameter vector twice), one MLflow
    parent run (opened by the killed driver) with all 12 child runs. A finished sweep's --out is refused.

    The killed driver runs with `faults.driver_step_delay_s` and saves its state after every step: its trials
    (milliseconds each on a warm embedding cache) then finish at most one per 0.3 s step, so the saved state
    passes through every count from 0 to 12 and the 0.2 s poll below cannot miss the window. The rerun's
    config leaves the switch off (fault switches are not part of the sweep's identity)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import mlflow
    import ray

    from monovec.cli.main import app
    from monovec.tuning.progress import finished_rows
    from monovec.tuning.resume import saved_state_problem
    from monovec.tuning.runner import saved_trials

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    job = yaml.safe_load((REPO / "jobs/configs/tune_classifier.yaml").read_text())
    job["base_overrides"] = tiny_build_overrides(tmp_path / "models")
    job["classifier"]["session_size"] = 3
    job["tracking"]["uri"] = uri
    config = tmp_path / "tune.yaml"
    config.write_text(yaml.safe_dump(job))
    slow_config = tmp_path / "tune_slow_driver.yaml"
    slow_config.write_text(yaml.safe_dump({**job, "faults": {"driver_step_delay_s": 0.3}}))
    out = tmp_path / "sweep"
    args = [
        "--space",
        str(REPO / "tune_spaces/prototype_thresholds.yaml"),
        "--config",
        str(config),
        "--num-samples",
        "12",
        "--out",
        str(out),
    ]

    # The driver joins the shared Ray (its trial actors die with it). Tune saves its experiment state every
    # >= 10 s by default; after every step here (0 s) so the state follows the trials. The driver is frozen
    # (SIGSTOP) while the saved state is read, so the state checked is exactly the state it dies with.
    env = {**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "0"}
    log = (tmp_path / "driver.log").open("w")
    slow_args = [str(slow_config) if a == str(config) else a for a in args]
    driver = subprocess.Popen(
        [sys.executable, "jobs/tune.py", *slow_args, "--address", ray.get_runtime_context().gcs_address],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    killed_with, deadline = 0, time.monotonic() + 300  # a bound, not a timing assertion
    try:
        while driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            if not (out / "sweep.json").is_file():
                continue
            experiment = out / json.loads((out / "sweep.json").read_text())["experiment"]
            driver.send_signal(signal.SIGSTOP)
            if saved_state_problem(experiment) is None:
                killed_with = len(finished_rows(saved_trials(experiment), []))
                if killed_with >= 2:
                    driver.send_signal(signal.SIGKILL)
                    break
            driver.send_signal(signal.SIGCONT)
    finally:
        driver.kill()
        driver.wait()
        log.close()
    assert 2 <= killed_with < 12, (tmp_path / "driver.log").read_text()[-3000:]  # killed mid-sweep
    assert not (out / "summary.json").exists()

    runner = CliRunner()
    res = runner.invoke(app, ["tune", "run", *args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert f"resumed {killed_with} finished trials of 12" in res.output, (
        res.output
    )  # restored, not started over
    record = json.loads((out / "sweep.json").read_text())
    assert record["finished"] is True and record["resumes"] == 1
    parent_id = record["mlflow_run_id"]  # opened by the killed driver, continued by the rerun
    summary = json.loads((out / "summary.json").read_text())
    assert (
        summary["trials"] == 12
        and summary["resumed_trials"] == killed_with
        and summary["mlflow_run_id"] == parent_id
    )

    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert [r["trial"] for r in rows] == [str(i) for i in range(12)] and len(
        {r["trial_id"] for r in rows}
    ) == 12
    params = [k for k in rows[0] if k.startswith("classifier.")]
    assert (
        len({tuple(r[k] for k in params) for r in rows}) == 12
    )  # a restarted search would propose the defaults again
    assert float(rows[0]["classifier.heads.emotion.gate.T_max"]) == 0.35  # trial 0 = the untuned defaults

    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("monovec-tune")
    sweeps = client.search_runs([exp.experiment_id], filter_string="tags.`monovec.kind` = 'tune-sweep'")
    assert [r.info.run_id for r in sweeps] == [parent_id] and sweeps[0].info.status == "FINISHED"
    children = client.search_runs(
        [exp.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'"
    )
    assert sorted(c.data.tags["monovec.trial_id"] for c in children) == sorted(r["trial_id"] for r in rows)

    again = runner.invoke(app, ["tune", "run", *args])  # a finished sweep is not run again
    assert again.exit_code == 2 and "finished sweep" in again.output
