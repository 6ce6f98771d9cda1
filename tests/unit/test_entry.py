"""One path from the command line to the library (monovec.entry): the same options, overrides and
logging in every job script and CLI command; config errors exit 2 before any Ray work."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from monovec.config import ConfigError
from monovec.entry import load_job_config, setup_logging
from monovec.textvib.config import TextVibConfig

REPO = Path(__file__).resolve().parents[2]
JOBS = ["build_classifier", "train_textvib", "update_taste2vec", "tune", "quickstart"]


def job_main(name: str):  # noqa: ANN201
    spec = importlib.util.spec_from_file_location(f"job_{name}", REPO / "jobs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.main


@pytest.mark.parametrize("name", JOBS)
def test_every_job_takes_the_same_options(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        job_main(name)(["--help"])
    usage = capsys.readouterr().out
    for option in ("--config", "--out", "--from-tune", "--verbose", "overrides"):
        assert option in usage, f"jobs/{name}.py lacks {option}"


@pytest.mark.parametrize(
    "command", [["classifier", "build"], ["textvib", "train"], ["taste", "update"], ["tune", "run"]]
)
def test_cli_jobs_take_the_same_options(command: list[str]) -> None:
    from monovec.cli.main import app

    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for option in ("--config", "--out", "overrides"):
        assert option in result.output, f"monovec {' '.join(command)} lacks {option}"


def test_a_bad_override_exits_2_naming_the_field(capsys: pytest.CaptureFixture[str]) -> None:
    code = job_main("train_textvib")(
        ["--config", str(REPO / "jobs/configs/textvib_smoke.yaml"), "train.bogus=1"]
    )
    assert code == 2 and "train.bogus" in capsys.readouterr().err


def test_from_tune_applies_the_sweeps_overrides_before_the_command_lines(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    best = {
        "base_config": "jobs/configs/textvib_smoke.yaml",
        "objective": 0.9,
        "overrides": {"train.lr": 0.005, "train.batch_size": 16},
    }
    (sweep / "best.yaml").write_text(yaml.safe_dump(best))
    said: list[str] = []
    cfg = load_job_config(
        TextVibConfig, None, ["train.batch_size=8"], out=tmp_path / "run", from_tune=sweep, note=said.append
    )
    assert cfg.name == "textvib-smoke"  # the sweep's base config, resolved against the checkout
    assert cfg.train.lr == 0.005 and cfg.train.batch_size == 8 and cfg.out_dir == str(tmp_path / "run")
    assert said and said[-1].startswith("applying 2 tuned overrides")
    with pytest.raises(ConfigError, match="no best.yaml"):
        load_job_config(TextVibConfig, None, [], from_tune=tmp_path / "nothing.yaml")


def test_logging_is_the_same_for_jobs_and_the_cli() -> None:
    root, mlflow = logging.getLogger(), logging.getLogger("mlflow")
    saved = root.handlers[:], root.level, logging.getLogger("monovec").level, mlflow.level
    try:
        mlflow.setLevel(logging.INFO)  # what importing MLflow does
        setup_logging(False)
        assert logging.getLogger("monovec.anything").getEffectiveLevel() == logging.INFO
        assert mlflow.getEffectiveLevel() >= logging.WARNING and root.level == logging.WARNING
        setup_logging(True)
        assert logging.getLogger("monovec").level == logging.DEBUG and mlflow.level == logging.INFO
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        logging.getLogger("monovec").setLevel(saved[2])
        mlflow.setLevel(saved[3])
