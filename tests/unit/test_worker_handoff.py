"""Ray workers get everything through their config: the driver resolves every path (no environment
variables written in a worker, nothing that depends on the worker's working directory), and reading
the state dir creates nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from monovec.paths import state_dir
from monovec.taste.checkpoint import job_root
from monovec.taste.config import Taste2VecJobConfig
from monovec.taste.update import portable


def test_reading_the_state_dir_creates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONOVEC_HOME", str(tmp_path / "home"))
    assert state_dir() == (tmp_path / "home").resolve() and not (tmp_path / "home").exists()


def test_taste_workers_get_absolute_paths_and_a_resolved_tracking_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MONOVEC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = Taste2VecJobConfig.model_validate({"out_dir": "runs", "update": {"dead_letter": "dead.jsonl"}})
    root = job_root(cfg)
    moved = portable(cfg, root)
    assert job_root(moved) == root and Path(moved.out_dir).is_absolute()  # type: ignore[arg-type]
    for path in (moved.catalogue.coffee_dir, moved.update.dead_letter, moved.chroma.path):
        assert path is not None and Path(path).is_absolute(), path
    assert moved.update.dead_letter == str(tmp_path / "dead.jsonl")
    assert moved.tracking.uri == f"sqlite:///{(tmp_path / 'home' / 'mlflow.db').resolve()}"
    assert portable(moved, root) == moved  # idempotent: a resumed run hands workers the same config
