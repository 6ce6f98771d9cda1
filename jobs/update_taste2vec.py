"""Learn Taste2Vec online from feedback events (JSONL files), exactly once per event, on Ray Train.

    python jobs/update_taste2vec.py --config jobs/configs/taste2vec.yaml --events DIR|FILE [--out DIR] [key.path=value ...]
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python jobs/update_taste2vec.py --config jobs/configs/taste2vec.yaml --events /abs/path/events

Rerun it whenever new events arrive: it resumes from the last checkpoint and watermark.
`monovec taste simulate --out DIR --write-events` produces a realistic event folder (DIR/events).
"""

from __future__ import annotations

import json
import sys

from monovec.entry import job
from monovec.taste.config import Taste2VecJobConfig
from monovec.taste.update import run_update


def events_argument(parser) -> None:  # noqa: ANN001
    parser.add_argument("--events", required=True, help="a JSONL file or a folder of *.jsonl files")


@job(Taste2VecJobConfig, arguments=events_argument)
def main(config: Taste2VecJobConfig, args) -> int:  # noqa: ANN001
    summary = run_update(config, args.events)
    print(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
