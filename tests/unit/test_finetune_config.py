"""Encoder fine-tuning: shipped configs validate, bad configs name the problem, the batch schedule is sound."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from monovec.classify.build import BuildConfig
from monovec.config import ConfigError, load_config
from monovec.finetune.config import FinetuneConfig
from monovec.finetune.data import Prepared, Split, TokenSet, View, load_units
from monovec.finetune.engine import epoch_schedule
from tests.conftest import REPO

CONFIG = REPO / "jobs" / "configs" / "encoder_finetune.yaml"


def test_shipped_finetune_config_validates_and_names_its_command() -> None:
    assert (
        CONFIG.read_text().splitlines()[0]
        == "# python jobs/finetune_encoder.py --config jobs/configs/encoder_finetune.yaml"
    )
    cfg = load_config(FinetuneConfig, CONFIG)
    assert "token_table" not in cfg.encoder.trainable  # frozen by default
    assert set(cfg.active_tasks()) == {"emotion", "kmhas", "davidson"}
    # the safety example set is measured off (the config says why)
    assert not cfg.tasks["beep"].enabled and not cfg.tasks["safety"].enabled
    # ... but its sentences anchor the geometry term (labels unused)
    assert cfg.loss.geometry_anchor_task == "safety" and cfg.loss.geometry > 0
    assert cfg.tasks["emotion"].pair_fields == ["text_en", "text_ko"]
    assert cfg.tracking.registered_model == "monovec-encoder" and cfg.tracking.alias == "newest"


def test_classifier_finetuned_differs_from_classifier_only_in_the_encoder() -> None:
    """The A/B pair: the fine-tuned build must be the frozen build with another encoder, nothing else."""
    frozen = yaml.safe_load((REPO / "jobs/configs/classifier.yaml").read_text())
    tuned_path = REPO / "jobs/configs/classifier_finetuned.yaml"
    assert (
        tuned_path.read_text().splitlines()[0]
        == "# python jobs/build_classifier.py --config jobs/configs/classifier_finetuned.yaml"
    )
    tuned = yaml.safe_load(tuned_path.read_text())
    assert tuned["classifier"].pop("encoder")["name"] == "models:/monovec-encoder@newest"
    frozen["classifier"].pop("encoder")
    assert tuned == frozen
    load_config(BuildConfig, tuned_path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("encoder.trainable=[]", "nothing would be fine-tuned"),
        ("encoder.trainable=[everything]", "encoder.trainable"),
        ("encoder.trainable=[ngram]", "does not train"),  # the shipped pool / dan scales would do nothing
        ("objective_task=beep", "not an enabled task"),
        ("tasks.emotion.pair_fields=[text_en,text_de]", "text_de"),
        ("tasks.kmhas.safe_labels=[harmless]", "harmless"),
        ("loss.geometry=-1", "loss.geometry"),
        ("loss.geometry_anchor_task=examples", "not a task"),
        ("loss.geometry_anchor_task=safety loss.geometry=0", "anchors would do nothing"),
    ],
)
def test_bad_finetune_configs_name_the_field(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(FinetuneConfig, CONFIG, override.split())


def fake_prepared(sizes: dict[str, int], views: dict[str, int]) -> Prepared:
    rng = np.random.default_rng(1)
    tasks = {}
    for name, n in sizes.items():
        vs = [
            View(
                TokenSet.from_lists([[1] * int(k) + [2] for k in rng.integers(2, 60, size=n)]),
                np.array(["en"] * n),
            )
            for _ in range(views[name])
        ]
        tasks[name] = {"train": Split(rng.integers(0, 3, size=n), vs)}
    return Prepared(tasks, {n: ["a", "b", "c"] for n in sizes}, vs[0])


def test_epoch_schedule_covers_every_unit_once_in_length_buckets_and_is_seeded() -> None:
    cfg = load_config(FinetuneConfig, CONFIG, ["train.batch_size=16", "train.bucket_batches=4"])
    data = fake_prepared({"emotion": 300, "kmhas": 101}, {"emotion": 2, "kmhas": 1})
    steps = epoch_schedule(data, cfg, epoch=1, world=2)
    again = epoch_schedule(
        data, cfg, epoch=1, world=2
    )  # a pure function of (seed, epoch): what makes resume exact
    assert [t for t, _ in steps] == [t for t, _ in again] and all(
        np.array_equal(a, b) for (_, a), (_, b) in zip(steps, again, strict=True)
    )
    assert [s[0] for s in steps] != [s[0] for s in epoch_schedule(data, cfg, epoch=2, world=2)]
    for task, n in (("emotion", 300), ("kmhas", 101)):
        units = np.concatenate([u for t, u in steps if t == task])
        assert len(units) == len(set(units.tolist())) and len(units) >= n - 2  # at most a batch of 1 dropped
        assert {t for t, _ in steps} == {"emotion", "kmhas"}
    lens = data.tasks["emotion"]["train"].unit_lengths()
    spread = np.mean([np.ptp(lens[u]) for t, u in steps if t == "emotion"])
    assert spread < 0.5 * np.ptp(lens)  # bucketing: a batch pads to about its own length


def test_pair_fields_must_line_up(tmp_path: Path) -> None:
    from monovec.classify.normalize import KoreanNormalizer

    path = tmp_path / "pairs.jsonl"
    rows = [
        {"en": "I love this", "ko": "이거 정말 좋아", "y": "joy"},
        {"en": "so sad today", "ko": "", "y": "sadness"},
    ]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
    cfg = load_config(FinetuneConfig, CONFIG)
    task = cfg.tasks["emotion"].model_copy(update={
        "labels": ["joy", "sadness"], "pair_fields": ["en", "ko"],
        "train": [cfg.tasks["emotion"].train[0].model_copy(update={"path": str(path), "text_fields": {"en": "en", "ko": "ko"}, "label_field": "y",
                                                                       "single_label_only": False})],
    })  # fmt: skip
    with pytest.raises(ValueError, match="do not line up"):
        load_units(task, task.train, KoreanNormalizer())
    rows[1]["ko"] = "오늘 너무 슬퍼"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
    y, texts, langs = load_units(task, task.train, KoreanNormalizer())
    assert y.tolist() == [0, 1] and texts[1][1] == "오늘 너무 슬퍼" and langs == [["en", "en"], ["ko", "ko"]]


def test_the_safety_example_set_is_a_task_source() -> None:
    """resources/safety/examples.yaml (groups of en/ko sentences) read as task rows: one row per sentence
    in its own language, the group's first category as the label, a hard negative (labels []) as `none`."""
    from monovec.classify.data import DataSource
    from monovec.classify.safety_data import load_example_file
    from monovec.finetune.config import TaskConfig

    groups = load_example_file().groups
    task = TaskConfig(
        labels=["none", "hate", "profanity", "violence", "self_harm", "crime"],
        safe_labels=["none"],
        train=[
            DataSource(
                path="resource:safety/examples.yaml",
                text_fields={"en": "en", "ko": "ko"},
                label_field="category",
                repeat=2,
            )
        ],
    )
    y, texts, langs = load_units(task, task.train, lambda t: t)
    expected = [
        ((g.labels or ["none"])[0], lang, t)
        for g in groups
        for lang in ("en", "ko")
        for t in getattr(g, lang)
    ]
    assert len(y) == 2 * len(expected) and len(texts) == 1  # one view, every sentence twice (repeat)
    got = sorted((task.labels[int(c)], lang, t) for c, lang, t in zip(y, langs[0], texts[0], strict=True))
    assert got == sorted(expected * 2)
    assert {lang for _, lang, _ in expected} == {"en", "ko"}
    assert any(g.labels == [] for g in groups) and any(len(g.labels) > 1 for g in groups)
