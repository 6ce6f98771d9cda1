"""The continual loop without Ray on a tiny synthetic stream: it learns, resumes exactly, saves, evaluates."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

from monovec.config import apply_overrides
from monovec.textvib.config import TextVibConfig
from monovec.textvib.data import load_domains, synth_recording
from monovec.textvib.data import parse_class as _parse
from monovec.textvib.text import TextTable, describe

TINY = [
    "data.source=synthetic",
    "data.domains=['1797','1730']",
    "data.classes=[IR_7,B_7,OR@6_7]",
    "data.synth.noise=0.1",
    "data.window.length=1024",
    "data.window.hop=512",
    "data.synth.seconds=3",
    "data.max_train_windows=32",
    "data.max_eval_windows=16",
    "model.embed_dim=16",
    "model.vib.channels=[16,16,32]",
    "model.vib.first_kernel=16",
    "model.vib.first_stride=4",
    "model.residual_projection.num_layers=1",
    "model.text.adapter_hidden=8",
    "train.epochs_per_domain=3",
    "train.first_domain_stage1_epochs=1",
    "train.batch_size=16",
    "train.lr=0.003",
    "continual.replay.capacity=12",
    "continual.replay.batch_size=6",
    "tracking.enabled=false",
]


def tiny_config(extra: list[str] | None = None) -> TextVibConfig:
    return TextVibConfig.model_validate(apply_overrides({}, TINY + (extra or [])))


def fake_texts(cfg: TextVibConfig, dim: int = 32) -> TextTable:
    """Descriptions as in a real run, embeddings random but fixed (no text encoder needed)."""
    rng = np.random.default_rng(0)
    texts, langs, doms, labels = [], [], [], []
    for d in cfg.data.domains:
        for c in cfg.data.classes:
            for lang, t in describe(_parse(c), float(d), None, ["en"])[:2]:
                texts.append(t)
                langs.append(lang)
                doms.append(d)
                labels.append(c)
    class_vec = {c: rng.normal(size=dim) for c in cfg.data.classes}
    emb = np.stack([class_vec[c] + 0.3 * rng.normal(size=dim) for c in labels]).astype(np.float32)
    return TextTable(texts, langs, doms, labels, emb / np.linalg.norm(emb, axis=1, keepdims=True))


@pytest.fixture(scope="module")
def stream() -> tuple[TextVibConfig, list, TextTable]:
    cfg = tiny_config()
    return cfg, load_domains(cfg.data), fake_texts(cfg)


@pytest.fixture(scope="module")
def trained(stream) -> tuple:
    """One uninterrupted run, shared by the tests below."""
    from monovec.textvib.engine import ContinualLearner

    cfg, domains, texts = stream
    learner = ContinualLearner(cfg, domains, texts)
    seen: list[dict] = []
    learner.run(seen.append)
    return learner, seen


def test_learns_above_chance_and_fills_the_matrix(stream, trained) -> None:
    from monovec.textvib.engine import plan

    cfg, _, _ = stream
    assert [(p.domain, p.stage, p.epochs, p.first_epoch) for p in plan(cfg)] == [
        (0, 1, 1, 1),
        (0, 2, 3, 2),
        (1, 2, 3, 5),
    ]
    learner, seen = trained
    assert [m["epoch"] for m in seen] == [1, 2, 3, 4, 5, 6, 7]
    assert len(learner.acc_matrix) == 2 and all(len(r) == 2 for r in learner.acc_matrix)
    assert np.mean(learner.acc_matrix[-1]) > 0.8  # 3 classes: chance is 0.33
    assert "loss_rkd" in seen[-1] and "acc_row" in seen[-1] and len(learner.replay) == 12
    assert learner.replay.embeddings.shape == (12, 16)


def test_resume_from_a_checkpoint_is_exact(stream, trained) -> None:
    from monovec.textvib.engine import ContinualLearner

    cfg, domains, texts = stream
    straight = trained[0]
    first = ContinualLearner(cfg, domains, texts)
    for g in (1, 2, 3):  # stop in the middle of domain 0's stage 2 (optimizer state must carry over)
        first.train_epoch(g)
    buf = io.BytesIO()
    torch.save(first.state_dict(), buf)
    buf.seek(0)
    resumed = ContinualLearner(cfg, domains, texts)
    resumed.load_state_dict(torch.load(buf, weights_only=False))
    assert resumed.epoch_done == 3 and resumed.restarts == 1
    resumed.run()
    assert resumed.acc_matrix == straight.acc_matrix
    for k, v in straight.net.state_dict().items():
        torch.testing.assert_close(resumed.net.state_dict()[k], v, atol=1e-6, rtol=0, msg=k)
    assert [h["restarts"] for h in resumed.history] == [0, 0, 0, 1, 1, 1, 1]


def test_plain_clip_configuration_has_no_extra_parts(stream) -> None:
    from monovec.textvib.engine import ContinualLearner

    cfg, domains, texts = stream
    off = tiny_config(
        [
            "model.prototypes.enabled=false",
            "model.similarity.multi_positive=false",
            "model.residual_projection.enabled=false",
            "model.similarity.bilinear_enabled=false",
            "model.regularizers.rkd_enabled=false",
            "continual.replay.enabled=false",
            "model.procrustes_init=false",
            "train.first_domain_stage1_epochs=0",
        ]
    )
    learner = ContinualLearner(off, domains, texts)
    assert learner.net.bilinear_w is None and learner.replay is None
    m = learner.train_epoch(1)
    assert set(k for k in m if k.startswith("loss_")) == {"loss_infonce"}


def test_saved_model_evaluates_a_folder_through_the_cli(stream, trained, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from monovec.cli.main import app
    from monovec.textvib.artifacts import load_model_dir, save_model_dir

    cfg, _, texts = stream
    learner = trained[0]
    model_dir = save_model_dir(
        tmp_path / "model", cfg, learner.net.state_dict(), texts, {"average_accuracy": 1.0}
    )
    assert load_model_dir(model_dir).net.prototypes.shape == (3, 16)
    for d in cfg.data.domains:  # the same recordings, written in the shared layout
        (tmp_path / "data" / d).mkdir(parents=True)
        for c in cfg.data.classes:
            rec = synth_recording(d, c, cfg.data)
            np.savez(tmp_path / "data" / d / f"{c}.npz", DE=rec.signal, rpm=int(d), fs=rec.fs)
    report_path = tmp_path / "report.json"
    res = CliRunner().invoke(
        app,
        [
            "textvib",
            "evaluate",
            "--model",
            str(model_dir),
            "--data",
            str(tmp_path / "data"),
            "--out",
            str(report_path),
        ],
    )
    assert res.exit_code == 0, res.output
    import json

    report = json.loads(report_path.read_text())
    expected = learner.acc_matrix[-1]
    assert [report["domains"][d]["accuracy"] for d in ["1797", "1730"]] == pytest.approx(expected)
    assert report["average_accuracy"] == pytest.approx(np.mean(expected))
    assert "average_accuracy=" in res.output
    runs = CliRunner().invoke(
        app, ["textvib", "evaluate", "--model", str(tmp_path), "--data", str(tmp_path / "data")]
    )
    assert runs.exit_code == 0 and "average_accuracy=" in runs.output  # a run folder: its model/
    bad = CliRunner().invoke(
        app, ["textvib", "evaluate", "--model", str(tmp_path / "data"), "--data", str(tmp_path / "data")]
    )
    assert bad.exit_code == 3 and "model.json" in bad.output
