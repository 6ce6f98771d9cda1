"""TextVibCLIP continual training on Ray Train (domain after domain), results under a run dir + MLflow.

    python jobs/train_textvib.py --config jobs/configs/textvib_cwru.yaml [--out DIR] [--from-tune SWEEP] [key.path=value ...]
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python jobs/train_textvib.py --config jobs/configs/textvib_cwru.yaml

An existing --out is resumed. `scaling.num_workers: 0` runs the loop in this process without Ray.
"""

from __future__ import annotations

import sys

from monovec.entry import job
from monovec.textvib.config import TextVibConfig
from monovec.textvib.train import run_training


@job(TextVibConfig, ray=lambda cfg: cfg.scaling.num_workers > 0)
def main(config: TextVibConfig, args: object) -> int:
    result = run_training(config)
    print(f"run_dir={result.run_dir}")
    print(f"model_dir={result.model_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
