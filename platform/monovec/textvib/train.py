"""TextVibCLIP on Ray Train: the trainer factory (shared with Tune), the per-worker loop, the driver.

`build_trainer(cfg, run_dir, texts)` is the one place a TorchTrainer is made: `run_training` (the job
and `monovec textvib train`), the ablation runner and a Tune sweep all call it. The loop reports
metrics and a checkpoint after every epoch; with `scaling.max_failures` a failed worker is restarted
and the loop resumes from `ray.train.get_checkpoint()`; rebuilding the trainer on the same run
directory resumes a run whose driver died.

With `scaling.num_workers: 0` Ray Train v2 runs the loop in the driver (local mode): there is no
controller, no checkpoint index under `storage_path` and no `max_failures` retry, and
`ray.train.get_checkpoint()` starts as None (the deprecated `resume_from_checkpoint` argument raises in
v2). The loop therefore keeps its own checkpoints under `run_dir/checkpoints/epoch_NNNN` (written to a
temporary folder and renamed, so a kill never leaves a half-written newest one) and, on a rerun on the
same run directory, resumes from the newest of them (`latest_local_checkpoint`).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from monovec.paths import embedding_cache_dir, resolve_data_path, state_dir
from monovec.textvib.config import TextVibConfig
from monovec.textvib.data import DomainData, load_domains
from monovec.textvib.text import TextTable, build_text_table

log = logging.getLogger(__name__)
STATE_FILE = "state.pt"


def default_run_dir(cfg: TextVibConfig) -> Path:
    if cfg.out_dir:
        return Path(cfg.out_dir).expanduser().resolve()
    return state_dir() / "textvib" / "runs" / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"


def portable(cfg: TextVibConfig) -> TextVibConfig:
    """The config as workers should see it: `data:` paths resolved on the driver."""
    if cfg.data.source == "synthetic":
        return cfg
    return cfg.model_copy(
        update={"data": cfg.data.model_copy(update={"root": str(resolve_data_path(cfg.data.root))})}
    )


def prepare_texts(cfg: TextVibConfig, domains: list[DomainData]) -> TextTable:
    cache = Path(cfg.cache_dir) if cfg.cache_dir else embedding_cache_dir()
    points = [(d.name, d.rpm, d.load_hp) for d in domains]
    return build_text_table(points, cfg.data.classes, cfg.model.text.languages, cfg.model.text.encoder, cache)


def local_checkpoint_dirs(ckpt_dir: Path) -> list[Path]:
    """The complete `epoch_NNNN` checkpoint folders of a 0-worker run under `ckpt_dir`, oldest first.

    Local mode keeps no checkpoint index, so the folder itself is the index: only renamed (complete)
    `epoch_<digits>` folders holding `state.pt` count; `*.tmp` folders of a killed write are ignored.
    """
    done = [p for p in ckpt_dir.glob("epoch_*") if p.name[6:].isdigit() and (p / STATE_FILE).is_file()]
    return sorted(done, key=lambda p: int(p.name[6:]))


def latest_local_checkpoint(ckpt_dir: Path) -> Any:
    """The newest complete local checkpoint (a `ray.train.Checkpoint`), or None when there is none."""
    from ray.train import Checkpoint

    done = local_checkpoint_dirs(ckpt_dir)
    return Checkpoint.from_directory(str(done[-1])) if done else None


# ------------------------------------------------------------------------------------------ worker
def train_loop(config: dict[str, Any]) -> None:
    """Ray Train per-worker loop: restore, train the remaining epochs, checkpoint after each one."""
    import ray.train
    from ray.train import Checkpoint

    from monovec.textvib.engine import ContinualLearner

    cfg = TextVibConfig.model_validate(config["config"])
    torch.set_num_threads(cfg.train.threads)  # this worker process's torch threads (the learner sets none)
    texts = TextTable(**config["texts"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    wrap = None
    if world > 1:
        import ray.train.torch

        def wrap(m: torch.nn.Module) -> torch.nn.Module:
            # stage 1 freezes the encoders: their parameters get no gradient for a while
            return ray.train.torch.prepare_model(m, parallel_strategy_kwargs={"find_unused_parameters": True})

    learner = ContinualLearner(cfg, load_domains(cfg.data), texts, rank, world, wrap)
    local_ckpts = Path(config["run_dir"]) / "checkpoints"
    checkpoint = ray.train.get_checkpoint()
    if (
        checkpoint is None and config["local_mode"]
    ):  # a 0-worker rerun: Ray knows no checkpoint, the disk does
        checkpoint = latest_local_checkpoint(local_ckpts)
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            learner.load_state_dict(torch.load(Path(d) / STATE_FILE, map_location="cpu", weights_only=False))
        log.info("resumed after epoch %d of %d", learner.epoch_done, learner.total_epochs)

    marker = Path(config["run_dir"]) / ".injected_failure"

    marks: list[float] = []

    def before_epoch(g: int) -> None:
        now = time.perf_counter()
        if marks and learner.history and learner.history[-1]["epoch"] == g - 1:
            # train + eval + checkpoint + report of the previous epoch (lands in this epoch's checkpoint)
            learner.history[-1]["cycle_seconds"] = now - marks[-1]
        marks.append(now)
        cfg.faults.check_epoch(g, marker)

    def on_epoch(metrics: dict[str, Any]) -> None:
        metrics = {**metrics, "resumed_from": checkpoint is not None}
        if rank != 0:
            ray.train.report(metrics)
            return
        if config["local_mode"]:  # no controller copies the directory: keep it where the driver finds it
            target = local_ckpts / f"epoch_{metrics['epoch']:04d}"
            partial = target.with_name(target.name + ".tmp")
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            torch.save(learner.state_dict(), partial / STATE_FILE)
            shutil.rmtree(target, ignore_errors=True)  # an epoch redone after a kill between save and rename
            partial.rename(target)
            ray.train.report(metrics, checkpoint=Checkpoint.from_directory(str(target)))
            for old in local_checkpoint_dirs(local_ckpts)[: -cfg.scaling.checkpoints_to_keep]:
                shutil.rmtree(old, ignore_errors=True)
            return
        with tempfile.TemporaryDirectory() as tmp:
            torch.save(learner.state_dict(), Path(tmp) / STATE_FILE)
            ray.train.report(metrics, checkpoint=Checkpoint.from_directory(tmp))

    if config["local_mode"] and checkpoint is not None and learner.epoch_done == learner.total_epochs:
        # killed after the last checkpoint (while finalizing): no epoch is left, hand the driver that checkpoint
        ray.train.report({**learner.history[-1], "resumed_from": True}, checkpoint=checkpoint)
        return
    learner.run(on_epoch, before_epoch)


# ------------------------------------------------------------------------------------------ driver
def build_trainer(cfg: TextVibConfig, run_dir: str | Path, texts: TextTable) -> Any:
    """The TorchTrainer for one continual run (Tune trials call this with their own cfg and run_dir)."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    run_dir = Path(run_dir)
    loop_config = {
        "config": portable(cfg).model_dump(mode="json"),
        "texts": {
            "texts": texts.texts,
            "langs": texts.langs,
            "domains": texts.domains,
            "classes": texts.classes,
            "emb": texts.emb,
        },
        "run_dir": str(run_dir),
        "local_mode": cfg.scaling.num_workers == 0,
    }
    sc = cfg.scaling
    return TorchTrainer(
        train_loop,
        train_loop_config=loop_config,
        scaling_config=ScalingConfig(
            num_workers=sc.num_workers, use_gpu=False, resources_per_worker={"CPU": sc.cpus_per_worker}
        ),
        run_config=RunConfig(
            name="ray",
            storage_path=str(run_dir),
            failure_config=FailureConfig(max_failures=sc.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=sc.checkpoints_to_keep),
        ),
    )


