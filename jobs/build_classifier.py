"""Build, evaluate and register a unified classifier version.

    python jobs/build_classifier.py --config jobs/configs/classifier.yaml [--out DIR] [key.path=value ...]
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python jobs/build_classifier.py --config jobs/configs/classifier.yaml
"""

from __future__ import annotations

import argparse
import logging
import sys

from monovec.classify.build import BuildConfig, build_classifier
from monovec.config import ConfigError, load_config
from monovec.ray_env import init_ray


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="BuildConfig YAML")
    parser.add_argument("--out", help="output directory (overrides out_dir)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. classifier.heads.emotion.gate.margin=0.1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = list(args.overrides) + ([f"out_dir={args.out}"] if args.out else [])
    try:
        config = load_config(BuildConfig, args.config, overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    init_ray(config.ray.address, config.ray.num_cpus)
    result = build_classifier(config)
    print(f"model_dir={result.model_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
