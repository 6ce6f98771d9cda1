"""TextVibCLIP continual training on Ray Train (domain after domain), results under a run dir + MLflow.

    python jobs/train_textvib.py --config jobs/configs/textvib_cwru.yaml [--out DIR] [key.path=value ...]
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python jobs/train_textvib.py --config jobs/configs/textvib_cwru.yaml
"""

from __future__ import annotations

import argparse
import logging
import sys

from monovec.config import ConfigError, load_config
from monovec.textvib.config import TextVibConfig
from monovec.textvib.train import run_training


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="TextVibConfig YAML")
    parser.add_argument("--out", help="run directory (overrides out_dir; an existing one is resumed)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. model.prototypes.tau=0.05 scaling.num_workers=2")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = list(args.overrides) + ([f"out_dir={args.out}"] if args.out else [])
    try:
        config = load_config(TextVibConfig, args.config, overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = run_training(config)
    print(f"run_dir={result.run_dir}")
    print(f"model_dir={result.model_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
