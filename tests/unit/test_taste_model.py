"""Taste2Vec towers, the online learner and the dynamic vocabulary inside them (no Ray, a 60-lot real slice,
a hashing stand-in for the text encoder so no model loads)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from monovec.taste.config import CatalogueConfig, LearnConfig, ModelConfig
from monovec.taste.encoders import NumericScaler
from monovec.taste.evaluate import auc
from monovec.taste.feedback import FeedbackEvent
from monovec.taste.learner import OnlineLearner, Scorer
from monovec.taste.model import Taste2Vec
from monovec.taste.runtime import Runtime, build_runtime, hashing_featurizer, new_model
from monovec.taste.simulate import SimConfig, Simulator


def small_model_cfg(**sensory: object) -> ModelConfig:
    return ModelConfig.model_validate(
        {
            "dim": 16,
            "numeric_hidden": 16,
            "fusion_hidden": 32,
            "text": {"proj_dim": 8},
            "sensory": {
                "dim": 8,
                "initial_capacity": 256,
                "init": "encoder",
                "min_count": 2,
                "seed": 1,
                **sensory,
            },
            "users": {"dim": 17, "initial_capacity": 8, "init": "mean"},
            "items": {"dim": 2, "initial_capacity": 64, "init_scale": 0.01},
            "context": {"hidden": 8, "history": 3},
        }
    )


@pytest.fixture(scope="module")
def catalogue_cfg(data_dir: Path) -> CatalogueConfig:
    return CatalogueConfig(coffee_dir=str(data_dir / "coffee"), max_items=60)


def runtime(
    catalogue_cfg: CatalogueConfig, model_cfg: ModelConfig, scaler: NumericScaler | None = None
) -> Runtime:
    return build_runtime(catalogue_cfg, model_cfg, scaler=scaler, featurizer=hashing_featurizer(32))


def event(
    n: int, rt: Runtime, notes: list[str] | None = None, liked: bool = True, user: str = "u1"
) -> FeedbackEvent:
    return FeedbackEvent(
        event_id=f"e{n}",
        user_id=user,
        item_id=rt.catalogue.ids[n % len(rt.catalogue)],
        liked=liked,
        context={"hour": n % 24, "weather": "sunny", "mood": 6},
        notes=notes or [],
    )


def test_towers_give_unit_vectors_and_roundtrip(catalogue_cfg: CatalogueConfig, tmp_path: Path) -> None:
    cfg = small_model_cfg()
    rt = runtime(catalogue_cfg, cfg)
    model = new_model(rt, cfg, seed=0)
    learner = OnlineLearner(model, rt.features, rt.scaler, LearnConfig())
    recs = learner.prepare([event(i, rt, user=f"u{i % 3}") for i in range(10)], rt.catalogue.index)
    vec, bias = model.encode_catalogue(rt.features)
    assert vec.shape == (60, 16) and bias.shape == (60, 2)
    assert torch.allclose(vec.norm(dim=1), torch.ones(60), atol=1e-5)
    q, _ = model.query(recs, vec)
    assert torch.allclose(q.norm(dim=1), torch.ones(10), atol=1e-5)
    assert (
        recs.ctx.shape == (10, 3, 12) and not recs.ctx[0, :2].any() and recs.ctx[3, 1].any()
    )  # u0's 2nd event has history
    model.save(tmp_path / "m")
    again = Taste2Vec.load(tmp_path / "m")
    assert again.table.vocab() == model.table.vocab() and again.users.vocab() == model.users.vocab()
    assert np.allclose(
        learner.scorer.predict(recs), Scorer(again, rt.features, learner.profiles).predict(recs), atol=1e-6
    )


def test_scaler_is_fitted_once_and_reused(
    catalogue_cfg: CatalogueConfig, data_dir: Path, tmp_path: Path
) -> None:
    cfg = small_model_cfg()
    full = runtime(CatalogueConfig(coffee_dir=str(data_dir / "coffee")), cfg)
    path = full.scaler.save(tmp_path / "scaler.json")
    sub = runtime(catalogue_cfg, cfg, scaler=NumericScaler.load(path))
    refit = runtime(catalogue_cfg, cfg)
    j = full.catalogue.index[sub.catalogue.ids[0]]
    assert torch.equal(sub.features.numeric[0], full.features.numeric[j])  # saved statistics, not the slice's
    assert not torch.equal(refit.features.numeric[0], full.features.numeric[j])
    assert sub.scaler.brew({"ratio": 18.0}) == [0.0, 1.0, 0.0, 0.0] and sub.scaler.brew(None) == [0.0] * 4


def test_new_terms_mid_stream_grow_the_table_and_keep_adam_state(catalogue_cfg: CatalogueConfig) -> None:
    cfg = small_model_cfg()
    rt = runtime(catalogue_cfg, cfg)
    model = new_model(rt, cfg, seed=0)
    table, weight = model.table, model.table.weight
    learner = OnlineLearner(model, rt.features, rt.scaler, LearnConfig(window=20, replay={"ratio": 1.0}))
    known = [
        t
        for t in table.vocab()
        if not t.startswith(("origin:", "process:", "variety:", "species:", "altitude:"))
    ][:3]
    first = learner.prepare([event(i, rt, notes=known) for i in range(20)], rt.catalogue.index)
    learner.learn(first)
    state = learner.opt.state[weight]
    old_rows, old_ids = table.num_rows, {t: table.id_of(t) for t in table.vocab()}
    m_old, v_old, step = (
        state["exp_avg"][:old_rows].clone(),
        state["exp_avg_sq"][:old_rows].clone(),
        state["step"].clone(),
    )
    assert m_old.abs().sum() > 0 and v_old.abs().sum() > 0

    room = table.capacity - table.num_rows
    new_terms = ["유자", "yuzu"] + [f"trend-{k}" for k in range(room)]  # more than fit: forces a growth
    stream = [
        event(100 + i, rt, notes=new_terms[i % len(new_terms) :][:4]) for i in range(2 * len(new_terms))
    ]
    capacity = table.capacity
    recs = learner.prepare(stream, rt.catalogue.index)  # rows appear here: no restart, no new optimizer
    assert (
        table.capacity > capacity and model.table.weight is weight and learner.opt.state[weight] is not None
    )
    assert all(t in table for t in new_terms) and {t: table.id_of(t) for t in old_ids} == old_ids
    state = learner.opt.state[weight]
    assert state["exp_avg"].shape == weight.shape and torch.equal(state["step"], step)
    assert torch.equal(state["exp_avg"][:old_rows], m_old) and torch.equal(
        state["exp_avg_sq"][:old_rows], v_old
    )
    new_ids = [table.id_of(t) for t in new_terms]
    assert state["exp_avg"][new_ids].abs().sum() == 0 and state["exp_avg_sq"][new_ids].abs().sum() == 0
    before = weight.detach()[new_ids].clone()
    learner.learn(recs)
    assert learner.opt.state[weight]["exp_avg"][new_ids].abs().sum(1).gt(0).all()
    assert not torch.equal(weight.detach()[new_ids], before)  # trainable: the loss reaches the new rows


def test_encoder_init_puts_new_words_at_their_text_vector(catalogue_cfg: CatalogueConfig) -> None:
    cfg = small_model_cfg()
    rt = runtime(catalogue_cfg, cfg)
    model = new_model(rt, cfg, seed=0)
    assert rt.token_encoder is not None
    tid = model.table.lookup(["lychee", "lychee"])[1]
    assert torch.allclose(
        model.table.weight.detach()[tid], torch.from_numpy(rt.token_encoder("lychee")), atol=1e-6
    )


@pytest.mark.parametrize("trainable", [True, False])
def test_sensory_table_frozen_or_trained_by_the_feedback_loss(
    catalogue_cfg: CatalogueConfig, trainable: bool
) -> None:
    cfg = small_model_cfg(trainable=trainable)
    rt = runtime(catalogue_cfg, cfg)
    model = new_model(rt, cfg, seed=0)
    learner = OnlineLearner(model, rt.features, rt.scaler, LearnConfig(window=30))
    table_before = model.table.weight.detach().clone()
    fusion_before = model.fusion[0].weight.detach().clone()
    for w in range(3):
        events = [event(w * 30 + i, rt, liked=bool(i % 2), user=f"u{i % 4}") for i in range(30)]
        learner.learn(learner.prepare(events, rt.catalogue.index))
    assert model.table.weight.requires_grad is trainable
    assert (not torch.equal(model.table.weight.detach(), table_before)) is trainable
    assert not torch.equal(model.fusion[0].weight.detach(), fusion_before)  # the rest learns either way


def test_online_learning_moves_auc_on_simulated_feedback(
    catalogue_cfg: CatalogueConfig, data_dir: Path
) -> None:
    cfg = small_model_cfg()
    rt = runtime(CatalogueConfig(coffee_dir=str(data_dir / "coffee"), max_items=100), cfg)
    stream = Simulator(rt.catalogue, SimConfig(users=12, events=1000, seed=4, note_rate=0.0)).events()
    events = [FeedbackEvent.model_validate(e) for e, _ in stream]
    train, test = events[:800], events[800:]
    learner = OnlineLearner(new_model(rt, cfg, seed=0), rt.features, rt.scaler, LearnConfig(window=100))
    for start in range(0, len(train), 100):
        learner.learn(learner.prepare(train[start : start + 100], rt.catalogue.index))
    untrained = OnlineLearner(
        new_model(rt, cfg, seed=0), rt.features, rt.scaler, LearnConfig()
    )  # never saw the stream
    recs_trained = learner.prepare(test, rt.catalogue.index)
    recs_untrained = untrained.prepare(test, rt.catalogue.index)
    auc_trained = auc(recs_trained.label, learner.scorer.predict(recs_trained))
    auc_untrained = auc(recs_untrained.label, untrained.scorer.predict(recs_untrained))
    assert not math.isnan(auc_trained) and auc_trained > auc_untrained + 0.1 and auc_trained > 0.7


def test_verdict_memory_and_the_per_user_ridge_fit() -> None:
    from monovec.taste.model import _ridge
    from monovec.taste.profiles import ProfileStore

    store = ProfileStore(size=3)
    for item, liked in [(5, True), (6, False), (7, True), (8, True)]:
        store.push("u", item, liked)
        store.push_item(item, liked)
    items, signs, prior = store.view("u")
    assert items.tolist() == [6, 7, 8] and signs.tolist() == [-1, 1, 1]  # the latest 3, oldest first
    assert prior == pytest.approx(math.log(4 / 2)) and store.view("stranger")[2] == 0.0
    view = store.item_view(np.array([5, 6, 9]))
    assert np.allclose(view, [[math.log(2), math.log(2)], [-math.log(2), 0.0], [0.0, 0.0]])
    frozen = store.copy()
    store.push("u", 9, False)
    assert frozen.view("u")[0].tolist() == [6, 7, 8] and store.view("u")[0].tolist() == [7, 8, 9]

    torch.manual_seed(0)
    hist, sign = torch.randn(2, 4, 5), torch.tensor([[1.0, -1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    w = _ridge(hist, sign, lam=0.5)
    for b in range(2):
        h = hist[b][sign[b] != 0]
        expected = torch.linalg.solve(h.T @ h + 0.5 * torch.eye(5), h.T @ sign[b][sign[b] != 0])
        assert torch.allclose(w[b], expected, atol=1e-5)  # padding rows do not count
