"""Search spaces as YAML: keys are config field paths, values say how to sample them.

    # python jobs/tune.py --space tune_spaces/prototype_thresholds.yaml
    name: prototype_thresholds
    target: classifier                       # which config model the keys address
    params:
      classifier.heads.emotion.gate.T_max: {type: uniform, low: 0.15, high: 0.6}
      classifier.heads.emotion.prototypes.multi_k: {type: choice, values: [1, 2, 3, 4, 6]}

One file feeds every search algorithm: Optuna gets distributions, random search gets Tune
domains, grid search gets value lists. `check_space` walks the target's pydantic models, so a key
that names no field, or bounds outside a field's own limits, fail before any trial runs.
"""

from __future__ import annotations

import math
import types
import typing
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator
from pydantic.fields import FieldInfo

from monovec.config import ConfigError, StrictModel, load_config

ParamType = Literal["uniform", "loguniform", "int", "choice", "grid"]


class ParamSpec(StrictModel):
    """How one config field is sampled. `low`/`high` are inclusive."""

    type: ParamType
    low: float | None = Field(None, description="lower bound (uniform, loguniform, int)")
    high: float | None = Field(None, description="upper bound, inclusive (uniform, loguniform, int)")
    step: float | None = Field(None, gt=0, description="quantisation step (uniform, int)")
    values: list[Any] | None = Field(None, description="the options (choice, grid)")
    description: str = ""

    @model_validator(mode="after")
    def _shape(self) -> ParamSpec:
        if self.type in ("choice", "grid"):
            if not self.values or self.low is not None or self.high is not None:
                raise ValueError(f"{self.type}: give a non-empty `values` list and no low/high")
            if len({repr(v) for v in self.values}) != len(self.values):
                raise ValueError(f"{self.type}: duplicate values {self.values}")
            return self
        if self.low is None or self.high is None or self.values is not None:
            raise ValueError(f"{self.type}: give `low` and `high` (and no `values`)")
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low >= self.high:
            raise ValueError(f"{self.type}: need finite low < high, got [{self.low}, {self.high}]")
        if self.type == "loguniform" and (self.low <= 0 or self.step is not None):
            raise ValueError("loguniform: low must be > 0 and step is not supported")
        if self.type == "int" and not (float(self.low).is_integer() and float(self.high).is_integer()):
            raise ValueError(f"int: bounds must be integers, got [{self.low}, {self.high}]")
        if self.step is not None and not _on_grid(self.high, self.low, self.step):
            raise ValueError(f"{self.type}: high - low must be a multiple of step {self.step}")
        return self

    def contains(self, value: Any) -> bool:
        """Whether `value` can be sampled (the baseline must be, or it cannot be enqueued)."""
        if self.type in ("choice", "grid"):
            return any(value == v for v in self.values or [])
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        assert self.low is not None and self.high is not None
        inside = self.low - 1e-12 <= value <= self.high + 1e-12
        if self.type == "int":
            inside = inside and float(value).is_integer()
        step = self.step or (1 if self.type == "int" else None)
        return inside and (step is None or _on_grid(value, self.low, step))

    def grid(self, points: int) -> list[Any]:
        """Values a grid search visits: the listed ones, or `points` spread over [low, high]."""
        if self.values is not None:
            return list(self.values)
        assert self.low is not None and self.high is not None
        if self.type == "int":
            ints = np.unique(np.round(np.linspace(self.low, self.high, points)).astype(int))
            step = int(self.step or 1)
            return sorted({int(self.low + round((v - self.low) / step) * step) for v in ints})
        if self.type == "loguniform":
            return [float(v) for v in np.geomspace(self.low, self.high, points)]
        vals = np.linspace(self.low, self.high, points)
        if self.step:
            vals = np.unique(self.low + np.round((vals - self.low) / self.step) * self.step)
        return [round(float(v), 10) for v in vals]


def _on_grid(value: float, low: float, step: float) -> bool:
    k = (value - low) / step
    return abs(k - round(k)) < 1e-6


class SearchSpace(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="sweep name prefix")
    target: str = Field(description="config model the keys address (see monovec.tuning.targets)")
    description: str = ""
    params: dict[str, ParamSpec] = Field(min_length=1, description="config path -> sampling rule")


def load_space(path: str | Path, check: bool = True) -> SearchSpace:
    """Parse a space file; with `check`, also resolve every key against its target's config model."""
    space = load_config(SearchSpace, path)
    if check:
        from monovec.tuning.targets import config_model

        check_space(space, config_model(space.target))
    return space


# ---------------------------------------------------------------- conversions for the search algorithms


def to_optuna(space: SearchSpace) -> dict[str, Any]:
    """Optuna distributions (what OptunaSearch needs for multi-objective runs and enqueued points)."""
    import optuna

    out: dict[str, Any] = {}
    for key, p in space.params.items():
        if p.type in ("choice", "grid"):
            out[key] = optuna.distributions.CategoricalDistribution(p.values)
        elif p.type == "int":
            out[key] = optuna.distributions.IntDistribution(int(p.low), int(p.high), step=int(p.step or 1))
        else:
            out[key] = optuna.distributions.FloatDistribution(
                p.low, p.high, log=p.type == "loguniform", step=p.step
            )
    return out


