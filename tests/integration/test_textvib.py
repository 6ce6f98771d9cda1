"""TextVibCLIP on Ray Train with a real CWRU slice: the smoke run learns, and a killed worker resumes exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monovec.faults import FaultConfig, InjectedFault
from tests.conftest import REPO

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def smoke(ray_session: None, data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """textvib_smoke.yaml (2 domains x 9 classes, 24 training windows per recording), in-process, MLflow + plots on."""
    from monovec.config import load_config
    from monovec.textvib.config import TextVibConfig
    from monovec.textvib.train import run_training

    root = tmp_path_factory.mktemp("textvib")
    overrides = [
        f"out_dir={root / 'smoke'}",
        "plots=true",
        "tracking.enabled=true",
        f"tracking.uri=sqlite:///{root / 'mlflow.db'}",
    ]
    cfg = load_config(TextVibConfig, REPO / "jobs/configs/textvib_smoke.yaml", overrides)
    return root, cfg, run_training(cfg, progress=lambda _m: None)


def test_smoke_run_learns_and_writes_a_usable_model(smoke, data_dir: Path) -> None:
    from monovec.textvib.evaluate import evaluate_folder

    _, cfg, result = smoke
    m = result.metrics
    # 9 classes: chance is 0.11
    assert m["average_accuracy"] > 0.6, m["accuracy_matrix"]
    assert len(m["accuracy_matrix"]) == 2 and m["mean_t2v_top5"] > 0.6
    assert m["mean_within_class_cos"] > m["mean_between_class_cos"] + 0.3
    report = result.model_dir / "report"
    assert (report / "accuracy_matrix.png").stat().st_size > 1000 and (
        report / "pca_per_domain.png"
    ).stat().st_size > 1000
    assert (
        json.loads((result.run_dir / "metrics.json").read_text())["average_accuracy"] == m["average_accuracy"]
    )
    assert result.registered is not None and result.registered["version"] == "1"
    # the evaluate command's code path on the shared folder reproduces the run's own test numbers
    ev = evaluate_folder(result.model_dir, data_dir / "cwru", domains=["1797", "1772"])
    for d in ("1797", "1772"):
        assert ev["domains"][d]["accuracy"] == pytest.approx(m["per_domain"][d]["accuracy"])


def test_worker_failure_resumes_from_the_checkpoint(smoke, monkeypatch: pytest.MonkeyPatch) -> None:
    """One Ray Train worker raises at the start of epoch 4 of 7; FailureConfig restarts it from epoch 3's checkpoint."""
    # the controller polls its workers every 2 s by default: poll faster so failure and finish are seen sooner
    monkeypatch.setenv("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.5")
    root, cfg, clean = smoke
    run = root / "failing"
    failing = cfg.model_copy(
        update={
            "out_dir": str(run),
            "plots": False,
            "scaling": cfg.scaling.model_copy(update={"num_workers": 1, "max_failures": 1}),
            "faults": FaultConfig(fail_at_epoch=4),
            "tracking": cfg.tracking.model_copy(update={"enabled": False}),
        }
    )
    from monovec.textvib.train import run_training

    result = run_training(failing, progress=lambda _m: None)
    assert (run / ".injected_failure").read_text() == "4"  # it did fail
    history = result.metrics["history"]  # from the final checkpoint
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5, 6, 7]  # nothing redone, nothing skipped
    assert [h["restarts"] for h in history] == [0, 0, 0, 1, 1, 1, 1]  # epochs 4.. ran after the restore
    # same seeds, same data, resumed state: the same final numbers as the uninterrupted run
    for a, b in zip(result.metrics["accuracy_matrix"], clean.metrics["accuracy_matrix"], strict=True):
        assert a == pytest.approx(b, abs=1e-6)
    assert result.metrics["forgetting"] == pytest.approx(clean.metrics["forgetting"], abs=1e-6)


def test_killed_zero_worker_run_resumes_on_the_same_out(smoke) -> None:
    """`scaling.num_workers: 0` (Train v2 local mode, no controller): the loop dies at the start of epoch 4;
    the rerun on the same run directory resumes from epoch 3's on-disk checkpoint, not from epoch 1."""
    from monovec.raytrain import STATE_FILE
    from monovec.textvib.train import run_training

    root, cfg, clean = smoke
    run = root / "killed0"
    failing = cfg.model_copy(
        update={
            "out_dir": str(run),
            "plots": False,
            "scaling": cfg.scaling.model_copy(update={"num_workers": 0}),
            "faults": FaultConfig(fail_at_epoch=4),
            "tracking": cfg.tracking.model_copy(update={"enabled": False}),
        }
    )
    with pytest.raises(InjectedFault):  # local mode has no FailureConfig retry: the driver dies
        run_training(failing, progress=lambda _m: None)
    ckpts = run / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["epoch_0002", "epoch_0003"]
    # what a kill during the next checkpoint write leaves behind must not be taken for a checkpoint
    (ckpts / "epoch_0004.tmp").mkdir()
    (ckpts / "epoch_0004.tmp" / STATE_FILE).write_bytes(b"half-written")
    said: list[str] = []
    result = run_training(failing, progress=said.append)
    assert any("resumed from a checkpoint" in m for m in said), said
    history = result.metrics["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5, 6, 7]
    assert [h["restarts"] for h in history] == [0, 0, 0, 1, 1, 1, 1]  # epochs 1-3 come from the checkpoint
    for a, b in zip(result.metrics["accuracy_matrix"], clean.metrics["accuracy_matrix"], strict=True):
        assert a == pytest.approx(b, abs=1e-6)
    assert result.metrics["forgetting"] == pytest.approx(clean.metrics["forgetting"], abs=1e-6)
    assert sorted(p.name for p in ckpts.iterdir()) == ["epoch_0006", "epoch_0007"]
    # killed after the last checkpoint (while finalizing): the rerun trains nothing and finalizes the same model
    again = run_training(failing, progress=lambda _m: None)
    assert [h["epoch"] for h in again.metrics["history"]] == [1, 2, 3, 4, 5, 6, 7]
    assert again.metrics["accuracy_matrix"] == result.metrics["accuracy_matrix"]
