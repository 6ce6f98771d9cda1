"""The encoder fine-tuning job on real slices: 2 gloo workers learn and register; an injected worker failure
resumes to the same final numbers; a killed local (0-worker) run resumes on the same out_dir; a classifier
built on the fine-tuned encoder pins it, embeds its drift reference with it and loads it back.

Cost (2 shared cores): ~2 min, most of it starting Ray Train worker groups (clean run, failing run, restart)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, tiny_build_overrides

pytestmark = pytest.mark.integration
NAME = "it-encoder"


def slice_overrides(out: Path, cache: Path) -> list[str]:
    """The first rows of each task's files (read fast); 2 epochs, 2 gloo workers; the session's default MLflow store."""
    rows = {"emotion": 96, "kmhas": 48, "davidson": 48}
    return [
        *[f"tasks.{t}.train.0.max_rows={n}" for t, n in rows.items()], *[f"tasks.{t}.dev.0.max_rows=48" for t in rows], "tasks.safety.enabled=false",
        "loss.geometry=3",  # the learning checks are set for the earlier defaults: with geometry 30 and the
        # safety task, these 2 tiny epochs moved emotion F1 by only 0.006 (the loader of that task: a unit test)
        "loss.geometry_anchor_task=safety", "loss.geometry_anchor_batch=8",  # split over the 2 workers, drawn
        # per step: the resume test below also checks that a restarted group draws the same anchors
        "train.calibration_holdout=0",  # the slices are a file's first rows: the holdout would take a sixth of
        # them, and these checks measure learning, not the holdout (tests/unit/test_holdout.py does)
        "train.epochs=2", "train.batch_size=16", "train.warmup_steps=5", "train.lr=0.003", "train.threads=1",
        "train.geometry_sample=100", "scaling.num_workers=2", "scaling.cpus_per_worker=1", "scaling.max_failures=1",
        f"out_dir={out}", f"cache_dir={cache}", f"tracking.registered_model={NAME}", "tracking.experiment=it-encoder",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def clean(
    ray_session: None,
    data_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch_module: pytest.MonkeyPatch,
):
    from monovec.config import load_config
    from monovec.finetune.config import FinetuneConfig
    from monovec.finetune.train import run_finetune

    monkeypatch_module.setenv("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.5")  # see failures and finishes sooner
    root = tmp_path_factory.mktemp("encoder")
    cfg = load_config(
        FinetuneConfig,
        REPO / "jobs/configs/encoder_finetune.yaml",
        slice_overrides(root / "clean", root / "cache"),
    )
    return root, cfg, run_finetune(cfg, progress=lambda _m: None)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_two_workers_learn_export_and_register(clean) -> None:
    from monovec.embed.finetuned import read_manifest
    from monovec.embed.text import EncoderConfig, build_encoder

    _, _, result = clean
    history = json.loads((result.run_dir / "metrics.json").read_text())["history"]
    first, last = history[0], result.metrics
    assert [h["epoch"] for h in history] == [1, 2]
    assert last["train_ce"] < first["train_ce"]  # the multi-task loss went down ...
    for task in ("emotion", "kmhas", "davidson"):  # ... and every head's dev cross-entropy with it
        assert last[f"{task}_dev_ce"] < first[f"{task}_dev_ce"] - 0.05, task
    assert last["emotion_macro_f1"] > first["emotion_macro_f1"] + 0.03
    for key in (
        "emotion_en_macro_f1",
        "emotion_ko_macro_f1",
        "kmhas_harm_f1",
        "davidson_harm_f1",
        "alignment_top1",
        "geometry_corr",
    ):
        assert key in last, key
    assert (
        0.0 < last["geometry_corr"] < 0.99 and last["alignment_top1"] > 0.8
    )  # it moved; translations still pair up
    manifest = read_manifest(result.model_dir)
    assert manifest["trainable"] == ["ngram", "pool", "dan"] and manifest["epochs"] == 2
    assert result.registered is not None and result.registered["name"] == NAME
    enc = build_encoder(EncoderConfig(name=f"models:/{NAME}@newest", threads=1))
    assert enc.name == f"use-m3-ft:{manifest['digest'][:16]}"
    frozen = build_encoder(EncoderConfig(name="use-m3", threads=1))
    texts = ["오늘 정말 행복해요", "this is so frustrating"]
    assert (
        float(np.sum(enc.encode(texts) * frozen.encode(texts), axis=1).min()) < 0.9999
    )  # the served weights changed


def test_worker_failure_resumes_to_the_same_final_metrics(clean) -> None:
    """A worker raises at the start of epoch 2; FailureConfig restarts the group from epoch 1's checkpoint."""
    from monovec.faults import FaultConfig
    from monovec.finetune.train import run_finetune

    root, cfg, ref = clean
    failing = cfg.model_copy(update={
        "out_dir": str(root / "failing"), "faults": FaultConfig(fail_at_epoch=2),
        "tracking": cfg.tracking.model_copy(update={"enabled": False}),
    })  # fmt: skip
    result = run_finetune(failing, progress=lambda _m: None)
    assert (root / "failing" / ".injected_failure").read_text() == "2"  # it did fail
    history = json.loads((result.run_dir / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2] and [h["restarts"] for h in history] == [0, 1]
    for key in (
        "train_loss",
        "emotion_en_macro_f1",
        "emotion_ko_macro_f1",
        "kmhas_harm_f1",
        "davidson_harm_f1",
        "geometry_corr",
    ):
        assert result.metrics[key] == pytest.approx(ref.metrics[key], abs=1e-6), key


def test_killed_local_run_resumes_on_the_same_out_dir(clean) -> None:
    """0 workers (Ray Train local mode, no controller): an exception kills the run at the start of epoch 2;
    running again on the same out_dir picks up epoch 1's checkpoint from <out_dir>/checkpoints."""
    from monovec.faults import FaultConfig, InjectedFault
    from monovec.finetune.train import run_finetune

    root, cfg, _ = clean
    killed = cfg.model_copy(update={
        "out_dir": str(root / "local"), "faults": FaultConfig(fail_at_epoch=2),
        "scaling": cfg.scaling.model_copy(update={"num_workers": 0}), "tracking": cfg.tracking.model_copy(update={"enabled": False}),
    })  # fmt: skip
    with pytest.raises(InjectedFault):
        run_finetune(killed, progress=lambda _m: None)
    assert sorted(p.name for p in (root / "local" / "checkpoints").iterdir()) == ["epoch_0001"]
    import torch

    before = torch.load(root / "local" / "checkpoints" / "epoch_0001" / "state.pt", weights_only=False)[
        "history"
    ][0]
    resumed = run_finetune(killed, progress=lambda _m: None)
    history = json.loads((resumed.run_dir / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2] and [h["restarts"] for h in history] == [0, 1]
    assert history[0]["train_loss"] == before["train_loss"]  # epoch 1 was not redone


def test_classifier_on_the_finetuned_encoder_pins_it_and_serving_loads_it(
    clean, tiny_model_dir: Path
) -> None:
    from monovec.classify.build import BuildConfig, build_classifier
    from monovec.classify.service import load_pipeline
    from monovec.config import load_config
    from monovec.embed.cache import embed_texts
    from monovec.embed.text import EncoderConfig

    root, _, result = clean
    digest = json.loads((result.model_dir / "encoder.json").read_text())["digest"]
    version = result.registered["version"]
    overrides = tiny_build_overrides(root / "models", rows=200) + [
        f"classifier.encoder.name=models:/{NAME}@newest", "evaluate=false"]  # fmt: skip
    built = build_classifier(
        load_config(BuildConfig, REPO / "jobs/configs/classifier_finetuned.yaml", overrides),
        progress=lambda _m: None,
    )
    manifest = json.loads((built.model_dir / "model.json").read_text())
    assert manifest["encoder"]["ref"] == f"models:/{NAME}@newest"
    assert (
        manifest["encoder"]["pinned"] == f"models:/{NAME}/{version}"
        and manifest["encoder"]["digest"] == digest
    )
    saved = (built.model_dir / "config.yaml").read_text()
    assert f"models:/{NAME}/{version}" in saved and digest in saved  # the exact version, not the moving alias
    # the drift reference was embedded with the fine-tuned encoder, not the frozen one
    pipe = load_pipeline(str(built.model_dir), threads=1)
    assert pipe.encoder.name == f"use-m3-ft:{digest[:16]}"
    ref = np.load(built.model_dir / "reference.npy")
    lines = (
        (REPO.parent / "shared/data/goemotions/train.jsonl").read_text(encoding="utf-8").splitlines()[:200]
    )
    texts = [json.loads(line)["text_en"] for line in lines]
    tuned = pipe.embed(texts)
    frozen = embed_texts([pipe.validate(t) for t in texts], EncoderConfig(name="use-m3", threads=1))
    assert np.max(ref @ tuned.T, axis=1).mean() > np.max(ref @ frozen.T, axis=1).mean()
    assert float(np.max(ref @ tuned.T, axis=1).max()) > 0.9999
    out = pipe.classify("오늘 너무 행복해서 웃음이 나요", escalate=False)
    assert out["model_version"] == built.version and set(out["heads"]) == {"emotion", "ethics"}
