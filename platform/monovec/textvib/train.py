"""TextVibCLIP on Ray Train: the trainer factory (shared with Tune), the per-worker loop, the driver.

`build_trainer(cfg, run_dir, texts)` is the one place a TorchTrainer is made: `run_training` (the job
and `monovec textvib train`), the ablation runner and a Tune sweep all call it. The loop reports
metrics and a checkpoint after every epoch; with `scaling.max_failures` a failed worker is restarted
and the loop resumes from `ray.train.get_checkpoint()`; rebuilding the trainer on the same run
directory resumes a run whose driver died.

With `scaling.num_workers: 0` Ray Train v2 runs the loop in the driver (local mode); checkpointing,
restore and the run config are `monovec.raytrain`'s, shared with the encoder fine-tuning.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from monovec.paths import embedding_cache_dir, resolve_data_path, state_dir
from monovec.raytrain import (
    FAIL_MARKER,
    checkpoint_state,
    report_epoch,
    report_finished,
    restore_state,
    run_config,
)
from monovec.textvib.config import TextVibConfig
from monovec.textvib.data import DomainData, load_domains
from monovec.textvib.text import TextTable, build_text_table

log = logging.getLogger(__name__)


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


# ------------------------------------------------------------------------------------------ worker
def train_loop(config: dict[str, Any]) -> None:
    """Ray Train per-worker loop: restore, train the remaining epochs, checkpoint after each one."""
    import ray.train

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
    state = restore_state(config["run_dir"], config["local_mode"])
    if state is not None:
        learner.load_state_dict(state)
        log.info("resumed after epoch %d of %d", learner.epoch_done, learner.total_epochs)
    marker = Path(config["run_dir"]) / FAIL_MARKER
    marks: list[float] = []

    def before_epoch(g: int) -> None:
        now = time.perf_counter()
        if marks and learner.history and learner.history[-1]["epoch"] == g - 1:
            # train + eval + checkpoint + report of the previous epoch (lands in this epoch's checkpoint)
            learner.history[-1]["cycle_seconds"] = now - marks[-1]
        marks.append(now)
        cfg.faults.check_epoch(g, marker)

    def on_epoch(metrics: dict[str, Any]) -> None:
        report_epoch({**metrics, "resumed_from": state is not None}, learner.state_dict() if rank == 0 else None,
                     epoch=metrics["epoch"], rank=rank, run_dir=config["run_dir"], local_mode=config["local_mode"],
                     keep=cfg.scaling.checkpoints_to_keep)  # fmt: skip

    if config["local_mode"] and state is not None and learner.epoch_done == learner.total_epochs:
        report_finished({**learner.history[-1], "resumed_from": True}, config["run_dir"])
        return
    learner.run(on_epoch, before_epoch)


# ------------------------------------------------------------------------------------------ driver
def build_trainer(cfg: TextVibConfig, run_dir: str | Path, texts: TextTable) -> Any:
    """The TorchTrainer for one continual run (Tune trials call this with their own cfg and run_dir)."""
    from ray.train import ScalingConfig
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
        run_config=run_config(sc, run_dir),
    )


@dataclass
class TrainResult:
    run_dir: Path
    model_dir: Path
    metrics: dict[str, Any]
    registered: dict[str, Any] | None
    seconds: float


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
    state = checkpoint_state(result)
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
