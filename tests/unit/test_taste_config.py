"""The shipped Taste2Vec YAML validates without Ray, its invariants hold, and the CLI is wired."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from monovec.config import ConfigError, load_config
from monovec.taste.config import Taste2VecJobConfig

REPO = Path(__file__).resolve().parents[2]
YAML = REPO / "jobs" / "configs" / "taste2vec.yaml"


def test_shipped_config_validates_and_names_its_command() -> None:
    first = YAML.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith(
        "# python jobs/update_taste2vec.py --config jobs/configs/taste2vec.yaml --events "
    )
    cfg = load_config(Taste2VecJobConfig, YAML)
    assert (
        cfg.model.dim == 128
        and cfg.model.text.encoder.name == "use-m3"
        and cfg.model.sensory.init == "encoder"
    )
    assert cfg.scaling.num_workers == 0 and cfg.update.checkpoint_every % cfg.learn.window == 0
    assert (REPO / "jobs" / "update_taste2vec.py").is_file()


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("update.checkpoint_every=130", "multiple of learn.window"),
        ("model.users.dim=64", "users.dim"),
        ("model.items.dim=7", "items.dim"),
        ("learn.replay.capacity=0", "capacity"),
        ("model.context.kind=lstm", "kind"),
        ("run_name=a/b", "run_name"),
        ("learn.typo=1", "typo"),
    ],
)
def test_bad_values_are_rejected_with_the_field_named(override: str, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.") if "." in field else field):
        load_config(Taste2VecJobConfig, YAML, [override])


def test_cli_taste_commands_are_registered() -> None:
    from monovec.cli.main import app

    result = CliRunner().invoke(app, ["taste", "--help"])
    assert result.exit_code == 0 and all(c in result.output for c in ("simulate", "recommend", "update"))
    result = CliRunner().invoke(app, ["taste", "recommend", "--user", "u1", "--weather", "foggy"])
    assert result.exit_code == 2 and "--weather" in result.output
