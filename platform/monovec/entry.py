"""One path from a command line to the library: the same options, logging and Ray start for every job.

`jobs/*.py` and the `monovec` CLI commands that run a job both go through this module (the model is
torchtune's `@config.parse`): a job script is `@job(ConfigClass)` on a function of the validated config,
a CLI command calls `load_job_config` and `start_ray` itself. Every job therefore accepts

* `--config FILE` the job's YAML (a pydantic model, unknown keys are errors),
* `--out DIR` shorthand for `out_dir=DIR`,
* `--from-tune SWEEP` the winning overrides of a Tune sweep (its folder, a folder of sweeps, its
  best.yaml or MLflow run id), applied before the command line's own overrides; without `--config`
  the sweep's base config is used,
* positional `key.path=value` overrides (values parsed as YAML), the last word on every value,
* `-v/--verbose` debug logging,

and logs the same way: monovec's own loggers at INFO, other libraries at WARNING, one format. Only
entrypoints start Ray (`start_ray`); library functions such as `run_sweep` and `run_training` use the
Ray the entrypoint started and never start one themselves.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from monovec.config import ConfigError, load_config
from monovec.infra import RayConfig

T = TypeVar("T", bound=BaseModel)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


LIBRARY_LOGGERS = ("mlflow", "alembic", "optuna", "chromadb", "httpx", "urllib3", "filelock")
"""Libraries that set their own logger's level (MLflow sets INFO on import): the root level alone
would not quiet them, and then a job's output depends on what happened to be imported first."""


def setup_logging(verbose: bool = False, log_file: str | Path | None = None) -> None:
    """monovec's loggers at INFO (DEBUG with `verbose`), other libraries at WARNING (INFO with
    `verbose`); to stderr or `log_file`. Safe to call again: levels are set even when a handler exists
    (where `logging.basicConfig` alone does nothing)."""
    logging.basicConfig(format=LOG_FORMAT, filename=str(log_file) if log_file else None)
    logging.getLogger().setLevel(logging.DEBUG if verbose else logging.WARNING)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger("monovec").setLevel(logging.DEBUG if verbose else logging.INFO)


def tuned_overrides(from_tune: str | Path) -> tuple[list[str], str | None, list[str]]:
    """(overrides as `key=json`, the sweep's base config path or None, lines saying what was applied).

    Raises ConfigError when `from_tune` is no sweep (see `monovec.tuning.report.load_best`)."""
    from monovec.paths import REPO_ROOT
    from monovec.tuning.report import load_best

    best = load_best(from_tune)
    items = [f"{k}={json.dumps(v)}" for k, v in best["overrides"].items()]
    base = best.get("base_config")
    if base:  # a sweep names its base relative to the checkout it ran in
        path = Path(base)
        base = str(path if path.is_file() or not (REPO_ROOT / path).is_file() else REPO_ROOT / path)
    said = [best["_note"]] if best.get("_note") else []
    said.append(
        f"applying {len(items)} tuned overrides from {best['_path']} (sweep objective {best.get('objective')})"
    )
    return items, base, said


def load_job_config(
    cls: type[T],
    config: str | Path | None,
    overrides: list[str] | None = None,
    *,
    out: str | Path | None = None,
    from_tune: str | Path | None = None,
    default_config: str | Path | None = None,
    note: Callable[[str], None] | None = None,
) -> T:
    """The job config: YAML (`config`, else the sweep's base config, else `default_config`, else the
    model's defaults) + the sweep's tuned overrides + `overrides` + `out_dir=out`. Raises ConfigError."""
    items: list[str] = []
    if from_tune is not None:
        tuned, base, said = tuned_overrides(from_tune)
        items += tuned
        config = config if config is not None else base
        for line in said if note is not None else ():
            note(line)
    items += list(overrides or [])
    if out is not None:
        items.append(f"out_dir={out}")
    return load_config(cls, config if config is not None else default_config, items)


def start_ray(ray: RayConfig, *, dashboard: bool = False, **kwargs: Any) -> bool:
    """Join `ray.address` (or $RAY_ADDRESS) or start a private local Ray with `ray.num_cpus`; see init_ray."""
    from monovec.ray_env import init_ray

    return init_ray(ray.address, ray.num_cpus, dashboard=dashboard, **kwargs)


def add_job_arguments(parser: argparse.ArgumentParser, *, config_required: bool = True) -> None:
    """The options every job script takes (see the module docstring)."""
    parser.add_argument("--config", required=config_required, help="the job's YAML config")
    parser.add_argument("--out", help="output directory (shorthand for out_dir=DIR)")
    parser.add_argument(
        "--from-tune", help="apply a Tune sweep's best overrides (sweep folder, best.yaml or MLflow run id)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "overrides", nargs="*", help="dotted overrides, key.path=value (values parsed as YAML)"
    )


def job(
    cls: type[T],
    *,
    ray: bool | Callable[[T], bool] = True,
    dashboard: bool = False,
    arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    config_required: bool = True,
) -> Callable[[Callable[..., int | None]], Callable[[list[str] | None], int]]:
    """Decorate `run(cfg, args) -> exit code` into a job script's `main(argv) -> exit code`.

    `ray` says whether the job needs Ray (or a function of the config deciding it); `arguments` adds the
    job's own options (e.g. `--events`). A ConfigError anywhere exits 2 with one `error:` line."""

    def wrap(run: Callable[..., int | None]) -> Callable[[list[str] | None], int]:
        @functools.wraps(run)
        def main(argv: list[str] | None = None) -> int:
            module = sys.modules.get(run.__module__)
            parser = argparse.ArgumentParser(
                description=getattr(module, "__doc__", None),
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
            add_job_arguments(parser, config_required=config_required)
            if arguments is not None:
                arguments(parser)
            args = parser.parse_args(argv)
            setup_logging(args.verbose)
            try:
                cfg = load_job_config(
                    cls,
                    args.config,
                    args.overrides,
                    out=args.out,
                    from_tune=args.from_tune,
                    note=lambda m: print(m, file=sys.stderr),
                )
                if ray(cfg) if callable(ray) else ray:
                    start_ray(cfg.ray, dashboard=dashboard)  # type: ignore[attr-defined]
                return run(cfg, args) or 0
            except ConfigError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2

        return main

    return wrap
