"""Defects of a multi-replica router and of arm health, each shown without Ray.

Two `Experiment` objects on one sqlite file are two router replicas (`router_replicas: 2`); the arm's
health check is called on the plain class behind the Serve deployment.
"""

from __future__ import annotations

import asyncio
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


class _Replicas:
    """A deployment handle stand-in whose `health.remote()` calls fail with `errors` in turn, then answer."""

    def __init__(self, *errors: Exception) -> None:
        self.errors, self.calls = list(errors), 0
        self.health = self

    def remote(self):  # noqa: ANN201 - returns a coroutine, as awaiting a DeploymentResponse does
        self.calls += 1
        error = self.errors.pop(0) if self.errors else None

        async def answer() -> dict[str, str]:
            if error is not None:
                raise error
            return {"model_version": "1"}

        return answer()


def test_a_probe_that_reaches_a_lost_replica_retries_and_keeps_the_arm() -> None:
    """A control replica killed under load once failed the arm's health probe, and the router then
    answered 503 to every control request until the next probe, though the other replica served.
    Serve drops a replica on `ActorDiedError` but not on `ActorUnavailableError`, so the probe
    retries more than once."""
    from ray.exceptions import ActorDiedError, ActorUnavailableError

    from monovec.serving.router import probe_arm

    handle = _Replicas(ActorUnavailableError("connection lost", None), ActorDiedError())
    assert asyncio.run(probe_arm(handle, "control")) == {"model_version": "1"}
    assert handle.calls == 3


def test_an_arm_whose_every_attempt_is_lost_fails_its_probe() -> None:
    from ray.exceptions import ActorDiedError

    from monovec.serving.router import REPLICA_LOSS_BACKOFF_S, call_arm, probe_arm

    lost = [ActorDiedError() for _ in range(len(REPLICA_LOSS_BACKOFF_S) + 1)]
    handle = _Replicas(*lost)
    with pytest.raises(ActorDiedError):
        asyncio.run(probe_arm(handle, "control"))
    assert handle.calls == len(REPLICA_LOSS_BACKOFF_S) + 1
    broken = _Replicas(RuntimeError("model failed its probe"))  # the arm's own failure: not retried
    with pytest.raises(RuntimeError):
        asyncio.run(call_arm(broken.remote, "control", backoff_s=(0.0,)))
    assert broken.calls == 1


def test_a_probe_that_does_not_answer_in_time_times_out() -> None:
    from monovec.serving.router import probe_arm

    class _Hung(_Replicas):
        def remote(self):  # noqa: ANN201
            return asyncio.sleep(10)

    with pytest.raises(TimeoutError):
        asyncio.run(probe_arm(_Hung(), "control", timeout_s=0.05))
