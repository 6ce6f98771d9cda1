"""The config loader and every shipped YAML (validated without starting Ray)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from monovec.classify.build import BuildConfig
from monovec.classify.quickstart import QuickstartConfig
from monovec.config import ConfigError, apply_overrides, load_config, parse_override

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


JOB_CONFIGS = {"classifier.yaml": BuildConfig, "quickstart.yaml": QuickstartConfig}


@pytest.mark.parametrize("path", sorted((REPO / "jobs" / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_job_config_validates_and_names_its_command(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# ") and ("python jobs/" in first or "make " in first), f"{path.name}: first line must be the command"
    assert path.name in JOB_CONFIGS, f"{path.name}: add its config class to JOB_CONFIGS"
    load_config(JOB_CONFIGS[path.name], path)
