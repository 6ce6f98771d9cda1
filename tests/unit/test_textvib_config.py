"""TextVibCLIP configs: shipped YAMLs validate without Ray, invariants are checked, Tune paths are plain fields."""

from __future__ import annotations

from pathlib import Path

import pytest

from monovec.config import ConfigError, load_config
from monovec.textvib.config import TextVibConfig

REPO = Path(__file__).resolve().parents[2]
YAMLS = sorted((REPO / "jobs" / "configs").glob("textvib_*.yaml"))


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: p.name)
def test_shipped_yaml_validates_and_names_its_command(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == f"# python jobs/train_textvib.py --config jobs/configs/{path.name}"
    cfg = load_config(TextVibConfig, path)
    assert len(cfg.data.classes) == 9 and cfg.data.domains[0] == "1797"


def test_full_config_is_the_full_method() -> None:
    cfg = load_config(TextVibConfig, REPO / "jobs/configs/textvib_cwru.yaml")
    m = cfg.model
    assert m.prototypes.enabled and m.similarity.multi_positive and m.residual_projection.enabled
    assert m.similarity.bilinear_enabled and m.regularizers.rkd_enabled and m.procrustes_init
    assert cfg.continual.replay.enabled and cfg.train.first_domain_stage1_epochs > 0
    assert cfg.data.domains == ["1797", "1772", "1750", "1730"] and cfg.scaling.max_failures >= 1


def test_tune_paths_are_plain_fields() -> None:
    sweep = {
        "model.prototypes.tau": 0.05,
        "model.prototypes.lambda_proto": 0.5,
        "model.prototypes.ema_momentum": 0.98,
        "model.similarity.lambda_bilinear": 0.2,
        "model.regularizers.lambda_rkd": 2.0,
        "train.lr": 3e-4,
        "train.first_domain_stage1_epochs": 5,
    }
    cfg = load_config(
        TextVibConfig, REPO / "jobs/configs/textvib_cwru.yaml", [f"{k}={v}" for k, v in sweep.items()]
    )
    dumped = cfg.model_dump()
    for key, value in sweep.items():
        node = dumped
        for part in key.split("."):
            node = node[part]
        assert node == value


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("model.prototypes.ema_momentum=1.0", "ema_momentum"),
        ("data.split.train=0.8", "leaves"),
        ("continual.replay.enabled=false", "rkd_enabled"),
        ("model.prototypes.tua=0.1", "tua"),
        ("data.classes=[IR_7,IR_7]", "duplicates"),
        ("data.source=parquet", "source"),
    ],
)
def test_bad_values_name_the_field(override: str, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        load_config(TextVibConfig, REPO / "jobs/configs/textvib_cwru.yaml", [override])


def test_ablation_variants_are_valid_and_ordered(tmp_path: Path) -> None:
    from monovec.textvib.ablation import VARIANTS, run_ablation, variant_config

    base = load_config(TextVibConfig, REPO / "jobs/configs/textvib_cwru.yaml")
    assert list(VARIANTS)[2:] == ["proto", "+multi_positive", "+residual", "+bilinear", "+rkd"]
    naive = variant_config(base, "naive", tmp_path)
    assert not naive.continual.replay.enabled and not naive.model.regularizers.rkd_enabled
    assert naive.model.prototypes.enabled and naive.model.similarity.bilinear_enabled
    proto = variant_config(base, "proto", tmp_path).model
    assert (
        proto.prototypes.enabled
        and not proto.similarity.multi_positive
        and not proto.residual_projection.enabled
    )
    full = variant_config(base, "+rkd", tmp_path)
    assert full.model == base.model and full.continual == base.continual
    fake = {
        "average_accuracy": 0.9,
        "forgetting": 0.01,
        "bwt": -0.01,
        "mean_v2t_top5": 1.0,
        "mean_t2v_top5": 1.0,
        "mean_v2t_top1": 0.9,
        "seconds": 1.0,
    }
    table = run_ablation(
        base, tmp_path, variants=["naive", "+rkd"], progress=lambda _m: None, runner=lambda _c: fake
    )
    assert table.csv_path.read_text().splitlines()[0].startswith("variant,average_accuracy,forgetting")
    assert "| +rkd | 0.9000 | 0.0100 |" in table.md_path.read_text()
