"""Run a Ray Tune sweep over config paths, log every trial to MLflow, write the best config.

    python jobs/tune.py --space tune_spaces/prototype_thresholds.yaml [--config jobs/configs/tune_classifier.yaml]
                        [--num-samples N] [--out DIR] [--address ADDR] [--search optuna|random|grid] [--multi-objective] [key.path=value ...]
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python jobs/tune.py --space tune_spaces/prototype_thresholds.yaml

Rerun with the same arguments and --out to resume a sweep whose driver died (Tuner.restore); a finished
sweep's --out is refused (exit 2).
"""

from __future__ import annotations

import argparse
import sys

from monovec.config import ConfigError
from monovec.entry import add_job_arguments, setup_logging, start_ray
from monovec.tuning.config import load_job
from monovec.tuning.runner import plan_sweep, run_sweep
from monovec.tuning.space import load_space


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_job_arguments(parser, config_required=False)
    parser.add_argument("--space", required=True, help="search space YAML (tune_spaces/*.yaml)")
    parser.add_argument("--num-samples", type=int, help="trials (overrides search.num_samples)")
    parser.add_argument("--address", help="Ray address (default: RAY_ADDRESS or a local Ray)")
    parser.add_argument(
        "--search", choices=["optuna", "random", "grid"], help="search algorithm (overrides search.algorithm)"
    )
    parser.add_argument(
        "--multi-objective",
        action="store_true",
        help="Optuna on [metric:max, budget metric:min]; Pareto front CSV/PNG",
    )
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        if args.from_tune:
            raise ConfigError(
                "--from-tune does not apply to a sweep (it applies a sweep's result to a build or training)"
            )
        space = load_space(args.space)
        job = load_job(
            args.config,
            args.overrides,
            num_samples=args.num_samples,
            out=args.out,
            address=args.address,
            algorithm=args.search,
            multi_objective=args.multi_objective,
        )
        plan = plan_sweep(job, space, args.space)  # every config error before Ray starts
        start_ray(job.ray, dashboard=True)  # State API: see init_ray
        result = run_sweep(job, space, args.space, progress=lambda m: print(m, flush=True), plan=plan)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"best_yaml={result.files['best']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
