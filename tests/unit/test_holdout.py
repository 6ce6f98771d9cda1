"""The calibration holdout: one text-keyed rule shared by the classifier's calibration slices and encoder
fine-tuning, so a classifier on a fine-tuned encoder calibrates on text the encoder never trained on."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import yaml

from monovec.classify.build import BuildConfig
from monovec.classify.linear import LinearHead, LinearHeadConfig
from monovec.classify.safety import SafetyModel
from monovec.classify.safety_data import SafetyCorpus
from monovec.config import load_config
from monovec.finetune.config import FinetuneConfig
from monovec.finetune.data import drop_holdout
from monovec.holdout import holdout_draw, in_holdout
from tests.conftest import REPO
from tests.unit.test_safety import _config, _synthetic_corpus

TEXTS = [f"sentence number {i} 문장 {i}" for i in range(20000)]


def test_membership_is_a_property_of_the_text() -> None:
    draw = holdout_draw(TEXTS)
    assert draw.shape == (len(TEXTS),) and (draw >= 0).all() and (draw < 1).all()
    assert np.array_equal(draw, holdout_draw(list(TEXTS)))  # no hidden state, no seed
    assert np.array_equal(holdout_draw(TEXTS[::-1]), draw[::-1])  # order-free
    assert abs(in_holdout(TEXTS, 0.15).mean() - 0.15) < 0.01  # uniform
    small, large = in_holdout(TEXTS, 0.10), in_holdout(TEXTS, 0.15)
    assert (small <= large).all()  # a smaller fraction's holdout is inside a larger one's
    assert not in_holdout(TEXTS, 0.0).any() and in_holdout(TEXTS, 1.0).all()
    with pytest.raises(ValueError, match="fraction"):
        in_holdout(TEXTS, 1.5)


def test_fine_tuning_drops_the_units_with_a_held_out_text() -> None:
    en, ko = TEXTS[:1000], [t + " (ko)" for t in TEXTS[:1000]]
    y = np.arange(1000)
    y2, texts, langs = drop_holdout(y, [en, ko], [["en"] * 1000, ["ko"] * 1000], 0.15)
    gone = in_holdout(en, 0.15) | in_holdout(ko, 0.15)
    assert np.array_equal(y2, y[~gone])  # a pair goes when either language's text is held out
    assert texts[0] == [t for t, g in zip(en, gone, strict=True) if not g]
    assert not in_holdout(texts[0] + texts[1], 0.15).any() and len(langs[1]) == len(y2)


def test_safety_calibrates_on_exactly_the_held_out_data_rows() -> None:
    cfg = _config(min_calibration_positives=5, lexical={"n_features": 1024})
    corpus, x, _ = _synthetic_corpus(cfg, seed=0)
    for i in range(60):  # rows of the example set (group -1): never held out, whatever their hash
        corpus.add(f"example sentence {i}", "en", {"violence"}, set(cfg.names), 8.0, -1, None)
    x = np.concatenate([x, np.repeat(x[1:2], 60, axis=0)])
    _, report = SafetyModel.fit(corpus, x, cfg, seed=0)
    held = in_holdout(corpus.texts, cfg.calibration_fraction) & (np.array(corpus.group) >= 0)
    langs = np.array(corpus.langs)
    for lang in ("en", "ko"):
        assert report["hate"][lang]["held_out"] == int((held & (langs == lang)).sum())
    assert in_holdout(corpus.texts[-60:], cfg.calibration_fraction).any()
    assert report["violence"]["en"]["held_out"] == int((held & (langs == "en")).sum())


def test_linear_head_calibrates_on_the_holdout_when_given_the_texts() -> None:
    rng = np.random.default_rng(0)
    texts = TEXTS[:600]
    y = np.arange(600) % 3
    x = rng.standard_normal((3, 8))[y] + 1.5 * rng.standard_normal((600, 8))  # overlapping: offsets matter
    a = LinearHead.fit(x, y, ["a", "b", "c"], LinearHeadConfig(), texts=texts)
    b = LinearHead.fit(x, y, ["a", "b", "c"], LinearHeadConfig(), texts=texts[::-1])
    assert not np.allclose(a.bias, b.bias)  # the slice follows the texts, not a seeded draw
    again = LinearHead.fit(x, y, ["a", "b", "c"], LinearHeadConfig(), seed=7, texts=texts)
    assert np.allclose(a.bias, again.bias, atol=1e-4)  # and not the seed
    assert (a.proba(x).argmax(1) == y).mean() > 0.6


def test_shipped_encoder_leaves_out_every_calibration_slice_of_the_builds_that_use_it() -> None:
    """encoder_finetune.yaml's holdout must cover classifier_finetuned.yaml's calibration slices (safety and
    every linear head), and both jobs must normalise alike: the hash is of the normalised text."""
    enc = load_config(FinetuneConfig, REPO / "jobs/configs/encoder_finetune.yaml")
    build = load_config(BuildConfig, REPO / "jobs/configs/classifier_finetuned.yaml").classifier
    assert build.safety is not None
    fractions = [build.safety.calibration_fraction] + [
        h.linear.calibration_fraction for h in build.heads.values()
    ]
    assert enc.train.calibration_holdout >= max(fractions), fractions
    assert enc.normalize == build.normalize
    raw = yaml.safe_load((REPO / "jobs/configs/encoder_finetune.yaml").read_text())
    assert raw["train"].get("calibration_holdout", enc.train.calibration_holdout) > 0


def test_stacked_blend_weighs_the_channels_on_rows_the_encoder_never_saw() -> None:
    """A fine-tuned encoder separates its own training rows perfectly and new text poorly: a joint fit over
    [lexical ; embedding] leans on the embedding, the stacked blend (weighed on the calibration holdout)
    leans on the lexical channel, and scores new text better."""
    rng = np.random.default_rng(0)
    cfg = _config(min_calibration_positives=5, lexical={"n_features": 4096})
    corpus = SafetyCorpus(cfg.names)
    words = ["calm", "slur", "swear", "attack", "overdose", "smuggle"]  # k = 0 harmless, 1..5 a category each
    centres = rng.standard_normal((6, 16)).astype(np.float32)
    texts, ks = [], []
    for i in range(1800):
        k = i % 6
        texts.append(f"{words[k] if rng.random() < 0.85 else words[rng.integers(6)]} note {i}")
        ks.append(k)
    held = in_holdout(texts, cfg.calibration_fraction)
    x = np.where(  # memorised: clean on the rows it trained on, noise on the held-out ones
        held[:, None], rng.standard_normal((1800, 16)), centres[ks] + 0.05 * rng.standard_normal((1800, 16))
    ).astype(np.float32)
    for t, k in zip(texts, ks, strict=True):
        corpus.add(
            t,
            "en" if len(t) % 2 else "ko",
            set() if k == 0 else {cfg.names[k - 1]},
            set(cfg.names),
            1.0,
            0,
            None,
        )
    new = [f"{words[k]} fresh {i}" for i, k in enumerate(np.arange(600) % 6)]
    x_new = rng.standard_normal((600, 16)).astype(np.float32)
    truth = np.array([[k == c + 1 for c in range(5)] for k in np.arange(600) % 6])
    accuracy = {}
    for blend in ("joint", "stacked"):
        model, report = SafetyModel.fit(corpus, x, cfg.model_copy(update={"blend": blend}), seed=0)
        s = model.scores(new, x_new, ["en" if len(t) % 2 else "ko" for t in new])
        accuracy[blend] = float(
            ((s[:, :2] >= 0.5) == truth[:, :2]).mean()
        )  # hate, profanity: the lexical ones
    lex_w, emb_w = report["profanity"]["en"]["blend"]
    assert lex_w > emb_w, report["profanity"]
    assert accuracy["stacked"] > accuracy["joint"] and accuracy["stacked"] > 0.9, accuracy


def _violence_only():  # noqa: ANN202
    return _config(
        categories={"violence": {"policy": "block", "lexical": False, "per_language": False}},
        lexical={"enabled": False},
        identity_templates={"enabled": False},
        context={"categories": []},
    )


def _memorised_example_set(cfg, rng: np.random.Generator, signal: float):  # noqa: ANN001, ANN202
    """Data rows (never violent) plus an example set of 60 groups x (2 en + 2 ko) sentences that share
    one vector per group: a random direction of its own, plus `signal` along axis 0 for violent groups."""
    corpus = SafetyCorpus(cfg.names)
    xs = []
    for i in range(600):  # ordinary data rows: no violence
        corpus.add(f"ordinary row {i}", "en" if i % 2 else "ko", set(), {"violence"}, 1.0, 0, None)
        xs.append(rng.standard_normal(64) - np.eye(64)[0] * signal)
    for g in range(60):
        violent = g % 2 == 0
        centre = rng.standard_normal(64) + np.eye(64)[0] * (signal if violent else 0.0)
        for k in range(4):
            corpus.add(f"group {g} sentence {k}", "en" if k < 2 else "ko", {"violence"} if violent else set(),
                       set(cfg.names), 8.0, -1, None, example=g)  # fmt: skip
            xs.append(centre)
    return corpus, np.stack(xs).astype(np.float32)


def test_out_of_fold_scores_keep_a_groups_translations_out_of_its_own_model() -> None:
    """An example group's sentences share one vector (translations, paraphrases): in-sample the model
    memorises every group, out of fold it must not - no group member may sit in the fold that trains."""
    from sklearn.linear_model import LogisticRegression

    from monovec.classify.safety import _auc, _out_of_fold

    cfg = _violence_only()
    corpus, x = _memorised_example_set(cfg, np.random.default_rng(0), signal=0.0)  # no signal: memory only
    y = np.array(corpus.y)[:, cfg.names.index("violence")]
    example, weight = np.array(corpus.example), np.array(corpus.weight)
    train = np.ones(len(y), bool)
    clf = LogisticRegression(C=10.0, max_iter=5000).fit(x, y.astype(int), sample_weight=weight)
    rows = example >= 0
    oof = _out_of_fold(sp.csr_matrix(x), y, weight, train, example, 5, clf, seed=0)
    assert np.isnan(oof[~rows]).all() and not np.isnan(oof[rows]).any()
    assert _auc(x[rows] @ clf.coef_[0], y[rows]) > 0.99  # in sample: memorised
    assert _auc(oof[rows], y[rows]) < 0.7  # out of fold: nothing to go on, as it should be


def test_example_only_categories_are_measured_and_optionally_calibrated_out_of_fold() -> None:
    """Violence has positives only in the example set. By default the fit report measures the raw scorer on
    out-of-fold scores (out_of_fold rows per language, F1, AUC) and the scores stay raw; with
    out_of_fold_calibration those scores also set an operating point; with calibration_folds 0 neither."""
    rng = np.random.default_rng(1)
    cfg = _violence_only()
    corpus, x = _memorised_example_set(cfg, rng, signal=1.5)
    j = cfg.names.index("violence")
    measured, report = SafetyModel.fit(corpus, x, cfg, seed=0)
    calibrated, cal_report = SafetyModel.fit(corpus, x, cfg.model_copy(update={"out_of_fold_calibration": True}), seed=0)  # fmt: skip
    raw, raw_report = SafetyModel.fit(corpus, x, cfg.model_copy(update={"calibration_folds": 0}), seed=0)
    for lang in ("en", "ko"):
        entry = report["violence"][lang]
        assert entry["out_of_fold"] == 120 and 0 < entry["auc"] <= 1 and "operating_point" not in entry
        assert "operating_point" in cal_report["violence"][lang]
        assert "out_of_fold" not in raw_report["violence"][lang] and "auc" not in raw_report["violence"][lang]
    assert np.allclose(measured.cal_a[j], 1.0) and np.allclose(raw.cal_a[j], 1.0)
    assert not np.allclose(calibrated.cal_a[j], 1.0)
    texts, langs = [f"t {i}" for i in range(len(x))], ["en", "ko"] * (len(x) // 2)
    assert np.array_equal(
        measured.scores(texts, x, langs), raw.scores(texts, x, langs)
    )  # measuring changes nothing
