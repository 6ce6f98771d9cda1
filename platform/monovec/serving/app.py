"""The `classifier` Serve app's typed builder: ExperimentRouter (FastAPI ingress) -> one ClassifierArm per arm.

    serve deploy serve_apps/classifier.yaml        # import_path: monovec.serving.app:build_app
    monovec serve up [--config serve_apps/classifier.yaml]

The builder lives in the library (Ray's own pattern for app builders), so `serve deploy` works from any
directory where monovec is installed: no `sys.path` or `PYTHONPATH` set-up on the cluster.
"""

# No `from __future__ import annotations`: Serve reads the builder's annotation as a class to validate args.

from typing import Any

from ray.serve import Application

from monovec.serving.arm import ClassifierArm
from monovec.serving.config import ClassifierAppArgs
from monovec.serving.router import ExperimentRouter

ROUTER_CPUS = 0.25
"""CPUs reserved for each router replica (I/O bound: assignment, batching, sqlite write-behind)."""


def build_app(args: ClassifierAppArgs) -> Application:
    """Wire the router and the arms from validated app args.

    Serve validates the YAML's `args:` into `ClassifierAppArgs` before calling this (typed builder), so a
    typo fails `serve deploy` with the field's name instead of a replica failing later. Each arm gets
    `num_cpus` per replica (also its encoder's thread count, at least 1) and either `num_replicas` or
    its `autoscaling_config`.

    Raises:
        pydantic.ValidationError: when called with a dict that is not valid `ClassifierAppArgs`.
    """
    cfg = args if isinstance(args, ClassifierAppArgs) else ClassifierAppArgs.model_validate(args)
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
            None,
            spec.faults.model_dump(),
        )
    router = ExperimentRouter.options(
        num_replicas=cfg.router_replicas, ray_actor_options={"num_cpus": ROUTER_CPUS}
    )
    return router.bind(cfg, arms)
