"""The update job: consume feedback events from JSONL files with Ray Train, learning each event exactly once.

`run_update` builds a TorchTrainer (num_workers from config; 0 runs the loop in the driver process) whose
loop (`train_loop`) restores the newest checkpoint - Ray's (`ray.train.get_checkpoint()`, when a run of
the same name and storage resumes) or the job's own `LATEST`, whichever has learned more - then reads
the events after the watermark, dead-letters bad lines, learns window by window (predicting each window
first: the prequential AUC it reports), commits model + watermark every `checkpoint_every` events
(`ray.train.report(metrics, checkpoint=...)`), registers an MLflow version every `register_every` events
and finally upserts the item vectors into Chroma.

Exactly once: a crash after the last commit loses the uncommitted windows from the model AND from the
watermark alike, so the rerun learns them again, once. `faults.fail_after_events` injects such a crash.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monovec.paths import resolve_data_path, state_dir
from monovec.taste.checkpoint import (
    MODEL,
    JobState,
    job_root,
    latest_checkpoint,
    load_train_state,
    save_checkpoint,
)
from monovec.taste.config import Taste2VecJobConfig
from monovec.taste.encoders import NumericScaler
from monovec.taste.evaluate import auc
from monovec.taste.feedback import DeadLetter, RawLine, event_files, feedback_windows, read_pending
from monovec.taste.learner import OnlineLearner
from monovec.taste.model import Taste2Vec
from monovec.taste.runtime import Runtime, build_runtime, new_model

log = logging.getLogger(__name__)


@dataclass
class UpdateSession:
    cfg: Taste2VecJobConfig
    root: Path
    runtime: Runtime
    model: Taste2Vec
    learner: OnlineLearner
    state: JobState

    @classmethod
    def open(
        cls, cfg: Taste2VecJobConfig, root: Path, ray_checkpoint_dir: Path | None = None
    ) -> UpdateSession:
        candidates = [p for p in (latest_checkpoint(root), ray_checkpoint_dir) if p is not None]
        chosen = max(candidates, key=lambda p: JobState.read(p).learned, default=None)  # local wins ties
        if chosen is None:
            runtime = build_runtime(cfg.catalogue, cfg.model)
            model = new_model(runtime, cfg.model, cfg.learn.seed)
            learner = OnlineLearner(model, runtime.features, runtime.scaler, cfg.learn)
            return cls(
                cfg, root, runtime, model, learner, JobState(fingerprint=runtime.catalogue.fingerprint())
            )
        state = JobState.read(chosen)
        runtime = build_runtime(
            cfg.catalogue, cfg.model, scaler=NumericScaler.load(chosen / MODEL / "scaler.json")
        )
        if runtime.catalogue.fingerprint() != state.fingerprint:
            raise ValueError(
                f"{chosen}: trained on another catalogue (fingerprint {state.fingerprint}); use a new run_name"
            )
        model = Taste2Vec.load(chosen / MODEL, runtime.token_encoder)
        learner = OnlineLearner(model, runtime.features, runtime.scaler, cfg.learn)
        learner.load_state_dict(load_train_state(chosen))
        log.info("resumed from %s: %d events learned", chosen, state.learned)
        return cls(cfg, root, runtime, model, learner, state)

    def run(self, events: Path, rank: int = 0, report: Any = None) -> dict[str, Any]:
        """Learn every event after the watermark of `events` (a JSONL file or a folder of them), once each.

        Commits (checkpoint + watermark, a registry version every `update.register_every` events) every
        `update.checkpoint_every` learned events and at the end; only rank 0 writes files. `report(metrics,
        checkpoint_dir)` gets each commit's metrics (learned, dead_letters, prequential_auc). Returns
        {learned, learned_this_run, dead_letters, root}. Raises InjectedFault when `faults` says so."""
        cfg, state, index = self.cfg, self.state, self.runtime.catalogue.index
        dead = DeadLetter(
            Path(cfg.update.dead_letter) if cfg.update.dead_letter else self.root / "dead_letter.jsonl"
        )
        ledger, position = set(state.ledger), dict(state.watermark)
        labels: list[np.ndarray] = []
        scores: list[np.ndarray] = []
        learned_now, last_commit, rejected = 0, state.learned, 0

        def reject(raw: RawLine, reason: str, event_id: str | None) -> None:
            nonlocal rejected
            rejected += 1
            if rank == 0:
                dead.write(raw.source, raw.line, reason, raw.text, event_id)

        def on_line(raw: RawLine) -> None:
            position[raw.source] = raw.line

        lines = read_pending(event_files(events), state.watermark)
        for window in feedback_windows(lines, index, cfg.learn.window, reject, ledger, on_line):
            records = self.learner.prepare([e for e, _ in window], index)
            scores.append(self.learner.scorer.predict(records))  # prequential: predict, then learn
            labels.append(records.label)
            self.learner.learn(records)
            state.ledger.extend(records.event_ids)
            ledger.update(records.event_ids)
            state.learned += len(records)
            learned_now += len(records)
            if len(window) < cfg.learn.window:
                break  # the stream's last, shorter window: committed below
            cfg.faults.check_events(learned_now)
            if state.learned - last_commit >= cfg.update.checkpoint_every:
                state.watermark = dict(position)
                self._commit(rank, report, labels, scores, rejected)
                last_commit, labels, scores, rejected = state.learned, [], [], 0
        if position != state.watermark or labels:
            state.watermark = dict(position)
            self._commit(rank, report, labels, scores, rejected)
        if rank == 0 and self.cfg.chroma.enabled:
            self._publish_items()
        return {
            "learned": state.learned,
            "learned_this_run": learned_now,
            "dead_letters": len(dead),
            "root": str(self.root),
        }

    def _commit(
        self, rank: int, report: Any, labels: list[np.ndarray], scores: list[np.ndarray], rejected: int
    ) -> None:
        state = self.state
        state.dead_letters += rejected
        metrics = {
            "learned": state.learned,
            "dead_letters": state.dead_letters,
            "prequential_auc": auc(np.concatenate(labels), np.concatenate(scores))
            if labels
            else float("nan"),
        }
        state.metrics.append(metrics)
        ckpt = None
        if rank == 0:
            ckpt = save_checkpoint(self.root, self.model, self.learner, self.runtime.scaler, state)
            every = self.cfg.update.register_every
            if self.cfg.tracking.enabled and state.learned // every > state.last_registered // every:
                from monovec.taste.registry import register_version

                state.versions.append(
                    register_version(ckpt / MODEL, state.learned, metrics, self.cfg.tracking)
                )
                state.last_registered = state.learned
                state.write(ckpt)
        if report is not None:
            report(metrics, ckpt)

    def _publish_items(self) -> None:
        from monovec.taste.index import item_index, upsert_items

        memory = item_index(self.model, self.cfg.chroma)
        upsert_items(
            memory,
            self.model,
            self.runtime.catalogue,
            self.runtime.features,
            self.learner.profiles,
            self.state.learned,
        )


def train_loop(config: dict[str, Any]) -> None:
    """Ray Train loop (one per worker; in-process when num_workers = 0)."""
    import ray.train

    cfg = Taste2VecJobConfig.model_validate(config["cfg"])
    torch.set_num_threads(cfg.learn.threads)
    rank = ray.train.get_context().get_world_rank()
    ray_ckpt = ray.train.get_checkpoint()

    def report(metrics: dict[str, Any], ckpt: Path | None) -> None:
        checkpoint = (
            ray.train.Checkpoint.from_directory(str(ckpt))
            if ckpt is not None and cfg.scaling.num_workers > 0
            else None
        )
        ray.train.report(metrics, checkpoint=checkpoint)

    if ray_ckpt is not None:
        with ray_ckpt.as_directory() as directory:
            session = UpdateSession.open(cfg, Path(config["root"]), Path(directory))
    else:
        session = UpdateSession.open(cfg, Path(config["root"]))
    session.run(Path(config["events"]), rank, report)


def portable(cfg: Taste2VecJobConfig, root: Path) -> Taste2VecJobConfig:
    """The config as Ray Train workers should see it: every path absolute, resolved on the driver.

    A worker runs in its own working directory with its own environment, so nothing it reads may depend
    on the cwd or on variables (`MONOVEC_HOME`, `MONOVEC_DATA`, `MLFLOW_TRACKING_URI`): `out_dir`, the
    catalogue, the dead-letter file, the Chroma folder and the tracking URI are fixed here."""
    from monovec.tracking.mlflow_store import tracking_uri

    dead = cfg.update.dead_letter
    return cfg.model_copy(
        update={
            "out_dir": str(root.parent),
            "catalogue": cfg.catalogue.model_copy(
                update={"coffee_dir": str(resolve_data_path(cfg.catalogue.coffee_dir))}
            ),
            "update": cfg.update.model_copy(
                update={
                    "dead_letter": str(resolve_data_path(dead)) if dead else str(root / "dead_letter.jsonl")
                }
            ),
            "chroma": cfg.chroma.model_copy(
                update={
                    "path": str(
                        resolve_data_path(cfg.chroma.path) if cfg.chroma.path else state_dir() / "chroma"
                    )
                }
            ),
            "tracking": cfg.tracking.model_copy(update={"uri": tracking_uri(cfg.tracking.uri)}),
        }
    )


def run_update(cfg: Taste2VecJobConfig, events: str | Path) -> dict[str, Any]:
    """Fit a TorchTrainer over the events (a JSONL file or a folder of them); returns the run summary."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    root = job_root(cfg)
    root.mkdir(parents=True, exist_ok=True)
    cfg = portable(cfg, root)  # Ray Train workers run in their own working directory: absolute paths only
    loop_config = {
        "cfg": cfg.model_dump(mode="json"),
        "events": str(Path(events).resolve()),
        "root": str(root),
    }
    sc = cfg.scaling
    trainer = TorchTrainer(
        train_loop,
        train_loop_config=loop_config,
        scaling_config=ScalingConfig(
            num_workers=sc.num_workers, use_gpu=False, resources_per_worker={"CPU": sc.cpus_per_worker}
        ),
        run_config=RunConfig(
            name=cfg.run_name,
            storage_path=str(root / "ray"),
            checkpoint_config=CheckpointConfig(num_to_keep=sc.checkpoints_to_keep),
            failure_config=FailureConfig(max_failures=sc.max_failures),
        ),
    )
    result = trainer.fit()
    ckpt = latest_checkpoint(root)
    state = JobState.read(ckpt) if ckpt else JobState()
    return {
        "root": str(root),
        "checkpoint": str(ckpt) if ckpt else None,
        "learned": state.learned,
        "dead_letters": state.dead_letters,
        "versions": state.versions,
        "last_metrics": result.metrics,
    }
