"""What every monovec Ray Train loop shares: fault injection, the per-epoch checkpoint, restore, the run config.

Both loops (the encoder fine-tuning in `monovec/finetune/train.py`, TextVibCLIP in
`monovec/textvib/train.py`) keep their whole state in one dict that `torch.save` can write. After every
epoch rank 0 reports metrics *with* that state as a checkpoint; the other ranks report metrics only. On
(re)start the loop asks `restore_state` for the newest state:

- with >= 1 worker Ray Train hands it back (`ray.train.get_checkpoint()`), after a worker failure that
  `FailureConfig(max_failures)` recovers, and when a trainer is rebuilt on the same storage path after the
  driver died;
- with 0 workers (Ray Train v2's local mode: no controller, no checkpoint index under `storage_path`, no
  `max_failures` retry, and the deprecated `resume_from_checkpoint` raises) the checkpoint directories are
  written under `<run_dir>/checkpoints/epoch_NNNN` (into a `.tmp` folder, then renamed, so a kill never
  leaves a half-written newest one) and the newest complete one is read back, so a killed local run
  resumes too. A local rerun of a run killed after its last checkpoint has no epoch left to report:
  `report_finished` hands the driver that checkpoint.

`run_config` is the one `RunConfig` both trainers use (storage under the run directory, failure and
checkpoint policy from the job's `scaling` block), and `checkpoint_state` reads a finished run's state.

Report throughput. Ray Train v2's controller takes at most one report per worker per poll, polls every
`RAY_TRAIN_HEALTH_CHECK_INTERVAL_S` (2 s by default), and a worker's result queue holds one report, so
`ray.train.report` blocks until the previous one was taken: epochs shorter than the poll interval are
stretched to it (TextVibCLIP's 0.6 s epochs ran at 1.6 s). `run_config` sets that variable to
`REPORT_POLL_S` in the process that builds the trainer (the driver, or a Tune trial), from where Ray Train
propagates it to the controller; a value the user exported wins.

Fault injection is the job's `faults` block (`monovec.faults.FaultConfig.check_epoch` with `FAIL_MARKER`
under the run directory, so it strikes once per run, across restarts): that is how the recovery tests kill
a worker.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

STATE_FILE = "state.pt"
FAIL_MARKER = ".injected_failure"
REPORT_POLL_S = 0.25  # the Ray Train controller's poll interval monovec trainers run with (see above)


def local_checkpoint_root(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def local_checkpoint_dirs(run_dir: str | Path) -> list[Path]:
    """The complete `epoch_NNNN` checkpoint folders of a 0-worker run, oldest first.

    Local mode keeps no checkpoint index, so the folder itself is the index: only renamed (complete)
    `epoch_<digits>` folders holding `state.pt` count; `*.tmp` folders of a killed write are ignored."""
    root = local_checkpoint_root(run_dir)
    done = [p for p in root.glob("epoch_*") if p.name[6:].isdigit() and (p / STATE_FILE).is_file()]
    return sorted(done, key=lambda p: int(p.name[6:]))


def restore_state(run_dir: str | Path, local_mode: bool) -> dict[str, Any] | None:
    """The newest saved loop state (see module doc), or None for a fresh run."""
    import ray.train

    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            return torch.load(Path(d) / STATE_FILE, map_location="cpu", weights_only=False)
    if local_mode:
        found = local_checkpoint_dirs(run_dir)
        if found:
            return torch.load(found[-1] / STATE_FILE, map_location="cpu", weights_only=False)
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
        target = local_checkpoint_root(run_dir) / f"epoch_{epoch:04d}"
        partial = target.with_name(target.name + ".tmp")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        torch.save(state, partial / STATE_FILE)
        shutil.rmtree(target, ignore_errors=True)  # an epoch redone after a kill between save and rename
        partial.rename(target)  # atomic: a kill mid-write never leaves a half checkpoint behind
        ray.train.report(metrics, checkpoint=Checkpoint.from_directory(str(target)))
        for old in local_checkpoint_dirs(run_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
        return
    with tempfile.TemporaryDirectory() as tmp_dir:
        torch.save(state, Path(tmp_dir) / STATE_FILE)
        ray.train.report(metrics, checkpoint=Checkpoint.from_directory(tmp_dir))


def report_finished(metrics: dict[str, Any], run_dir: str | Path) -> None:
    """A 0-worker rerun of a run killed after its last checkpoint (while finalizing): no epoch is left to
    report, so hand the driver that newest local checkpoint with the last epoch's `metrics`."""
    import ray.train
    from ray.train import Checkpoint

    ray.train.report(metrics, checkpoint=Checkpoint.from_directory(str(local_checkpoint_dirs(run_dir)[-1])))


def run_config(scaling: Any, run_dir: str | Path) -> Any:
    """The `ray.train.RunConfig` of a monovec trainer: storage under `run_dir` (a rebuilt trainer on the
    same directory resumes), `FailureConfig(max_failures)` and `CheckpointConfig(num_to_keep)` from the job's
    `scaling` block (`monovec.infra.ScalingConfig`). Also sets the controller's poll interval (module
    docstring, "Report throughput") unless `RAY_TRAIN_HEALTH_CHECK_INTERVAL_S` is already set."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig

    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", str(REPORT_POLL_S))

    return RunConfig(
        name="ray",
        storage_path=str(Path(run_dir)),
        failure_config=FailureConfig(max_failures=scaling.max_failures),
        checkpoint_config=CheckpointConfig(num_to_keep=scaling.checkpoints_to_keep),
    )


def checkpoint_state(result: Any) -> dict[str, Any]:
    """The loop state in a `Result`'s final checkpoint (RuntimeError naming the run's error if there is none)."""
    if result.checkpoint is None:
        raise RuntimeError(
            f"training finished without a checkpoint (error: {getattr(result, 'error', None)})"
        )
    with result.checkpoint.as_directory() as d:
        return torch.load(Path(d) / STATE_FILE, map_location="cpu", weights_only=False)
