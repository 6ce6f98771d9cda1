"""Build, evaluate and register a unified classifier version.

python jobs/build_classifier.py --config jobs/configs/classifier.yaml [--out DIR] [--from-tune SWEEP] [key.path=value ...]
ray job submit --address http://127.0.0.1:8265 --working-dir . -- python jobs/build_classifier.py --config jobs/configs/classifier.yaml
"""

from __future__ import annotations

import sys

from monovec.classify.build import BuildConfig, build_classifier
from monovec.entry import job


@job(BuildConfig)
def main(config: BuildConfig, args: object) -> int:
    result = build_classifier(config)
    print(f"model_dir={result.model_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
