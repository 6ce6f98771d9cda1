"""What a sweep can tune: a registry from a space's `target:` to its config model and trial code.

A target is two things. Its *config model* is what the space's keys address (the unit test walks it
without importing Ray or torch). Its *runtime* prepares the expensive, parameter-independent data
once on the driver (embeddings, fitted heads) and scores one trial from that data. The TextVib
target (`monovec.tuning.textvib`) and the encoder fine-tuning target (`monovec.tuning.encoder`) train one
Ray Train run per trial and report every epoch.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from monovec.config import ConfigError

Report = Callable[[dict[str, float]], None]


class Target(ABC):
    """Runtime of a tunable model family: subclass it, implement `prepare` and `run_trial`, register it in
    TARGETS. Stateless (data travels through the object store); every other method has a default that a
    target overrides when it needs to."""

    reuse_actors: bool = True
    """Tune may reuse a trial's actor for the next trial; False when a stopped trial must die (e.g. so
    its nested Ray Train controller and workers do)."""

    @abstractmethod
    def prepare(self, base: BaseModel, options: BaseModel, progress: Callable[[str], None]) -> Any:
        """Everything trials share, computed once on the driver (it is `ray.put` by the runner)."""

    @abstractmethod
    def run_trial(self, data: Any, base: dict[str, Any], params: Mapping[str, Any], report: Report) -> None:
        """Apply `params` (config path -> value) to the base config dict, evaluate, `report` metrics
        (once, or once per epoch for schedulers). Must not re-embed or refit what `prepare` made."""

    def close(self, data: Any) -> None:  # noqa: B027 - an optional hook, empty by default
        """Called on the driver after the sweep (e.g. to kill helper actors); default: nothing."""

    def trial_resources(self, data: Any) -> dict[str, float] | None:
        """Ray resources of one trial; None = `search.cpus_per_trial` CPUs."""
        return None

    def max_iterations(self, base: Mapping[str, Any], params: Mapping[str, Any]) -> int:
        """The most reports (iterations) a trial makes: ASHA's `max_t`; default 100."""
        return 100

    def summarize(
        self, rows: Sequence[Mapping[str, Any]], base: Mapping[str, Any], params: Sequence[str], max_t: int
    ) -> dict[str, Any]:
        """Extra summary.json fields from the finished rows (e.g. the epochs ASHA saved); default none."""
        return {}


@dataclass(frozen=True)
class TargetSpec:
    name: str
    config_model: str  # "module:Class" the keys address
    runtime: str  # "module:object", an instance of a Target subclass
    options_field: str  # the TuneJobConfig block with this target's trial options
    default_base_config: str  # job config the overrides apply to, relative to the repo root


TARGETS: dict[str, TargetSpec] = {
    "classifier": TargetSpec(
        name="classifier",
        config_model="monovec.classify.build:BuildConfig",
        runtime="monovec.tuning.classifier:TARGET",
        options_field="classifier",
        default_base_config="jobs/configs/classifier.yaml",
    ),
    "textvib": TargetSpec(
        name="textvib",
        config_model="monovec.textvib.config:TextVibConfig",
        runtime="monovec.tuning.textvib:TARGET",
        options_field="textvib",
        default_base_config="jobs/configs/textvib_cwru.yaml",
    ),
    "encoder": TargetSpec(
        name="encoder",
        config_model="monovec.finetune.config:FinetuneConfig",
        runtime="monovec.tuning.encoder:TARGET",
        options_field="encoder",
        default_base_config="jobs/configs/encoder_finetune.yaml",
    ),
}


def _load(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def target_spec(name: str) -> TargetSpec:
    if name not in TARGETS:
        raise ConfigError(f"unknown tune target {name!r}; known: {sorted(TARGETS)}")
    return TARGETS[name]


def config_model(name: str) -> type[BaseModel]:
    return _load(target_spec(name).config_model)


def runtime(name: str) -> Target:
    """The registered runtime of target `name`; ConfigError when it is no Target."""
    obj = _load(target_spec(name).runtime)
    if not isinstance(obj, Target):
        raise ConfigError(
            f"tune target {name!r}: {target_spec(name).runtime} is a {type(obj).__name__}, not a monovec.tuning.targets.Target"
        )
    return obj
