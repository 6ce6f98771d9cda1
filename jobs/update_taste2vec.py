"""Learn Taste2Vec online from feedback events (JSONL files), exactly once per event, on Ray Train.

    python jobs/update_taste2vec.py --config jobs/configs/taste2vec.yaml --events DIR|FILE [key.path=value ...]
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python jobs/update_taste2vec.py --config jobs/configs/taste2vec.yaml --events /abs/path/events

Rerun it whenever new events arrive: it resumes from the last checkpoint and watermark.
`monovec taste simulate --out DIR --write-events` produces a realistic event folder (DIR/events).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from monovec.config import ConfigError, load_config
from monovec.ray_env import init_ray
from monovec.taste.config import Taste2VecJobConfig
from monovec.taste.update import run_update


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="Taste2VecJobConfig YAML")
    parser.add_argument("--events", required=True, help="a JSONL file or a folder of *.jsonl files")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. ray.num_workers=1 update.register_every=1000")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(Taste2VecJobConfig, args.config, args.overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    init_ray(config.ray.address, config.ray.num_cpus)
    summary = run_update(config, args.events)
    print(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
