"""`make quickstart`: build a small classifier on real data, register it, classify a few texts.

    python jobs/quickstart.py --config jobs/configs/quickstart.yaml [key.path=value ...]
"""

from __future__ import annotations

import argparse
import logging
import sys

from monovec.classify.quickstart import QuickstartConfig, run_quickstart
from monovec.config import ConfigError, load_config
from monovec.ray_env import init_ray


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. build.ray.num_cpus=2")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(QuickstartConfig, args.config, args.overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    init_ray(cfg.build.ray.address, cfg.build.ray.num_cpus)
    run_quickstart(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
