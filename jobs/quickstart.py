"""`make quickstart`: two classifier versions on real data, registered, served as an A/B experiment, decided.

python jobs/quickstart.py --config jobs/configs/quickstart.yaml [key.path=value ...]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from monovec.classify.quickstart import QuickstartConfig, run_quickstart
from monovec.config import ConfigError
from monovec.entry import add_job_arguments, load_job_config, setup_logging, start_ray
from monovec.paths import state_dir
from monovec.ray_env import ray_log_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_job_arguments(parser)
    args = parser.parse_args(argv)
    try:
        cfg = load_job_config(
            QuickstartConfig, args.config, args.overrides, out=args.out, from_tune=args.from_tune
        )
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log_file = state_dir() / "logs" / f"quickstart-{time.strftime('%Y%m%d-%H%M%S')}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    setup_logging(args.verbose, log_file=log_file)  # the console keeps the quickstart's own lines only
    t0 = time.perf_counter()
    start_ray(cfg.build.ray, log_to_driver=False, logging_level=logging.WARNING)
    import mlflow  # noqa: F401  (both configure console handlers on import: their lines go to the file instead)
    import ray.serve  # noqa: F401

    for name in ("ray", "ray.serve", "mlflow"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    print(f"monovec quickstart: local Ray on 127.0.0.1 ({cfg.build.ray.num_cpus} CPUs)")
    print(f"logs: {log_file} (monovec) and {ray_log_dir()} (Ray)")
    run_quickstart(cfg)
    print(
        f"done in {time.perf_counter() - t0:.0f}s. Next: .venv/bin/monovec serve up (champion vs candidate, README)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
