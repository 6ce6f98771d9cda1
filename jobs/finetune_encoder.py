"""Fine-tune the shared text encoder (USE-m3) on Ray Train, multi-task; export, log and register it.

    python jobs/finetune_encoder.py --config jobs/configs/encoder_finetune.yaml [--out DIR] [key.path=value ...]
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python jobs/finetune_encoder.py --config jobs/configs/encoder_finetune.yaml

An existing --out is resumed from its last per-epoch checkpoint (a killed run continues where it stopped).
"""

from __future__ import annotations

import argparse
import logging
import sys

from monovec.config import ConfigError, load_config
from monovec.finetune.config import FinetuneConfig
from monovec.finetune.train import run_finetune


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="FinetuneConfig YAML")
    parser.add_argument("--out", help="run directory (overrides out_dir; an existing one is resumed)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.epochs=1 scaling.num_workers=2")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = list(args.overrides) + ([f"out_dir={args.out}"] if args.out else [])
    try:
        config = load_config(FinetuneConfig, args.config, overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = run_finetune(config, progress=lambda m: print(m, flush=True))
    print(f"run_dir={result.run_dir}")
    print(f"model_dir={result.model_dir}")
    if result.registered:
        print(f"encoder=models:/{result.registered['name']}/{result.registered['version']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