def to_tune(space: SearchSpace, grid_points: int | None = None) -> dict[str, Any]:
    """Ray Tune domains for BasicVariantGenerator; `grid_points` turns every entry into a grid."""
    from ray import tune

    out: dict[str, Any] = {}
    for key, p in space.params.items():
        if grid_points is not None or p.type == "grid":
            out[key] = tune.grid_search(p.grid(grid_points or 0))
        elif p.type == "choice":
            out[key] = tune.choice(p.values)
        elif p.type == "int":
            out[key] = (
                tune.qrandint(int(p.low), int(p.high), int(p.step))
                if p.step
                else tune.randint(int(p.low), int(p.high) + 1)
            )
        elif p.type == "loguniform":
            out[key] = tune.loguniform(p.low, p.high)
        else:
            out[key] = tune.quniform(p.low, p.high, p.step) if p.step else tune.uniform(p.low, p.high)
    return out


def grid_size(space: SearchSpace, grid_points: int) -> int:
    return int(np.prod([len(p.grid(grid_points)) for p in space.params.values()]))


# ---------------------------------------------------------------- keys -> config fields


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types behind Optional / unions."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def resolve_field(model: type[BaseModel], path: str) -> tuple[Any, Any]:
    """(FieldInfo, annotation) of the leaf field `path` names in `model`, walking nested models,
    dicts (any key, or one of a Literal key type's values) and lists (integer index); a dict's or list's
    element is a leaf too (`train.group_lr_scale.pool`), with its Annotated limits. Raises ConfigError
    naming the first bad part."""
    parts = path.split(".")
    annotation: Any = model
    info = None
    for i, part in enumerate(parts):
        where = ".".join(parts[: i + 1])
        step = None
        for cand in _unwrap(annotation):
            origin = typing.get_origin(cand)
            if isinstance(cand, type) and issubclass(cand, BaseModel):
                if part in cand.model_fields:
                    info = cand.model_fields[part]
                    step = info.annotation
            elif origin is dict:
                key_t, value_t = typing.get_args(cand)
                if typing.get_origin(key_t) is Literal and part not in typing.get_args(key_t):
                    raise ConfigError(f"{path}: {part!r} is not one of {typing.get_args(key_t)}")
                # an element's own constraints (dict[str, PositiveFloat]) live in its Annotated metadata
                info = FieldInfo.from_annotation(value_t)
                step = info.annotation
            elif origin is list and part.isdigit():
                info = FieldInfo.from_annotation(typing.get_args(cand)[0])
                step = info.annotation
            if step is not None:
                break
        if step is None:
            raise ConfigError(
                f"{path}: {where!r} is not a field of {getattr(annotation, '__name__', annotation)}"
            )
        annotation = step
    if info is None or any(isinstance(a, type) and issubclass(a, BaseModel) for a in _unwrap(annotation)):
        raise ConfigError(f"{path}: does not name a value field")
    return info, annotation


def _field_bounds(info: Any) -> tuple[float, float, bool, bool]:
    """(low, high, low_inclusive, high_inclusive) from the field's ge/gt/le/lt constraints."""
    low, high, lo_inc, hi_inc = -math.inf, math.inf, True, True
    for m in getattr(info, "metadata", []):
        if getattr(m, "ge", None) is not None:
            low, lo_inc = float(m.ge), True
        if getattr(m, "gt", None) is not None:
            low, lo_inc = float(m.gt), False
        if getattr(m, "le", None) is not None:
            high, hi_inc = float(m.le), True
        if getattr(m, "lt", None) is not None:
            high, hi_inc = float(m.lt), False
    return low, high, lo_inc, hi_inc


def _scalar_kinds(annotation: Any) -> set[str]:
    kinds = set()
    for a in _unwrap(annotation):
        if a is bool:
            kinds.add("bool")
        elif a is int:
            kinds.add("int")
        elif a is float:
            kinds.update({"float", "int"})
        elif a is str or typing.get_origin(a) is Literal:
            kinds.add("str")
    return kinds


def check_param(model: type[BaseModel], key: str, spec: ParamSpec) -> None:
    """The key names a real field of `model` and every value the spec can produce is allowed by it."""
    info, annotation = resolve_field(model, key)
    kinds = _scalar_kinds(annotation)
    if spec.type in ("uniform", "loguniform") and "float" not in kinds:
        raise ConfigError(f"{key}: {spec.type} needs a float field, the field is {annotation}")
    if spec.type == "int" and "int" not in kinds:
        raise ConfigError(f"{key}: int needs an int field, the field is {annotation}")
    low, high, lo_inc, hi_inc = _field_bounds(info)
    values = spec.values if spec.values is not None else [spec.low, spec.high]
    for v in values:
        if isinstance(v, bool):
            if "bool" not in kinds:
                raise ConfigError(f"{key}: value {v!r} is not allowed for {annotation}")
            continue
        if isinstance(v, int | float):
            if not kinds & {"int", "float"} or (
                isinstance(v, float) and not float(v).is_integer() and "float" not in kinds
            ):
                raise ConfigError(f"{key}: value {v!r} is not allowed for {annotation}")
            if v < low or v > high or (v == low and not lo_inc) or (v == high and not hi_inc):
                raise ConfigError(f"{key}: value {v} is outside the field's limits [{low}, {high}]")
        elif "str" not in kinds:
            raise ConfigError(f"{key}: value {v!r} is not allowed for {annotation}")
        if typing.get_origin(annotation) is Literal and v not in typing.get_args(annotation):
            raise ConfigError(f"{key}: {v!r} is not one of {typing.get_args(annotation)}")


def check_space(space: SearchSpace, model: type[BaseModel]) -> None:
    errors = []
    for key, spec in space.params.items():
        try:
            check_param(model, key, spec)
        except ConfigError as exc:
            errors.append(str(exc))
    if errors:
        raise ConfigError(f"space {space.name!r} (target {space.target}):\n  " + "\n  ".join(errors))


def get_path(data: Any, key: str) -> Any:
    """The value at a dotted path of a config dict (lists by index); KeyError if it is not set."""
    node = data
    for part in key.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node
