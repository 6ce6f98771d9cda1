"""Defects of a multi-replica router and of arm health, each shown without Ray.

Two `Experiment` objects on one sqlite file are two router replicas (`router_replicas: 2`); the arm's
health check is called on the plain class behind the Serve deployment.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from monovec.serving.config import ClassifierAppArgs
from monovec.serving.experiment import Experiment
from monovec.serving.state import ExperimentStore


def _args() -> ClassifierAppArgs:
    # min_step_interval_s=0: these tests step twice in a row on purpose (the cool-down has its own test)
    return ClassifierAppArgs.model_validate(
        {
            "control": {"model": "a", "weight": 0.9},
            "treatment": {"model": "b", "weight": 0.1},
            "ramp": [0.25, 0.5, 1.0],
            "router_replicas": 2,
            "min_step_interval_s": 0,
        }
    )


def test_a_promote_through_one_replica_reaches_the_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "exp.sqlite"
    one, two = Experiment(_args(), ExperimentStore(path)), Experiment(_args(), ExperimentStore(path))
    assert two.weights["treatment"] == pytest.approx(0.1)
    one.promote("step 1")
    monkeypatch.setattr(Experiment, "SPLIT_TTL_S", 0.0)  # the next read is due (at most 1 s in production)
    assert two.weights["treatment"] == pytest.approx(0.25)
    users = [f"user-{i}" for i in range(400)]
    assert [one.assign(u, None) for u in users] == [
        two.assign(u, None) for u in users
    ]  # same split, same arms


def test_ramp_steps_come_from_the_stored_split_not_a_stale_copy(tmp_path: Path) -> None:
    path = tmp_path / "exp.sqlite"
    one, two = Experiment(_args(), ExperimentStore(path)), Experiment(_args(), ExperimentStore(path))
    one.promote("first step")  # 10% -> 25% through replica one
    out = two.promote("second step")  # replica two still holds 10% in memory: must step from 25%
    assert out["split"]["treatment"] == pytest.approx(0.5)
    two.rollback("stop")
    assert one.promote("again")["split"]["treatment"] == pytest.approx(0.25)  # from 0%, not from a cached 25%


class _BrokenPipe:
    """A loaded model whose classification fails (what a health probe must notice)."""

    def classify_batch(self, texts, *a, **k):  # noqa: ANN001, ANN002, ANN003
        raise RuntimeError("encoder crashed")


class _NoAnswerPipe:
    def classify_batch(self, texts, *a, **k):  # noqa: ANN001, ANN002, ANN003
        return [{"error": {"code": "empty_text", "message": "normalised to nothing"}}]


@pytest.mark.parametrize("pipe", [_BrokenPipe(), _NoAnswerPipe()])
def test_arm_health_probes_the_model(pipe: object) -> None:
    from monovec.serving.arm import ClassifierArm

    arm = object.__new__(ClassifierArm.func_or_class)  # the class behind the deployment, without Serve
    arm.pipe, arm.model_ref = pipe, "models:/x/1"
    with pytest.raises(RuntimeError):
        arm.check_health()


def test_arm_health_passes_on_a_real_model(tiny_model_dir: Path) -> None:
    from monovec.classify.service import load_pipeline
    from monovec.serving.arm import ClassifierArm

    arm = object.__new__(ClassifierArm.func_or_class)
    arm.pipe, arm.model_ref = load_pipeline(str(tiny_model_dir), threads=1), str(tiny_model_dir)
    arm.arm = "control"
    arm.check_health()
    assert arm.health()["model_version"] == arm.pipe.model.version
