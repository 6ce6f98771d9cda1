"""Ray Train overhead for TextVibCLIP: the same epochs through a 1-worker TorchTrainer vs plain torch.

    python bench/train_overhead.py [--epochs 6] [--threads 1]

Both sides run the identical `ContinualLearner` on the real CWRU 1797 domain with the same torch
thread count in one process each (the driver for plain torch, one Ray worker for Ray Train), and both
write a checkpoint (torch.save of the full state) after every epoch. An epoch "cycle" is wall time
from one epoch start to the next: train + eval + checkpoint (+ ray.train.report and the copy to
storage on the Ray side). The first epoch is warm-up and is not counted. Plain torch is measured
before and after Ray in the same run and averaged, so machine-load drift hits both sides. Printed:
the steady-state overhead ratio (target <= 15%) and, separately, the one-off cost of starting the
Ray worker group.
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


def plain_cycles(cfg, domains, texts) -> tuple[list[float], float]:  # noqa: ANN001
    """Per-epoch cycles of the plain-torch loop (same checkpoint write as the Ray loop) and its total wall."""
    import torch

    from monovec.textvib.engine import ContinualLearner

    torch.set_num_threads(cfg.train.threads)  # as the Ray Train loop does in its worker
    t0 = time.perf_counter()
    learner = ContinualLearner(cfg, domains, texts)
    marks: list[float] = []

    def on_epoch(_m: dict) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            torch.save(learner.state_dict(), Path(tmp) / "state.pt")

    learner.run(on_epoch, before_epoch=lambda _g: marks.append(time.perf_counter()))
    marks.append(time.perf_counter())
    return [b - a for a, b in zip(marks[:-1], marks[1:], strict=True)], time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads on both sides (= CPUs of the Ray worker)"
    )
    args = parser.parse_args(argv)

    import ray

    from monovec.config import load_config
    from monovec.raytrain import checkpoint_state
    from monovec.textvib.config import TextVibConfig
    from monovec.textvib.data import load_domains
    from monovec.textvib.train import build_trainer, portable, prepare_texts

    run_dir = Path(tempfile.mkdtemp(prefix="textvib-bench-"))
    overrides = [
        "data.domains=['1797']",
        "train.first_domain_stage1_epochs=0",
        f"train.epochs_per_domain={args.epochs}",
        f"train.threads={args.threads}",
        f"scaling.cpus_per_worker={args.threads}",
        "scaling.num_workers=1",
        "tracking.enabled=false",
        "plots=false",
        f"out_dir={run_dir}",
    ]
    cfg = portable(load_config(TextVibConfig, REPO / "jobs/configs/textvib_cwru.yaml", overrides))
    domains = load_domains(cfg.data)
    texts = prepare_texts(cfg, domains)

    before, plain_total = plain_cycles(cfg, domains, texts)
    from monovec.ray_env import init_ray

    init_ray(num_cpus=max(2, args.threads + 1), log_to_driver=False)
    t0 = time.perf_counter()
    result = build_trainer(cfg, run_dir, texts).fit()
    ray_total = time.perf_counter() - t0
    ray_cycles = [h["cycle_seconds"] for h in checkpoint_state(result)["history"] if "cycle_seconds" in h]
    ray.shutdown()
    after, _ = plain_cycles(cfg, domains, texts)

    steady = slice(1, None)  # epoch 1 is warm-up; the Ray side has no cycle for the last epoch
    plain = statistics.median(before[steady][: len(ray_cycles) - 1] + after[steady][: len(ray_cycles) - 1])
    ray_epoch = statistics.median(ray_cycles[steady])
    ratio = ray_epoch / plain - 1.0
    print(
        f"epochs: {args.epochs} on CWRU 1797 ({len(domains[0].train)} windows), torch threads: {args.threads}"
    )
    print(
        f"plain torch epoch (train+eval+checkpoint): {plain * 1000:.0f} ms  (before {statistics.median(before[steady]) * 1000:.0f}, "
        f"after {statistics.median(after[steady]) * 1000:.0f})"
    )
    print(f"Ray Train epoch   (same + report/persist): {ray_epoch * 1000:.0f} ms")
    print(f"overhead ratio (steady state): {ratio:+.1%}  (target <= +15%)")
    print(
        f"end to end incl. worker start: Ray fit {ray_total:.1f}s vs plain {plain_total:.1f}s "
        f"(one-off start-up ~{ray_total - sum(ray_cycles) - ray_cycles[-1]:.1f}s)"
    )
    return 0 if ratio <= 0.15 else 1


if __name__ == "__main__":
    sys.exit(main())
