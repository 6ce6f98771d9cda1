"""The Tune target interface is explicit: an ABC whose optional hooks have defaults (no hasattr probes)."""

from __future__ import annotations

from typing import Any

import pytest

from monovec.config import ConfigError
from monovec.tuning import targets
from monovec.tuning.targets import TARGETS, Target, TargetSpec, runtime


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_registered_runtime_is_a_target(name: str) -> None:
    assert isinstance(runtime(name), Target)


def test_a_target_must_prepare_and_run_trials_and_gets_the_rest_by_default() -> None:
    class Half(Target):
        def prepare(self, base: Any, options: Any, progress: Any) -> Any:
            return None

    with pytest.raises(TypeError, match="run_trial"):
        Half()  # type: ignore[abstract]

    class Minimal(Half):
        def run_trial(self, data: Any, base: dict[str, Any], params: Any, report: Any) -> None:
            report({"x": 1.0})

    t = Minimal()
    assert t.reuse_actors is True and t.trial_resources(None) is None and t.max_iterations({}, {}) == 100
    assert t.summarize([], {}, [], 1) == {} and t.close(None) is None


def test_a_registered_object_that_is_no_target_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        TARGETS,
        "bogus",
        TargetSpec(
            "bogus", "monovec.config:StrictModel", "monovec.config:ConfigError", "classifier", "x.yaml"
        ),
    )
    with pytest.raises(ConfigError, match="not a monovec.tuning.targets.Target"):
        targets.runtime("bogus")
