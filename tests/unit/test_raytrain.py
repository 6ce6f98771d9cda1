"""monovec.raytrain without a cluster: the RunConfig both trainers share and the controller poll it sets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from monovec.infra import ScalingConfig
from monovec.raytrain import REPORT_POLL_S, run_config

POLL = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"


def test_run_config_takes_the_scaling_block_and_shortens_the_controller_poll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(POLL, raising=False)
    rc = run_config(ScalingConfig(max_failures=3, checkpoints_to_keep=1), tmp_path)
    assert rc.storage_path == str(tmp_path) and rc.failure_config.max_failures == 3
    assert rc.checkpoint_config.num_to_keep == 1
    # epochs shorter than Ray Train's default 2 s poll would be stretched to it (docs/textvib.md)
    assert float(os.environ[POLL]) == REPORT_POLL_S < 1.0


def test_a_poll_interval_the_user_exported_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(POLL, "3")
    run_config(ScalingConfig(), tmp_path)
    assert os.environ[POLL] == "3"


def test_ray_train_still_hands_the_poll_interval_to_its_controller() -> None:
    """The setting only works because Ray Train v2 copies it from the driver's environment to the
    controller actor; a Ray upgrade that stops doing so must fail here, not silently slow training."""
    from ray.train.v2._internal.constants import ENV_VARS_TO_PROPAGATE, HEALTH_CHECK_INTERVAL_S_ENV_VAR

    assert HEALTH_CHECK_INTERVAL_S_ENV_VAR == POLL and POLL in ENV_VARS_TO_PROPAGATE
