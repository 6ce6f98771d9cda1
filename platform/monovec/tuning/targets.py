"""What a sweep can tune: a registry from a space's `target:` to its config model and trial code.

A target is two things. Its *config model* is what the space's keys address (the unit test walks it
without importing Ray or torch). Its *runtime* prepares the expensive, parameter-independent data
once on the driver (embeddings, fitted heads) and scores one trial from that data. The TextVib
target (`monovec.tuning.textvib`) and the encoder fine-tuning target (`monovec.tuning.encoder`) train one
Ray Train run per trial and report every epoch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel

from monovec.config import ConfigError

Report = Callable[[dict[str, float]], None]


class Target(Protocol):
    """Runtime of a tunable model family (stateless; data travels through the object store)."""

    def prepare(self, base: BaseModel, options: BaseModel, progress: Callable[[str], None]) -> Any:
        """Everything trials share, computed once (it is `ray.put` by the runner)."""
        ...

    def run_trial(self, data: Any, base: dict[str, Any], params: Mapping[str, Any], report: Report) -> None:
        """Apply `params` (config path -> value) to the base config dict, evaluate, `report` metrics
        (once, or once per epoch for schedulers). Must not re-embed or refit what `prepare` made."""
        ...

    # Optional: `close(data)` is called on the driver after the sweep (e.g. to kill helper actors);
    # `trial_resources(data)`, `max_iterations(base, params)` (ASHA's max_t), `reuse_actors`, and
    # `summarize(rows, base, params, max_t)` (extra summary.json fields) are read with getattr.


@dataclass(frozen=True)
class TargetSpec:
    name: str
    config_model: str  # "module:Class" the keys address
    runtime: str  # "module:object" implementing Target
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
    return _load(target_spec(name).runtime)
