"""Shared test set-up: private state dir, offline HF, the real shared data, one tiny real model.

Nothing a test writes lands in the repo's .monovec: MONOVEC_HOME points at a session temp dir.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("RAY_ADDRESS", None)
# Serve replicas inherit the environment Ray was started with: the admin token must exist before ray.init
ADMIN_TOKEN = "test-admin-token"
os.environ["MONOVEC_ADMIN_TOKEN"] = ADMIN_TOKEN

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def monovec_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("monovec_home")
    os.environ["MONOVEC_HOME"] = str(home)
    return home


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what each test needs, so `-m "not shared_data"` / `-m "not encoder"` select the rest."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & {"data_dir", "tiny_model_dir"}:
            item.add_marker(pytest.mark.shared_data)
        if "tiny_model_dir" in names:
            item.add_marker(pytest.mark.encoder)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """../shared/data; a missing folder fails the test (deselect with -m "not shared_data"), never a silent skip."""
    if not (DATA / "goemotions" / "train.jsonl").is_file():
        pytest.fail(
            f"shared data not found at {DATA}: tests marked shared_data need it (run with -m 'not shared_data' without it)"
        )
    return DATA


def tiny_build_overrides(out_dir: Path, rows: int = 700) -> list[str]:
    """A real-data build small enough for seconds: first `rows` rows of each training file.

    Embeddings go to the user's shared per-text cache (`monovec.paths.embedding_cache_dir`), as a
    user's builds do: it is content-addressed, so tests, the documented commands and the quickstart
    embed each text once per machine.
    """
    return [
        f"out_dir={out_dir}",
        "tracking.enabled=false",
        "scaling.num_workers=1",
        "reference_sample=200",
        f"classifier.heads.emotion.train.0.max_rows={rows}",
        "classifier.heads.emotion.dev.0.max_rows=300",
        f"classifier.heads.ethics.train.0.max_rows={rows}",
        "classifier.heads.ethics.dev.0.max_rows=300",
        "classifier.encoder.threads=1",
        *safety_overrides(rows),
    ]


def safety_overrides(rows: int, dev_rows: int = 300) -> list[str]:
    """Cap every safety source of the shipped config (train: `rows` each, dev: `dev_rows` each)."""
    from monovec.classify.build import BuildConfig
    from monovec.config import load_config

    safety = load_config(BuildConfig, REPO / "jobs" / "configs" / "classifier.yaml").classifier.safety
    if safety is None:
        return []
    return [f"classifier.safety.sources.{i}.max_rows={rows}" for i in range(len(safety.sources))] + [
        f"classifier.safety.dev.{i}.max_rows={dev_rows}" for i in range(len(safety.dev))
    ]


@pytest.fixture(scope="session")
def tiny_model_dir(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real classifier built without Ray on ~2k real texts (shared by unit and CLI tests)."""
    from monovec.classify.build import BuildConfig, build_classifier
    from monovec.config import load_config

    root = tmp_path_factory.mktemp("tiny_model")
    cfg = load_config(
        BuildConfig, REPO / "jobs" / "configs" / "classifier.yaml", tiny_build_overrides(root / "models")
    )
    return build_classifier(cfg, progress=lambda _m: None).model_dir
