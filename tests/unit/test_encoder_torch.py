"""The torch USE-m3 against the numpy package (real texts), its export layout, and fine-tuned references."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from monovec.embed.finetuned import EncoderRefError, identity, resolve_encoder
from monovec.embed.text import EncoderConfig, build_encoder, encoder_identity, encoder_pin, pin_encoder
from monovec.embed.use_torch import (
    Tokenizer,
    UseM3Module,
    load_weights,
    pad_ids,
    quantise_table,
    weights_digest,
)


@pytest.fixture(scope="module")
def weights() -> dict[str, np.ndarray]:
    return load_weights()


@pytest.fixture(scope="module")
def real_texts(data_dir: Path) -> list[str]:
    """Real GoEmotions (en + ko) and K-MHaS comments, short and long."""
    rows = [
        json.loads(line)
        for line in (data_dir / "goemotions" / "dev.jsonl").read_text(encoding="utf-8").splitlines()[:40]
    ]
    kmhas = [
        json.loads(line)["text"]
        for line in (data_dir / "kmhas" / "dev.jsonl").read_text(encoding="utf-8").splitlines()[:20]
    ]
    return [r["text_en"] for r in rows] + [r["text_ko"] for r in rows] + kmhas


def torch_encode(module: UseM3Module, texts: list[str]) -> np.ndarray:
    ids, mask = pad_ids(Tokenizer()(texts))
    with torch.no_grad():
        return module.eval()(ids, mask).numpy()


def test_torch_forward_matches_the_numpy_package(weights: dict, real_texts: list[str]) -> None:
    ref = build_encoder(EncoderConfig(name="use-m3", threads=1)).encode(real_texts)
    got = torch_encode(UseM3Module(weights), real_texts)
    cos = np.sum(got * ref, axis=1)
    assert cos.min() >= 0.9999, cos.min()
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_frozen_export_reproduces_the_package_weights_exactly(weights: dict) -> None:
    exported = UseM3Module(weights).export_weights()
    assert set(exported) == set(weights)
    assert weights_digest(exported) == weights_digest(weights)


def test_token_table_is_frozen_by_default_and_groups_choose_what_trains(weights: dict) -> None:
    default = UseM3Module(weights)
    assert default.table_f is None and default.caches_pooled is False
    trainable = {n for n, p in default.named_parameters() if p.requires_grad}
    assert "proj_W" in trainable and "dan.d0" in trainable and "cnn_W" in trainable
    top = UseM3Module(weights, trainable=["dan"])
    assert {n for n, p in top.named_parameters() if p.requires_grad} == {
        f"dan.{k}" for k in ("d0", "d1", "p1", "d2", "p3", "d3")
    }
    assert top.caches_pooled
    with pytest.raises(ValueError, match="unknown trainable groups"):
        UseM3Module(weights, trainable=["everything"])


def test_parameter_groups_partition_what_trains(weights: dict) -> None:
    """`train.group_lr_scale` sets each group's learning rate from these groups: every trainable
    parameter in exactly one, named as the module docstring groups them."""
    module = UseM3Module(weights)
    groups = module.parameter_groups()
    assert list(groups) == ["ngram", "pool", "dan"]
    names = {id(p): n for n, p in module.named_parameters()}
    grouped = [names[id(p)] for ps in groups.values() for p in ps]
    assert sorted(grouped) == sorted(n for n, p in module.named_parameters() if p.requires_grad)
    assert {names[id(p)] for p in groups["pool"]} == {"ln_g", "ln_b", "cnn_W", "cnn_b"}
    assert {names[id(p)] for p in groups["ngram"]} >= {"proj_W", "ln_g_all", "convs.w1_2"}
    assert all(names[id(p)].startswith("dan.") for p in groups["dan"])
    assert list(UseM3Module(weights, trainable=["dan"]).parameter_groups()) == ["dan"]
    from typing import get_args

    from monovec.embed.use_torch import TRAINABLE_GROUPS
    from monovec.finetune.config import TrainableGroup

    assert get_args(TrainableGroup) == TRAINABLE_GROUPS  # what the config accepts is what the module has


def test_pooled_half_plus_top_half_is_the_whole_forward(weights: dict, real_texts: list[str]) -> None:
    module = UseM3Module(weights).eval()
    ids, mask = pad_ids(Tokenizer()(real_texts[:8]))
    with torch.no_grad():
        whole = module(ids, mask)
        halves = module.forward_pooled(module.pooled_features(ids, mask), mask.sum(1))
    assert torch.allclose(whole, halves, atol=1e-6)


def test_requantised_table_stays_within_half_a_step() -> None:
    rng = np.random.default_rng(0)
    table = rng.normal(size=(17 * 3, 8)).astype(np.float32)
    q = quantise_table(table)
    chunk = np.arange(len(table)) % 17
    back = (
        np.stack([q[f"q{c + 1}"][i // 17] for i, c in enumerate(chunk)]) * q["scale"][chunk, None]
        + q["lo"][chunk, None]
    )
    assert np.abs(back - table).max() <= q["scale"].max() / 2 + 1e-6


def write_encoder_dir(root: Path, weights: dict[str, np.ndarray]) -> Path:
    """A fine-tuned encoder directory with `weights` (what monovec.finetune.export writes)."""
    root.mkdir(parents=True, exist_ok=True)
    np.savez(root / "weights.npz", **weights)
    manifest = {"format": "monovec-encoder/1", "digest": weights_digest(weights), "base": "use-m3"}
    (root / "encoder.json").write_text(json.dumps(manifest))
    return root


@pytest.fixture(scope="module")
def changed(weights: dict, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, UseM3Module]:
    """A 'fine-tuned' encoder: the top layers perturbed in torch, exported, written as a directory."""
    module = UseM3Module(weights)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.dan.values():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return write_encoder_dir(tmp_path_factory.mktemp("enc") / "ft", module.export_weights()), module


def test_finetuned_weights_are_served_by_the_numpy_forward_pass(changed, real_texts: list[str]) -> None:
    path, module = changed
    enc = build_encoder(EncoderConfig(name=str(path), threads=1))
    got = enc.encode(real_texts)
    assert (
        np.sum(got * torch_encode(module, real_texts), axis=1).min() >= 0.9999
    )  # the numpy backend runs the new weights
    frozen = build_encoder(EncoderConfig(name="use-m3", threads=1)).encode(real_texts)
    assert np.sum(got * frozen, axis=1).mean() < 0.99  # ... and they differ from the package's
    digest = json.loads((path / "encoder.json").read_text())["digest"]
    assert enc.name == identity(digest) == encoder_identity(EncoderConfig(name=str(path)))


def test_pinning_records_exact_reference_and_digest_and_refuses_other_weights(changed) -> None:
    path, _ = changed
    cfg = EncoderConfig(name=str(path))
    pinned = pin_encoder(cfg)
    assert pinned.name == str(path.resolve()) and pinned.digest == resolve_encoder(str(path)).digest
    assert encoder_pin(cfg, pinned) == {"ref": str(path), "pinned": pinned.name, "digest": pinned.digest}
    assert (
        pin_encoder(EncoderConfig()) == EncoderConfig()
        and encoder_pin(EncoderConfig(), EncoderConfig()) == {}
    )
    with pytest.raises(EncoderRefError, match="pinned"):
        build_encoder(EncoderConfig(name=str(path), digest="0" * 64))


def test_bad_encoder_references_fail_clearly(tmp_path: Path) -> None:
    for good in (
        "models:/monovec-encoder/3",
        "models:/monovec-encoder@newest",
        "./runs/x/model",
        "/abs/dir",
        "hf:/m",
    ):
        assert EncoderConfig(name=good).name == good
    for bad in ("models:/monovec-encoder", "models:/@x", "bert"):
        with pytest.raises(ValueError, match="encoder"):
            EncoderConfig(name=bad)
    with pytest.raises(EncoderRefError, match="not found"):
        build_encoder(EncoderConfig(name=str(tmp_path / "missing")))
    with pytest.raises(EncoderRefError, match="encoder.json"):
        build_encoder(EncoderConfig(name=str(tmp_path)))


def test_the_optimizer_scales_each_groups_learning_rate(weights: dict) -> None:
    from torch import nn

    from monovec.finetune.config import TrainConfig
    from monovec.finetune.engine import make_optimizer

    module, heads = UseM3Module(weights), nn.Linear(512, 7)
    train = TrainConfig(lr=1e-3, head_lr=3e-3, group_lr_scale={"ngram": 0.25})
    lrs = {g["name"]: g["lr"] for g in make_optimizer(module, heads, train).param_groups}
    assert lrs == pytest.approx({"ngram": 2.5e-4, "pool": 1e-3, "dan": 1e-3, "heads": 3e-3})
    with pytest.raises(ValueError, match="group_lr_scale"):
        TrainConfig(group_lr_scale={"everything": 0.5})


def test_geometry_anchors_join_the_geometry_loss_and_are_drawn_per_step(
    weights: dict, real_texts: list[str]
) -> None:
    """`loss.geometry_anchor_task`: every step encodes a seeded draw of anchor texts with the batch, and the
    geometry loss holds their cosines (to the batch and to each other) to the frozen encoder's."""
    from monovec.config import load_config
    from monovec.finetune.config import FinetuneConfig
    from monovec.finetune.data import Prepared, Split, TokenSet, View
    from monovec.finetune.engine import FinetuneLoop
    from tests.conftest import REPO

    cfg = load_config(
        FinetuneConfig,
        REPO / "jobs/configs/encoder_finetune.yaml",
        ["loss.geometry_anchor_task=safety", "loss.geometry_anchor_batch=8", "train.batch_size=16"],
    )

    def view(texts: list[str], shuffle: bool = False) -> View:
        frozen = torch_encode(UseM3Module(weights), texts)
        if shuffle:  # reference vectors that disagree with the encoder: the loss must feel them
            frozen = frozen[np.random.default_rng(0).permutation(len(texts))]
        return View(
            TokenSet.from_lists(Tokenizer()(texts)), np.array(["xx"] * len(texts)), frozen.astype(np.float16)
        )

    batch, anchors = view(real_texts[:40]), view(real_texts[40:], shuffle=True)
    y = np.arange(40) % 9
    data = Prepared(
        {"kmhas": {"train": Split(y, [batch])}}, {"kmhas": cfg.tasks["kmhas"].labels}, batch, anchors
    )
    loop = FinetuneLoop(cfg, data)
    draw = loop.anchor_units(epoch=1, step=3)
    assert draw is not None and len(set(draw.tolist())) == 8 and draw.max() < len(real_texts) - 40
    assert np.array_equal(draw, loop.anchor_units(1, 3))  # a pure function of (seed, epoch, step): resume
    assert not np.array_equal(draw, loop.anchor_units(1, 4))
    units = np.arange(16)
    _, alone = loop.step_loss("kmhas", units)
    _, joined = loop.step_loss("kmhas", units, draw)
    assert alone["geometry"] < 1e-3 < joined["geometry"]  # untrained encoder = frozen on the batch itself
