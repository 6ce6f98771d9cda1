"""Trial scoring without Ray: the objective, the Pareto front, and the vectorised decisions checked
item by item against the library's row-by-row Head.predict / ClassifierPipeline.decide."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from monovec.classify.gate import STATUSES, GateConfig, gate
from monovec.tuning.decide import gate_arrays, sample_f1
from monovec.tuning.objective import ObjectiveConfig, best_index, pareto_front, score

# ------------------------------------------------------------------ objective


def test_feasible_trials_beat_infeasible_ones() -> None:
    cfg = ObjectiveConfig()  # decided_macro_f1, max, escalation_rate <= 0.15
    ok = score({"decided_macro_f1": 0.30, "escalation_rate": 0.15}, cfg)
    over = score({"decided_macro_f1": 0.90, "escalation_rate": 0.16}, cfg)
    far = score({"decided_macro_f1": 0.90, "escalation_rate": 0.50}, cfg)
    assert ok == {"objective": 0.30, "feasible": 1.0, "budget_excess": 0.0}
    assert over["feasible"] == 0.0 and over["objective"] == pytest.approx(0.90 - 1.0 - 0.01)
    assert ok["objective"] > over["objective"] > far["objective"]  # closer to the budget is better
    invalid = score({"valid": 0.0}, cfg)
    assert invalid["objective"] < far["objective"]


def test_min_mode_and_no_budget() -> None:
    cfg = ObjectiveConfig(metric="aurc", mode="min", budget_metric=None, budget=None)
    assert score({"aurc": 0.2}, cfg)["objective"] == 0.2
    cfg = ObjectiveConfig(metric="aurc", mode="min")
    assert score({"aurc": 0.2, "escalation_rate": 0.25}, cfg)["objective"] == pytest.approx(0.2 + 1.0 + 0.1)
    with pytest.raises(KeyError, match="not reported"):
        score({"escalation_rate": 0.1}, cfg)
    with pytest.raises(ValueError, match="together"):
        ObjectiveConfig(budget_metric=None)
    with pytest.raises(ValueError, match="metric:max"):
        ObjectiveConfig(pareto=["decided_macro_f1:up", "escalation_rate:min"])


def test_best_index_prefers_the_earliest_tie() -> None:
    assert best_index([0.5, 0.7, 0.7, 0.1], "max") == 1
    assert best_index([0.5, 0.5], "max") == 0  # the baseline (trial 0) wins ties
    assert best_index([0.5, 0.2, 0.9], "min") == 1


def test_pareto_front() -> None:
    rows = [
        {"f1": 0.50, "esc": 0.10},
        {"f1": 0.55, "esc": 0.20},
        {"f1": 0.45, "esc": 0.05},
        {"f1": 0.48, "esc": 0.15},  # dominated by row 0
        {"f1": 0.50, "esc": 0.10},  # duplicate of row 0
    ]
    front = pareto_front(rows, [("f1", "max"), ("esc", "min")])
    assert sorted(front) == [0, 1, 2]
    assert ObjectiveConfig().pareto_pairs() == [("decided_macro_f1", "max"), ("escalation_rate", "min")]


def test_sample_f1() -> None:
    pred = np.array([[1, 0, 0], [1, 1, 0]], bool)
    truth = np.array([[1, 0, 0], [1, 0, 0]], bool)
    assert sample_f1(pred, truth) == pytest.approx((1.0 + 2 / 3) / 2)


# ------------------------------------------------------------------ vectorised gate == gate()


def test_gate_arrays_match_gate_row_by_row() -> None:
    rng = np.random.default_rng(0)
    scores = rng.uniform(-0.2, 0.7, size=(2000, 7)).astype(np.float32)
    scores[:50, 1] = scores[:50, 0]  # exact ties at the top
    scores[50:100] = np.round(scores[50:100], 1)  # values sitting exactly on thresholds
    for cfg in (
        GateConfig(),
        GateConfig(T_max=0.3, T_unknown=0.0, margin=0.1, multi_label_threshold=0.3),
        GateConfig(margin=0.0),
    ):
        top, status, multi = gate_arrays(scores, cfg)
        for i, row in enumerate(scores):
            g = gate(row, cfg)
            assert (top[i], STATUSES[status[i]]) == (g.top, g.status), i
            assert set(np.flatnonzero(multi[i]).tolist()) == set(g.labels), i


# ------------------------------------------------------------------ whole trial == library on a real tiny model


@pytest.fixture(scope="module")
def real(tiny_model_dir: Path):
    """The tiny real model, its dev sets embedded (cache hit: its build evaluated the same texts)."""
    from monovec.classify.data import load_examples
    from monovec.classify.evaluate import normalise_examples
    from monovec.classify.model import ClassifierModel
    from monovec.classify.pipeline import ClassifierPipeline
    from monovec.embed.cache import embed_texts
    from monovec.paths import embedding_cache_dir
    from monovec.tuning.classifier import HeadInputs

    model = ClassifierModel.load(tiny_model_dir)

    class NoEncoder:  # the trial path must never encode
        name = model.manifest["encoder"]["name"]

        def encode(self, texts: list[str]) -> np.ndarray:
            raise AssertionError("a trial must not embed")

    pipe = ClassifierPipeline(model, encoder=NoEncoder())
    inputs = {}
    for name, head in model.heads.items():
        ex, norms = normalise_examples(pipe.normalizer, load_examples(head.config.dev, head.labels))
        x = embed_texts(norms, model.config.encoder, embedding_cache_dir())
        inputs[name] = HeadInputs(
            head, np.zeros((0, x.shape[1]), np.float32), np.zeros(0, np.int64), ex, norms, x
        )
    return model, pipe, inputs


def _tuned(config, **gate):
    data = config.model_dump(mode="json")
    for head in data["heads"].values():
        head["gate"].update(gate)
        head["linear"]["threshold"] = 0.6
    return type(config).model_validate(data)


@pytest.mark.parametrize("tuned", [False, True], ids=["defaults", "tuned"])
def test_trial_scoring_matches_the_pipeline_item_by_item(real, tuned: bool) -> None:
    from monovec.classify.evaluate import evaluate_head
    from monovec.classify.pipeline import ClassifierPipeline
    from monovec.tuning.classifier import assemble
    from monovec.tuning.scoring import ClassifierTuneOptions, decide_pool, evaluate

    model, pipe, inputs = real
    cfg = _tuned(model.config, T_max=0.25, margin=0.02, multi_label_threshold=0.2) if tuned else model.config
    if tuned:
        pipe = ClassifierPipeline(model.with_thresholds(cfg), encoder=pipe.encoder)
    data = assemble(cfg, inputs, ClassifierTuneOptions(session_size=0), model.safety)
    arrays, escalated, blocked = decide_pool(data, cfg)
    m = evaluate(data, cfg)
    for name, inp in inputs.items():
        idx = data.heads[name].idx
        outs = pipe.model.heads[name].predict(inp.dev_x, inp.dev_norms)
        a = arrays[name]
        labels = pipe.model.heads[name].labels
        assert [labels[i] for i in a.label[idx]] == [o.label for o in outs]
        assert [STATUSES[s] for s in a.status[idx]] == [o.status for o in outs]
        assert a.resolved[idx].tolist() == [o.resolved for o in outs]
        assert [sorted(labels[j] for j in np.flatnonzero(r)) for r in a.labels_mask[idx]] == [
            sorted(o.labels) for o in outs
        ]
        decisions = [r["decision"] for r in pipe.decide(inp.dev_x, inp.dev_norms, escalate=False)]
        assert escalated[idx].tolist() == [d == "escalate" for d in decisions]
        assert blocked[idx].tolist() == [d == "block" for d in decisions]
        ref = evaluate_head(pipe, name, inp.dev, inp.dev_norms, inp.dev_x)  # the build's own report
        assert m[f"{name}.macro_f1"] == pytest.approx(ref["all"]["pipeline"]["macro_f1"])
        assert m[f"{name}.coverage"] == pytest.approx(ref["coverage"])
        assert m[f"{name}.escalation_rate"] == pytest.approx(ref["escalation_rate"])
        assert m[f"{name}.aurc"] == pytest.approx(ref["aurc"])
        if "harm" in ref:
            assert m[f"{name}.harm_f1"] == pytest.approx(ref["harm"]["decision_block"]["f1"])
    assert m["escalation_rate"] == pytest.approx(escalated.mean())
    assert 0.0 <= m["decided_macro_f1"] <= 1.0 and m["prototype_fits"] == 0


def test_session_context_matches_the_pipeline(real) -> None:
    from monovec.tuning.classifier import assemble
    from monovec.tuning.scoring import ClassifierTuneOptions, mixed_embeddings

    model, pipe, inputs = real
    cfg = model.config.model_copy(
        update={"context": model.config.context.model_copy(update={"alpha": 0.6, "k": 2})}
    )
    data = assemble(cfg, inputs, ClassifierTuneOptions(session_size=3), model.safety)
    ours = mixed_embeddings(data, cfg.context)
    pipe.model.config = cfg
    try:
        theirs = pipe._with_context(data.x, [None if s < 0 else f"s{s}" for s in data.sessions.tolist()])
    finally:
        pipe.model.config = model.config
    assert data.ctx_has.sum() > len(data.x) // 2
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    # sessions never mix languages or heads
    langs = np.array([lang for inp in inputs.values() for lang in inp.dev.langs])
    for sid in np.unique(data.sessions[data.sessions >= 0]):
        assert len(set(langs[data.sessions == sid])) == 1


def test_prototype_refits_are_cached_and_equal_a_direct_fit() -> None:
    from monovec.classify.linear import LinearHead
    from monovec.classify.prototypes import PrototypeConfig, PrototypeSet
    from monovec.tuning.scoring import (
        ClassifierTrialData,
        ClassifierTuneOptions,
        HeadData,
        prototypes_for,
    )

    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 16)).astype(np.float32)
    y = np.arange(300) % 3
    labels = ["a", "b", "c"]
    base = PrototypeSet.fit(x, y, labels, PrototypeConfig())
    head = HeadData(
        labels,
        x,
        y,
        LinearHead(labels, np.zeros((3, 16)), np.zeros(3)),
        (PrototypeConfig().model_dump_json(), base.state()),
        np.arange(4),
        np.zeros(4, np.int64),
        np.zeros((4, 3), bool),
    )
    data = ClassifierTrialData(
        "t",
        x[:4],
        np.zeros(4, np.int8),
        np.full(4, -1),
        0,
        np.zeros((4, 16)),
        np.zeros(4, bool),
        {"h": head},
        ClassifierTuneOptions(),
    )
    cfg = PrototypeConfig(multi_k=2, trim_fraction=0.2, diversity_threshold=0.0, min_cluster_size=5)
    p1 = prototypes_for(data, "h", cfg)
    p2 = prototypes_for(data, "h", cfg)
    assert p1 is p2 and data.cache.fits == 1 and data.cache.hits == 1
    np.testing.assert_array_equal(p1.vectors, PrototypeSet.fit(x, y, labels, cfg).vectors)
    assert prototypes_for(data, "h", PrototypeConfig()).counts() == base.counts() and data.cache.fits == 1


def test_run_trial_applies_overrides_and_reports_invalid_configs(real) -> None:
    from monovec.tuning.classifier import TARGET, assemble
    from monovec.tuning.scoring import ClassifierTuneOptions

    model, _, inputs = real
    data = assemble(model.config, inputs, ClassifierTuneOptions(session_size=0), model.safety)
    base = {"classifier": model.config.model_dump(mode="json")}
    got: list[dict] = []
    TARGET.run_trial(data, base, {"classifier.heads.emotion.gate.T_max": 0.9}, got.append)
    TARGET.run_trial(
        data, base, {"classifier.heads.emotion.gate.T_unknown": 0.95}, got.append
    )  # > T_max: invalid
    assert got[0]["valid"] == 1.0 and got[0]["emotion.confident_rate"] < 0.05
    assert got[1] == {"valid": 0.0}