@dataclass
class TrainResult:
    run_dir: Path
    model_dir: Path
    metrics: dict[str, Any]
    registered: dict[str, Any] | None
    seconds: float


def final_state(result: Any) -> dict[str, Any]:
    if result.checkpoint is None:
        raise RuntimeError(
            f"training finished without a checkpoint (error: {getattr(result, 'error', None)})"
        )
    with result.checkpoint.as_directory() as d:
        return torch.load(Path(d) / STATE_FILE, map_location="cpu", weights_only=False)


def run_training(cfg: TextVibConfig, progress: Callable[[str], None] = print) -> TrainResult:
    """Data -> texts (embedded once) -> Ray Train fit -> model dir, metrics, plots, MLflow.

    With `scaling.num_workers >= 1` it runs on the Ray the entrypoint started (`monovec.entry.start_ray`);
    0 workers run the loop in this process (Train v2 local mode). An existing `out_dir` is resumed from its
    latest checkpoint. Returns the run dir, the model dir, the metrics (average_accuracy, forgetting, bwt,
    per-domain accuracy matrix), the MLflow registration (or None) and the seconds taken. Raises
    RuntimeError when Ray is needed but not running, or training ends without a checkpoint."""
    from monovec.textvib.report import finalize

    t0 = time.perf_counter()
    run_dir = default_run_dir(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = portable(cfg).model_copy(update={"out_dir": str(run_dir)})
    if cfg.scaling.num_workers > 0:
        import ray

        if not ray.is_initialized():
            raise RuntimeError(
                "run_training with scaling.num_workers >= 1 needs Ray: the entrypoint starts it (monovec.entry.start_ray)"
            )
    domains = load_domains(cfg.data)
    progress(
        f"[textvib] {len(domains)} domains: "
        + ", ".join(
            f"{d.name} ({len(d.train)}/{len(d.val)}/{len(d.test)} train/val/test windows)" for d in domains
        )
    )
    texts = prepare_texts(cfg, domains)
    progress(
        f"[textvib] {len(texts.texts)} descriptions ({'+'.join(cfg.model.text.languages)}) embedded with {cfg.model.text.encoder.name}"
    )
    result = build_trainer(cfg, run_dir, texts).fit()
    state = final_state(result)
    resumed = " (resumed from a checkpoint)" if (result.metrics or {}).get("resumed_from") else ""
    progress(
        f"[textvib] trained {state['epoch_done']} epochs with {cfg.scaling.num_workers} worker(s){resumed} in {time.perf_counter() - t0:.0f}s"
    )
    metrics, model_dir, registered = finalize(
        cfg, run_dir, state, domains, texts, seconds=time.perf_counter() - t0
    )
    progress(
        f"[textvib] average accuracy {metrics['average_accuracy']:.4f}, forgetting {metrics['forgetting']:.4f}, BWT {metrics['bwt']:.4f} -> {run_dir}"
    )
    return TrainResult(run_dir, model_dir, metrics, registered, time.perf_counter() - t0)
