"""The config loader and every shipped YAML (validated without starting Ray)."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
import yaml

from monovec.classify.build import BuildConfig
from monovec.classify.quickstart import QuickstartConfig
from monovec.config import ConfigError, apply_overrides, load_config, parse_override
from monovec.finetune.config import FinetuneConfig
from monovec.taste.config import Taste2VecJobConfig
from monovec.textvib.config import TextVibConfig
from monovec.tuning.config import TuneJobConfig

REPO = Path(__file__).resolve().parents[2]


def test_parse_override_types() -> None:
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("a=0.5") == (["a"], 0.5)
    assert parse_override("a=[x, y]") == (["a"], ["x", "y"])
    assert parse_override("a=null") == (["a"], None)
    with pytest.raises(ConfigError, match="key.path=value"):
        parse_override("novalue")


def test_overrides_reach_nested_and_list_items() -> None:
    data = {"heads": {"e": {"train": [{"max_rows": 1}]}}}
    apply_overrides(data, ["heads.e.train.0.max_rows=5", "heads.e.gate.margin=0.2"])
    assert data["heads"]["e"]["train"][0]["max_rows"] == 5
    assert data["heads"]["e"]["gate"]["margin"] == 0.2


def test_unknown_key_and_bad_value_name_the_field(tmp_path: Path) -> None:
    src = yaml.safe_load((REPO / "jobs/configs/classifier.yaml").read_text())
    src["classifier"]["heads"]["emotion"]["gate"] = {"T_max": 0.1, "T_unknown": 0.5}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(src))
    with pytest.raises(ConfigError, match="T_unknown"):
        load_config(BuildConfig, path)
    with pytest.raises(ConfigError, match="typo_field"):
        load_config(BuildConfig, REPO / "jobs/configs/classifier.yaml", ["classifier.typo_field=1"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(BuildConfig, tmp_path / "missing.yaml")


JOB_CONFIGS = {
    "classifier.yaml": BuildConfig,
    "classifier_finetuned.yaml": BuildConfig,
    "encoder_finetune.yaml": FinetuneConfig,
    "encoder_finetune_smoke.yaml": FinetuneConfig,
    "quickstart.yaml": QuickstartConfig,
    "taste2vec.yaml": Taste2VecJobConfig,
    "textvib_cwru.yaml": TextVibConfig,
    "textvib_smoke.yaml": TextVibConfig,
    "tune_classifier.yaml": TuneJobConfig,
    "tune_textvib.yaml": TuneJobConfig,
    "tune_encoder.yaml": TuneJobConfig,
}


@pytest.mark.parametrize("path", sorted((REPO / "jobs" / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_job_config_validates_and_names_its_command(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# ") and ("python jobs/" in first or "make " in first), (
        f"{path.name}: first line must be the command"
    )
    assert path.name in JOB_CONFIGS, f"{path.name}: add its config class to JOB_CONFIGS"
    load_config(JOB_CONFIGS[path.name], path)


@pytest.mark.parametrize("path", sorted((REPO / "serve_apps").glob("*.yaml")), ids=lambda p: p.name)
def test_every_serve_config_validates(path: Path) -> None:
    """The Serve config file is what `serve deploy` reads: check its shape and the app args, no Ray."""
    from monovec.serving.config import ClassifierAppArgs

    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# serve deploy ")
    cfg = yaml.safe_load(path.read_text())
    from ray.serve.schema import ServeDeploySchema

    ServeDeploySchema.model_validate(cfg)  # what `serve deploy` checks before sending it
    assert cfg["http_options"]["host"] == "127.0.0.1"
    for app in cfg["applications"]:
        module, _, attr = app["import_path"].partition(":")
        assert module.startswith("monovec."), (
            "the builder lives in the library (importable wherever monovec is installed)"
        )
        builder = getattr(importlib.import_module(module), attr)
        assert (
            inspect.signature(builder).parameters["args"].annotation is ClassifierAppArgs
        )  # a typed builder
        args = ClassifierAppArgs.model_validate(app["args"])
        assert abs(sum(args.weights().values()) - 1.0) < 1e-9


def test_serve_args_reject_bad_weights() -> None:
    from pydantic import ValidationError

    from monovec.serving.config import ClassifierAppArgs

    with pytest.raises(ValidationError, match="weight"):
        ClassifierAppArgs.model_validate(
            {"control": {"model": "x", "weight": 0}, "treatment": {"model": "y", "weight": 0}}
        )
    with pytest.raises(ValidationError, match="ramp"):
        ClassifierAppArgs.model_validate({"control": {"model": "x", "weight": 1}, "ramp": [0.5, 0.2]})


@pytest.mark.parametrize("name", sorted(JOB_CONFIGS))
def test_no_shipped_config_switches_a_fault_on(name: str) -> None:
    """Fault injection (monovec/faults.py) is for tests: every shipped job config leaves it off."""
    from monovec.faults import FaultConfig

    cfg = load_config(JOB_CONFIGS[name], REPO / "jobs" / "configs" / name)
    found = [m for m in [cfg, *vars(cfg).values()] if isinstance(getattr(m, "faults", None), FaultConfig)]
    assert all(m.faults == FaultConfig() for m in found), name
    assert "faults" not in (REPO / "jobs" / "configs" / name).read_text()
