"""Every shipped search space: keys name real config fields of the space's target, bounds are valid
and contain the defaults (so the untuned baseline is enqueued exactly). No Ray is started."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from monovec.config import ConfigError, load_config, set_path
from monovec.tuning.config import TuneJobConfig
from monovec.tuning.space import (
    ParamSpec,
    SearchSpace,
    check_param,
    check_space,
    get_path,
    grid_size,
    load_space,
    resolve_field,
    to_optuna,
)
from monovec.tuning.targets import TARGETS, config_model, target_spec

REPO = Path(__file__).resolve().parents[2]
SPACES = sorted((REPO / "tune_spaces").glob("*.yaml"))


def test_there_are_spaces() -> None:
    assert any(p.name == "prototype_thresholds.yaml" for p in SPACES)


@pytest.mark.parametrize("path", SPACES, ids=lambda p: p.name)
def test_space_keys_map_to_config_fields_and_bounds_are_valid(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# ") and "jobs/tune.py" in first and f"tune_spaces/{path.name}" in first, (
        "first line must be the command"
    )
    space = load_space(path, check=False)
    assert space.target in TARGETS, (
        f"{path.name}: target {space.target!r} is not registered in monovec.tuning.targets"
    )
    model = config_model(space.target)
    check_space(space, model)  # every key resolves by walking the pydantic models; values within field limits
    base = load_config(model, REPO / target_spec(space.target).default_base_config)
    base_dict = base.model_dump(mode="json")
    low, high = yaml.safe_load(yaml.safe_dump(base_dict)), yaml.safe_load(yaml.safe_dump(base_dict))
    for key, spec in space.params.items():
        default = get_path(base_dict, key)  # also: the key exists in the shipped base config (head names)
        assert spec.contains(default), (
            f"{key}: default {default!r} is outside the space, so it could not be enqueued"
        )
        lo, hi = (spec.values[0], spec.values[-1]) if spec.values is not None else (spec.low, spec.high)
        set_path(low, key.split("."), int(lo) if spec.type == "int" else lo)
        set_path(high, key.split("."), int(hi) if spec.type == "int" else hi)
    # the corners of the box validate too (cross-field rules such as T_unknown <= T_max hold everywhere)
    model.model_validate(low)
    model.model_validate(high)
    assert to_optuna(space).keys() == space.params.keys()


def test_tune_job_config_validates_and_names_its_command() -> None:
    path = REPO / "jobs" / "configs" / "tune_classifier.yaml"
    assert path.read_text().splitlines()[0].startswith("# python jobs/tune.py --space tune_spaces/")
    job = load_config(TuneJobConfig, path)
    assert job.objective.metric == "decided_macro_f1" and job.objective.budget == 0.15
    assert job.search.algorithm == "optuna"


def test_resolve_field_walks_dicts_lists_and_optionals() -> None:
    from monovec.classify.build import BuildConfig

    info, ann = resolve_field(BuildConfig, "classifier.heads.anyhead.harm.block_threshold")
    assert ann is float and info.description
    _, ann = resolve_field(BuildConfig, "classifier.heads.emotion.train.0.max_rows")
    assert "int" in str(ann)
    with pytest.raises(ConfigError, match="gate.T_maximum"):
        resolve_field(BuildConfig, "classifier.heads.emotion.gate.T_maximum")
    with pytest.raises(ConfigError, match="value field"):
        resolve_field(BuildConfig, "classifier.heads.emotion.gate")


def test_dict_elements_are_leaves_with_their_own_limits_and_literal_keys() -> None:
    """`train.group_lr_scale` is dict[TrainableGroup, PositiveFloat]: one group's scale is tunable, its
    limit (> 0) is enforced, and a group name the encoder does not have is refused before any trial."""
    from monovec.finetune.config import FinetuneConfig

    _, ann = resolve_field(FinetuneConfig, "train.group_lr_scale.pool")
    assert ann is float
    check_param(FinetuneConfig, "train.group_lr_scale.pool", ParamSpec(type="loguniform", low=0.05, high=1.0))
    with pytest.raises(ConfigError, match="outside the field's limits"):
        check_param(FinetuneConfig, "train.group_lr_scale.dan", ParamSpec(type="uniform", low=0.0, high=1.0))
    with pytest.raises(ConfigError, match="'poool' is not one of"):
        resolve_field(FinetuneConfig, "train.group_lr_scale.poool")


def _space(params: dict) -> SearchSpace:
    return SearchSpace.model_validate({"name": "t", "target": "classifier", "params": params})


def test_bad_keys_and_bounds_are_rejected_with_the_key() -> None:
    from monovec.classify.build import BuildConfig

    with pytest.raises(ConfigError, match="classifier.heads.emotion.gate.typo"):
        check_space(
            _space({"classifier.heads.emotion.gate.typo": {"type": "uniform", "low": 0, "high": 1}}),
            BuildConfig,
        )
    with pytest.raises(ConfigError, match="outside the field's limits"):  # margin has ge=0
        check_space(
            _space({"classifier.heads.emotion.gate.margin": {"type": "uniform", "low": -0.1, "high": 0.2}}),
            BuildConfig,
        )
    with pytest.raises(ConfigError, match="uniform needs a float field"):  # multi_k is an int
        check_space(
            _space({"classifier.heads.emotion.prototypes.multi_k": {"type": "uniform", "low": 1, "high": 4}}),
            BuildConfig,
        )
    with pytest.raises(ConfigError, match="outside the field's limits"):  # multi_k has le=32
        check_space(
            _space({"classifier.heads.emotion.prototypes.multi_k": {"type": "choice", "values": [2, 64]}}),
            BuildConfig,
        )
    with pytest.raises(ConfigError, match="not one of"):
        check_space(
            _space(
                {
                    "classifier.heads.emotion.linear.class_weight": {
                        "type": "choice",
                        "values": ["sqrt", "cubic"],
                    }
                }
            ),
            BuildConfig,
        )
    with pytest.raises(ConfigError, match="unknown tune target"):
        config_model("nope")


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "uniform", "low": 1.0, "high": 0.5},
        {"type": "loguniform", "low": 0.0, "high": 1.0},
        {"type": "int", "low": 0.5, "high": 3},
        {"type": "choice", "values": []},
        {"type": "choice", "values": [1, 1]},
        {"type": "grid", "low": 0, "high": 1},
        {"type": "uniform", "low": 0.0, "high": 1.0, "step": 0.3},
        {"type": "uniform", "low": 0.0},
    ],
)
def test_param_spec_rejects_invalid_bounds(spec: dict) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        ParamSpec.model_validate(spec)


def test_grid_values_and_membership() -> None:
    assert ParamSpec(type="uniform", low=0.0, high=1.0).grid(3) == [0.0, 0.5, 1.0]
    assert ParamSpec(type="int", low=1, high=6).grid(3) == [1, 4, 6]
    assert ParamSpec(type="uniform", low=0.0, high=0.3, step=0.1).contains(0.2)
    assert not ParamSpec(type="uniform", low=0.0, high=0.3, step=0.1).contains(0.25)
    assert not ParamSpec(type="int", low=1, high=6).contains(2.5)
    assert ParamSpec(type="choice", values=[0.0, 0.1]).contains(0.1)
    space = _space(
        {
            "classifier.heads.emotion.gate.T_max": {"type": "grid", "values": [0.3, 0.4]},
            "classifier.heads.emotion.gate.margin": {"type": "uniform", "low": 0.0, "high": 0.1},
        }
    )
    assert grid_size(space, 5) == 10
