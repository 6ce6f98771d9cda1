"""What every monovec Ray Train loop shares: fault injection, the per-epoch checkpoint, restore.

A loop (the encoder fine-tuning; TextVibCLIP's trainer still carries its own copy of the same logic in
`monovec/textvib/train.py`) keeps its whole state in one dict that `torch.save` can write. After every epoch rank 0 reports metrics *with* that state as a checkpoint; the
other ranks report metrics only. On (re)start the loop asks `restore_state` for the newest state:

- with >= 1 worker Ray Train hands it back (`ray.train.get_checkpoint()`), after a worker failure that
  `FailureConfig(max_failures)` recovers, and when a trainer is rebuilt on the same storage path after the
  driver died;
- with 0 workers (Ray Train's local mode, no controller) the checkpoint directories are written under
  `<run_dir>/checkpoints/epoch_NNNN` and the newest one is read back, so a killed local run resumes too.

Fault injection is the job's `faults` block (`monovec.faults.FaultConfig.check_epoch` with `FAIL_MARKER`
under the run directory, so it strikes once per run, across restarts): that is how the recovery tests kill
a worker.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

STATE_FILE = "state.pt"
FAIL_MARKER = ".injected_failure"


def local_checkpoint_root(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def restore_state(run_dir: str | Path, local_mode: bool) -> dict[str, Any] | None:
    """The newest saved loop state (see module doc), or None for a fresh run."""
    import ray.train

    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            return torch.load(Path(d) / STATE_FILE, map_location="cpu", weights_only=False)
    if local_mode:
        found = sorted(local_checkpoint_root(run_dir).glob("epoch_*/" + STATE_FILE))
        if found:
            return torch.load(found[-1], map_location="cpu", weights_only=False)
    return None


def report_epoch(metrics: dict[str, Any], state: dict[str, Any] | None, *, epoch: int, rank: int, run_dir: str | Path,
                 local_mode: bool, keep: int) -> None:  # fmt: skip
    """`ray.train.report` one epoch: rank 0 attaches `state` as the checkpoint, other ranks report metrics.

    In local mode the checkpoint directory stays under `<run_dir>/checkpoints` (no controller copies it)
    and only the newest `keep` are kept."""
    import ray.train
    from ray.train import Checkpoint

    if rank != 0 or state is None:
        ray.train.report(metrics)
        return
    if local_mode:
        root = local_checkpoint_root(run_dir)
        target = root / f"epoch_{epoch:04d}"
        target.mkdir(parents=True, exist_ok=True)
        tmp = target / (STATE_FILE + ".tmp")
        torch.save(state, tmp)
        tmp.replace(target / STATE_FILE)  # atomic: a kill mid-write never leaves a half checkpoint behind
        ray.train.report(metrics, checkpoint=Checkpoint.from_directory(str(target)))
        for old in sorted(root.glob("epoch_*"))[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
        return
    with tempfile.TemporaryDirectory() as tmp_dir:
        torch.save(state, Path(tmp_dir) / STATE_FILE)
        ray.train.report(metrics, checkpoint=Checkpoint.from_directory(tmp_dir))


def checkpoint_state(result: Any) -> dict[str, Any]:
    """The loop state in a `Result`'s final checkpoint (RuntimeError naming the run's error if there is none)."""
    if result.checkpoint is None:
        raise RuntimeError(
            f"training finished without a checkpoint (error: {getattr(result, 'error', None)})"
        )
    with result.checkpoint.as_directory() as d:
        return torch.load(Path(d) / STATE_FILE, map_location="cpu", weights_only=False)
