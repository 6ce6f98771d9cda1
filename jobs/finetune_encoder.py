"""Fine-tune the shared text encoder (USE-m3) on Ray Train, multi-task; export, log and register it.

    python jobs/finetune_encoder.py --config jobs/configs/encoder_finetune.yaml [--out DIR] [--from-tune SWEEP] [key.path=value ...]
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python jobs/finetune_encoder.py --config jobs/configs/encoder_finetune.yaml

An existing --out is resumed from its last per-epoch checkpoint (a killed run continues where it stopped).
`scaling.num_workers: 0` runs the loop in this process without Ray.
"""

from __future__ import annotations

import sys

from monovec.entry import job
from monovec.finetune.config import FinetuneConfig
from monovec.finetune.train import run_finetune


# dashboard: Ray Train's PlacementGroupCleaner asks the State API (served by the dashboard) every few seconds
# whether the run's controller is alive; without it every ask fails with a warning on the console.
@job(FinetuneConfig, ray=lambda cfg: cfg.scaling.num_workers > 0, dashboard=True)
def main(config: FinetuneConfig, args: object) -> int:
    result = run_finetune(config, progress=lambda m: print(m, flush=True))
    print(f"run_dir={result.run_dir}")
    print(f"model_dir={result.model_dir}")
    if result.registered:
        print(f"encoder=models:/{result.registered['name']}/{result.registered['version']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
