"""Ray Train overhead of the encoder fine-tuning: the same epochs through a 1-worker TorchTrainer vs plain torch.

    python bench/encoder_train_overhead.py [--epochs 4] [--rows 300] [--threads 1]

Both sides run the identical `monovec.finetune.engine.FinetuneLoop` on the same real slice of
jobs/configs/encoder_finetune.yaml (`--rows` training rows per task, GoEmotions en/ko pairs, K-MHaS,
Davidson; prepared once) with the same torch thread count, in one process each (the driver for plain
torch, one Ray worker for Ray Train), and both write the full checkpoint (torch.save) after every epoch.
An epoch "cycle" is wall time from one epoch start to the next: train + dev evaluation + checkpoint
(+ ray.train.report and the copy to storage on the Ray side). The first epoch is warm-up and not
counted; plain torch runs before and after Ray and is averaged, so load drift hits both sides.
Printed: the steady-state overhead ratio (target <= +10%) and the one-off cost of starting Ray Train.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
REPO = Path(__file__).resolve().parents[1]


def plain_cycles(cfg, data) -> tuple[list[float], float]:  # noqa: ANN001
    """Per-epoch cycles of the plain-torch loop (same checkpoint write as the Ray loop) and its total wall."""
    import torch

    from monovec.finetune.engine import FinetuneLoop

    t0 = time.perf_counter()
    loop = FinetuneLoop(cfg, data)
    marks: list[float] = []

    def on_epoch(_m: dict) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            torch.save(loop.state_dict(), Path(tmp) / "state.pt")

    loop.run(on_epoch, before_epoch=lambda _e: marks.append(time.perf_counter()))
    marks.append(time.perf_counter())
    return [b - a for a, b in zip(marks[:-1], marks[1:], strict=True)], time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rows", type=int, default=300, help="training rows per task (dev: a third of it)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads on both sides (= CPUs of the Ray worker)"
    )
    args = parser.parse_args(argv)

    import ray

    from monovec.config import load_config
    from monovec.finetune.config import FinetuneConfig
    from monovec.finetune.train import build_trainer, portable, prepare_data
    from monovec.raytrain import checkpoint_state

    run_dir = Path(tempfile.mkdtemp(prefix="encoder-bench-"))
    slice_ = [
        f"tasks.{t}.{k}={v}"
        for t in ("emotion", "kmhas", "davidson")
        for k, v in (("max_rows", args.rows), ("max_dev_rows", args.rows // 3))
    ]
    overrides = [*slice_, f"train.epochs={args.epochs}", f"train.threads={args.threads}", f"scaling.cpus_per_worker={args.threads}",
                 "scaling.num_workers=1", "train.warmup_steps=10", "train.geometry_sample=300", "tracking.enabled=false",
                 f"out_dir={run_dir}"]  # fmt: skip
    cfg = portable(load_config(FinetuneConfig, REPO / "jobs/configs/encoder_finetune.yaml", overrides))
    data = prepare_data(cfg, progress=lambda _m: None)

    before, plain_total = plain_cycles(cfg, data)
    ray.init(
        num_cpus=max(2, args.threads + 1),
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
    )
    t0 = time.perf_counter()
    history = checkpoint_state(build_trainer(cfg, run_dir, data).fit())["history"]
    ray_total = time.perf_counter() - t0
    ray_cycles = [h["cycle_seconds"] for h in history if "cycle_seconds" in h]
    ray.shutdown()
    after, _ = plain_cycles(cfg, data)

    steady = slice(1, None)  # epoch 1 is warm-up; the Ray side has no cycle for the last epoch
    plain = statistics.median(before[steady][: len(ray_cycles) - 1] + after[steady][: len(ray_cycles) - 1])
    ray_epoch = statistics.median(ray_cycles[steady])
    ratio = ray_epoch / plain - 1.0
    print(
        f"epochs: {args.epochs} on {args.rows} rows per task ({history[-1]['steps']} steps/epoch), torch threads: {args.threads}"
    )
    print(
        f"plain torch epoch (train+eval+checkpoint): {plain:.2f} s  (before {statistics.median(before[steady]):.2f}, "
        f"after {statistics.median(after[steady]):.2f})"
    )
    print(f"Ray Train epoch   (same + report/persist): {ray_epoch:.2f} s")
    print(f"overhead ratio (steady state): {ratio:+.1%}  (target <= +10%)")
    print(
        f"end to end incl. worker start: Ray fit {ray_total:.1f}s vs plain {plain_total:.1f}s "
        f"(one-off start-up ~{ray_total - sum(ray_cycles) - ray_cycles[-1]:.1f}s)"
    )
    return 0 if ratio <= 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
