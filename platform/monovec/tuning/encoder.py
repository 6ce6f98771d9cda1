"""The shared-encoder fine-tuning as a Tune target: every trial is a Ray Train run from the job's factory.

    prepare (driver, once): tasks tokenised + frozen vectors (monovec.finetune.train.prepare_data) -> ray.put
    trial: base config + overrides -> `monovec.finetune.train.build_trainer` (what `jobs/finetune_encoder.py`
        uses) + a TuneReportCallback -> fit(); every epoch's dev metrics reach Tune, where ASHA can stop it

As for TextVibCLIP, trials need >= 1 Train worker (local mode runs no controller, so no callback) and are
never reused (a stopped trial's actor must take its Train controller and workers with it). The driver scores
the untuned defaults the same way outside Tune and replays the per-epoch history from the final checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import Field, ValidationError

from monovec.config import ConfigError, StrictModel
from monovec.finetune.config import FinetuneConfig
from monovec.tuning.targets import Report, Target
from monovec.tuning.trainrun import apply_params, run_train_trial


class EncoderTuneOptions(StrictModel):
    trial_cpus: float = Field(
        0.05,
        gt=0,
        description="CPUs the Tune trial reserves for itself (it only drives the Train controller; workers reserve scaling.cpus_per_worker each)",
    )


class EncoderTarget(Target):
    """`monovec.tuning.targets.Target` for the encoder fine-tuning (FinetuneConfig keys)."""

    reuse_actors = False

    def prepare(
        self, base: FinetuneConfig, options: EncoderTuneOptions, progress: Callable[[str], None] = print
    ) -> dict[str, Any]:
        from monovec.finetune.train import portable, prepare_data

        if base.scaling.num_workers < 1:
            raise ConfigError(
                "encoder trials need scaling.num_workers >= 1: local mode (0) runs no Train controller, so no callback reports to Tune"
            )
        data = prepare_data(portable(base), progress)
        return {"data": data, "options": options}

    def trial_resources(self, data: dict[str, Any]) -> dict[str, float]:
        return {"cpu": data["options"].trial_cpus}

    def max_iterations(self, base: Mapping[str, Any], params: Mapping[str, Any]) -> int:
        return int(
            apply_params(base, {k: v.high for k, v in params.items() if k == "train.epochs"})["train"][
                "epochs"
            ]
        )

    def summarize(
        self, rows: Sequence[Mapping[str, Any]], base: Mapping[str, Any], params: Sequence[str], max_t: int
    ) -> dict[str, Any]:
        """Epochs trained against every trial running to the end (what ASHA saved)."""
        run, budget = sum(int(r.get("epoch", 0)) for r in rows), len(rows) * max_t
        return {"epochs_run": run, "epochs_budget": budget, "max_epochs": max_t,
                "epoch_fraction": run / budget if budget else float("nan"),
                "asha_saved_fraction": 1.0 - run / budget if budget else float("nan"),
                "asha_saved_fraction_vs_planned": 1.0 - run / budget if budget else float("nan"),
                "trials_stopped_early": sum(int(r.get("epoch", 0)) < max_t for r in rows)}  # fmt: skip

    def run_trial(
        self, data: dict[str, Any], base: dict[str, Any], params: Mapping[str, Any], report: Report
    ) -> None:
        from monovec.finetune.train import build_trainer
        from monovec.raytrain import checkpoint_state

        try:
            cfg = FinetuneConfig.model_validate(apply_params(base, params))
        except ValidationError:
            report({"valid": 0.0})
            return
        cfg = cfg.model_copy(update={"tracking": cfg.tracking.model_copy(update={"enabled": False})})
        run_train_trial(lambda run_dir: build_trainer(cfg, run_dir, data["data"]),  # the job's own factory
                        lambda result: checkpoint_state(result)["history"], report, prefix="encoder-baseline-")  # fmt: skip


TARGET = EncoderTarget()
