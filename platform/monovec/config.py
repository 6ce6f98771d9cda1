"""One YAML loader for every job: pydantic models, `a.b.c=value` overrides, errors that name the field.

Configs are plain pydantic models owned by the module they configure; a job config composes them.
`extra="forbid"` everywhere so a typo in YAML is an error, not a silently ignored key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

T = TypeVar("T", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every config model: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message names the file and the field."""


def parse_override(item: str) -> tuple[list[str], Any]:
    """`heads.emotion.gate.margin=0.1` -> (['heads', 'emotion', 'gate', 'margin'], 0.1) (value parsed as YAML)."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key.path=value")
    key, raw = item.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"override {item!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {item!r}: value is not valid YAML ({exc})") from exc
    return parts, value


def set_path(data: dict[str, Any], parts: list[str], value: Any) -> None:
    """Set a nested key, creating dicts on the way; list elements are addressed by index."""
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = node[int(part)]
            continue
        if part not in node or node[part] is None:
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict | list):
            raise ConfigError(f"cannot set {'.'.join(parts)}: {'.'.join(parts[: i + 1])} is a value")
    if isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value


def apply_overrides(data: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    for item in overrides or []:
        parts, value = parse_override(item)
        set_path(data, parts, value)
    return data


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Load `cls` from YAML (or its defaults when path is None), apply dotted overrides, validate."""
    data = read_yaml(path) if path is not None else {}
    apply_overrides(data, overrides)
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        where = str(path) if path is not None else "defaults"
        lines = [f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(f"invalid {cls.__name__} config ({where}):\n  " + "\n  ".join(lines)) from exc


def dump_config(config: BaseModel, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True))
    return path
