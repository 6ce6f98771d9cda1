"""`classifier` Serve app: ExperimentRouter (FastAPI ingress) -> one ClassifierArm deployment per arm.

    serve deploy serve_apps/classifier.yaml        # against a running Ray (monovec cluster up)
    monovec serve up [--config serve_apps/classifier.yaml]
"""

from __future__ import annotations

from typing import Any

from ray.serve import Application

from monovec.serving.arm import ClassifierArm
from monovec.serving.config import ClassifierAppArgs
from monovec.serving.router import ExperimentRouter


def build_app(args: dict[str, Any]) -> Application:
    """Validate `args` (ClassifierAppArgs) and wire the deployments."""
    cfg = ClassifierAppArgs.model_validate(args)
    arms = {}
    for name, spec in cfg.arms().items():
        options: dict[str, Any] = {"name": f"arm_{name}", "ray_actor_options": {"num_cpus": spec.num_cpus}}
        if spec.autoscaling_config:
            options["autoscaling_config"] = spec.autoscaling_config
        else:
            options["num_replicas"] = spec.num_replicas
        arms[name] = ClassifierArm.options(**options).bind(
            name,
            spec.model,
            spec.overrides,
            max(1, round(spec.num_cpus)),
            cfg.batching.max_batch_size,
            cfg.batching.batch_wait_timeout_s,
            cfg.drift.model_dump(),
        )
    return ExperimentRouter.options(num_replicas=cfg.router_replicas, ray_actor_options={"num_cpus": 0.25}).bind(cfg.model_dump(mode="json"), arms)
