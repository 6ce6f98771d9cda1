"""Encoder fine-tuning on Ray Train: the trainer factory (shared with Tune), the worker loop, the driver.

    prepare (driver, once): tasks -> normalise -> tokens + frozen vectors (cached)   monovec.finetune.data
    build_trainer(cfg, run_dir, data) -> TorchTrainer(train_loop, gloo DDP, FailureConfig, per-epoch checkpoints)
    run_finetune: prepare -> fit -> export the weights in the numpy package layout -> MLflow `monovec-encoder`

`build_trainer` is the one place a TorchTrainer for this job is made: `run_finetune` (the job) and the
Tune target (`monovec.tuning.encoder`) both call it. 0 workers runs the loop in the driver (Ray Train's
local mode); with `scaling.max_failures` a failed worker restarts from the last epoch's checkpoint; running
again on the same `out_dir` resumes a killed run (see `monovec.raytrain`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monovec.classify.data import DataSource
from monovec.finetune.config import FinetuneConfig
from monovec.finetune.data import Prepared, prepare
from monovec.paths import embedding_cache_dir, resolve_data_path, state_dir
from monovec.raytrain import (
    FAIL_MARKER,
    checkpoint_state,
    report_epoch,
    report_finished,
    restore_state,
    run_config,
)

log = logging.getLogger(__name__)


def default_run_dir(cfg: FinetuneConfig) -> Path:
    if cfg.out_dir:
        return Path(cfg.out_dir).expanduser().resolve()
    return state_dir() / "encoders" / "runs" / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"


def portable(cfg: FinetuneConfig) -> FinetuneConfig:
    """The config as workers see it: `data:` and relative paths resolved on the driver (`resource:` paths
    name files inside the installed package and stay as they are)."""

    def fixed(src: DataSource) -> DataSource:
        if src.path.startswith("resource:"):
            return src
        return src.model_copy(update={"path": str(resolve_data_path(src.path))})

    tasks = {}
    for name, task in cfg.tasks.items():
        tasks[name] = task.model_copy(
            update={"train": [fixed(s) for s in task.train], "dev": [fixed(s) for s in task.dev]}
        )
    return cfg.model_copy(update={"tasks": tasks})


def prepare_data(cfg: FinetuneConfig, progress: Callable[[str], None] = print) -> Prepared:
    """Tasks tokenised and embedded by the frozen encoder, from the cache when it has them."""
    import ray

    cache = Path(cfg.cache_dir) if cfg.cache_dir else embedding_cache_dir()
    # 0 workers means everything in this process: the frozen vectors too. Sharding them onto 1-CPU actors in a
    # Ray session whose CPUs are held (Serve replicas beside a local-mode run) would wait for a CPU forever
    shards = 2 if ray.is_initialized() and cfg.scaling.num_workers > 0 else 1
    return prepare(cfg, cache, shards=shards, progress=progress)


# ------------------------------------------------------------------------------------------ worker
def train_loop(config: dict[str, Any]) -> None:
    """Ray Train per-worker loop: restore, train the remaining epochs, report + checkpoint after each."""
    import ray
    import ray.train

    from monovec.finetune.engine import FinetuneLoop

    cfg = FinetuneConfig.model_validate(config["config"])
    data = config["data"]
    if isinstance(data, ray.ObjectRef):
        data = ray.get(data)
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    wrap = None
    if world > 1:
        import ray.train.torch

        def wrap(m: Any) -> Any:
            # one step trains one task's head: the other heads get no gradient in that step
            return ray.train.torch.prepare_model(m, parallel_strategy_kwargs={"find_unused_parameters": True})

    loop = FinetuneLoop(
        cfg, data, rank, world, wrap, progress=(lambda m: print(m, flush=True)) if rank == 0 else None
    )
    state = restore_state(config["run_dir"], config["local_mode"])
    if state is not None:
        loop.load_state_dict(state)
        log.info("resumed after epoch %d of %d", loop.epoch_done, cfg.train.epochs)
    marker = Path(config["run_dir"]) / FAIL_MARKER
    marks: list[float] = []

    def before_epoch(epoch: int) -> None:
        now = time.perf_counter()
        if marks and loop.history and loop.history[-1]["epoch"] == epoch - 1:
            loop.history[-1]["cycle_seconds"] = now - marks[-1]  # train + eval + checkpoint + report
        marks.append(now)
        if rank == 0:
            # rank 0 only: it returns from the previous epoch's `report` once its checkpoint is queued for the
            # controller; a rank without a checkpoint returns earlier, and failing then can beat rank 0's report
            # (the controller restarts the group before it ever sees that epoch's checkpoint)
            cfg.faults.check_epoch(epoch, marker)

    def on_epoch(metrics: dict[str, Any]) -> None:
        report_epoch(metrics, loop.state_dict() if rank == 0 else None, epoch=metrics["epoch"], rank=rank,
                     run_dir=config["run_dir"], local_mode=config["local_mode"], keep=cfg.scaling.checkpoints_to_keep)  # fmt: skip

    if config["local_mode"] and state is not None and loop.epoch_done == cfg.train.epochs:
        report_finished(loop.history[-1], config["run_dir"])
        return
    loop.run(on_epoch, before_epoch)


# ------------------------------------------------------------------------------------------ driver
def build_trainer(cfg: FinetuneConfig, run_dir: str | Path, data: Prepared) -> Any:
    """The TorchTrainer for one fine-tuning run (the job and every Tune trial call this).

    With workers the prepared data goes to the object store once (workers on one node share it)."""
    import ray
    from ray.train import ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    sc = cfg.scaling
    payload: Any = ray.put(data) if sc.num_workers > 0 and ray.is_initialized() else data
    loop_config = {
        "config": portable(cfg).model_dump(mode="json"),
        "data": payload,
        "run_dir": str(Path(run_dir)),
        "local_mode": sc.num_workers == 0,
    }
    return TorchTrainer(
        train_loop,
        train_loop_config=loop_config,
        torch_config=TorchConfig(backend="gloo"),
        scaling_config=ScalingConfig(
            num_workers=sc.num_workers, use_gpu=False, resources_per_worker={"CPU": sc.cpus_per_worker}
        ),
        run_config=run_config(sc, run_dir),
    )


@dataclass
class FinetuneResult:
    run_dir: Path
    model_dir: Path
    metrics: dict[str, Any]
    registered: dict[str, Any] | None
    seconds: float


def run_finetune(cfg: FinetuneConfig, progress: Callable[[str], None] = print) -> FinetuneResult:
    """Prepare -> Ray Train fit -> encoder directory (numpy package layout) -> MLflow `monovec-encoder`.

    Returns the run directory, the exported encoder directory (`<run_dir>/model`), the last epoch's
    metrics and the registry entry (None with tracking disabled). Raises ConfigError / ValueError for bad
    config or data, RuntimeError when workers are asked for and Ray is not running (only entrypoints start
    it), and Ray Train's TrainingFailedError when a worker fails more than max_failures times."""
    from monovec.finetune.export import export_encoder

    t0 = time.perf_counter()
    run_dir = default_run_dir(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = portable(cfg).model_copy(update={"out_dir": str(run_dir)})
    if cfg.scaling.num_workers > 0:
        import ray

        if not ray.is_initialized():
            raise RuntimeError(
                "scaling.num_workers > 0 needs Ray: the entrypoint starts it (monovec.entry.start_ray)"
            )
    data = prepare_data(cfg, progress)
    progress(
        f"[encoder] training {cfg.train.epochs} epoch(s) with {cfg.scaling.num_workers} worker(s), trainable: {cfg.encoder.trainable}"
    )
    state = checkpoint_state(build_trainer(cfg, run_dir, data).fit())
    for h in state["history"]:
        # alignment top-1 exists only when a task has paired languages (GoEmotions en/ko)
        aligned = f"alignment top-1 {h['alignment_top1']:.3f}, " if "alignment_top1" in h else ""
        progress(f"[encoder] epoch {h['epoch']}: loss {h['train_loss']:.4f}, dev {cfg.objective_task} macro-F1 {h['dev_objective']:.4f}, "
                 f"{aligned}geometry corr {h['geometry_corr']:.3f} ({h['train_seconds']:.0f}s)")  # fmt: skip
    metrics = dict(state["history"][-1])
    model_dir = export_encoder(cfg, state, run_dir / "model")
    (run_dir / "metrics.json").write_text(
        json.dumps({"final": metrics, "history": state["history"]}, indent=2)
    )
    registered = None
    if cfg.tracking.enabled:
        from monovec.tracking.mlflow_store import log_and_register

        numeric = {
            k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)
        }
        registered = log_and_register(model_dir, cfg, numeric, cfg.tracking, description="monovec shared text encoder (fine-tuned USE-m3)",
                                      run_name=f"finetune-{json.loads((model_dir / 'encoder.json').read_text())['version']}")  # fmt: skip
        progress(
            f"[encoder] registered {registered['name']} version {registered['version']} (alias {cfg.tracking.alias}) in {registered['tracking_uri']}"
        )
    return FinetuneResult(run_dir, model_dir, metrics, registered, time.perf_counter() - t0)
