"""TextVibCLIP as a Tune target: every trial is a Ray Train run from the job's own trainer factory.

    prepare (driver): load the domains once (shapes for the log), embed the class descriptions once
        -> TextTable (ray.put by the runner)
    trial (Tune function trainable): base config + overrides -> `monovec.textvib.train.build_trainer`
        (the factory `jobs/train_textvib.py` uses) -> RunConfig.callbacks += ScoredTuneReport -> fit()

Ray 2.60's Train v2 + Tune pattern: the Tune trial only drives the Train controller (which takes 0
CPUs; the trial reserves `textvib.trial_cpus`, Ray refuses 0); the Train workers reserve
`scaling.cpus_per_worker` each outside the trial, and `TuneReportCallback` forwards each epoch's report (val accuracy on the current domain)
to Tune, where ASHA can stop the trial. Local mode (`scaling.num_workers: 0`) runs no controller and
so no callbacks: a trial needs at least one worker. Trials are never reused (`reuse_actors = False`):
stopping a trial kills its actor, and with it the Train controller and workers it owns.

The driver scores the untuned defaults the same way outside Tune: fit, then replay the per-epoch
history from the final checkpoint through `report`.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from monovec.config import ConfigError, StrictModel, set_path
from monovec.textvib.config import TextVibConfig
from monovec.tuning.targets import Report, Target
from monovec.tuning.trainrun import scored_report_callback

STAGE1_KEY = "train.first_domain_stage1_epochs"


class TextVibTuneOptions(StrictModel):
    trial_cpus: float = Field(
        0.05,
        gt=0,
        description="CPUs the Tune trial reserves for itself (Ray needs > 0; it only drives the Train controller, workers reserve scaling.cpus_per_worker each)",
    )


def planned_epochs(cfg: Mapping[str, Any]) -> int:
    """Epochs of a full continual run (= `engine.plan`'s total), from a TextVibConfig dict."""
    return len(cfg["data"]["domains"]) * int(cfg["train"]["epochs_per_domain"]) + int(
        cfg["train"]["first_domain_stage1_epochs"]
    )


def max_epochs(base: Mapping[str, Any], params: Mapping[str, Any]) -> int:
    """The longest run the space allows: ASHA's `max_t` and the denominator of its savings."""
    cfg = copy.deepcopy(dict(base))
    spec = params.get(STAGE1_KEY)
    if spec is not None:
        top = max(spec.values) if spec.values is not None else spec.high
        set_path(cfg, STAGE1_KEY.split("."), int(top))
    return planned_epochs(cfg)


def apply(base: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    cfg = copy.deepcopy(dict(base))
    for key, value in params.items():
        set_path(cfg, key.split("."), value)
    return cfg


def asha_savings(
    rows: Sequence[Mapping[str, Any]], base: Mapping[str, Any], params: Sequence[str], max_t: int
) -> dict[str, Any]:
    """Epochs actually trained vs running every trial to the end.

    `epochs_budget` = trials x max_t (the longest run the space allows, ASHA's max_t);
    `epochs_full` = sum of each trial's own planned epochs (its stage-1 length can be a tuned value).
    A row's `epoch` is the last global epoch it reported (one report per epoch)."""
    done = [int(r.get("epoch", 0)) for r in rows]
    planned = [planned_epochs(apply(base, {k: r[k] for k in params if k in r})) for r in rows]
    run, full, budget = sum(done), sum(planned), len(rows) * max_t
    return {
        "epochs_run": run,
        "epochs_full": full,
        "epochs_budget": budget,
        "max_epochs": max_t,
        "epoch_fraction": run / budget if budget else float("nan"),
        "asha_saved_fraction": 1.0 - run / budget if budget else float("nan"),
        "asha_saved_fraction_vs_planned": 1.0 - run / full if full else float("nan"),
        "trials_stopped_early": sum(d < p for d, p in zip(done, planned, strict=True)),
    }


def _scored_callback(scored: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    return scored_report_callback(scored, drop=("acc_row",))


class TextVibTarget(Target):
    """`monovec.tuning.targets.Target` for TextVibCLIP (TextVibConfig keys)."""

    reuse_actors = False  # a stopped trial's actor must die so its Train controller and workers do

    def prepare(
        self, base: TextVibConfig, options: TextVibTuneOptions, progress: Callable[[str], None] = print
    ) -> dict[str, Any]:
        from monovec.textvib.data import load_domains
        from monovec.textvib.train import portable, prepare_texts

        if base.scaling.num_workers < 1:
            raise ConfigError(
                "textvib trials need scaling.num_workers >= 1: local mode (0) runs no Train controller, so no callback reports to Tune"
            )
        cfg = portable(base)
        domains = load_domains(cfg.data)
        progress(
            "[textvib] "
            + ", ".join(f"{d.name}: {len(d.train)}/{len(d.val)} train/val windows" for d in domains)
        )
        texts = prepare_texts(cfg, domains)
        progress(
            f"[textvib] {len(texts.texts)} descriptions embedded once with {cfg.model.text.encoder.name}"
        )
        return {"texts": texts, "options": options}

    def trial_resources(self, data: dict[str, Any]) -> dict[str, float]:
        return {"cpu": data["options"].trial_cpus}

    def max_iterations(self, base: Mapping[str, Any], params: Mapping[str, Any]) -> int:
        return max_epochs(base, params)

    def summarize(
        self, rows: Sequence[Mapping[str, Any]], base: Mapping[str, Any], params: Sequence[str], max_t: int
    ) -> dict[str, Any]:
        return asha_savings(rows, base, params, max_t)

    def run_trial(
        self, data: dict[str, Any], base: dict[str, Any], params: Mapping[str, Any], report: Report
    ) -> None:
        from ray.tune import get_context
        from ray.tune.trainable.trainable_fn_utils import _in_tune_session

        from monovec.raytrain import checkpoint_state
        from monovec.textvib.train import build_trainer

        try:
            cfg = TextVibConfig.model_validate(apply(base, params))
        except ValidationError:
            report({"valid": 0.0})
            return
        cfg = cfg.model_copy(
            update={"plots": False, "tracking": cfg.tracking.model_copy(update={"enabled": False})}
        )
        in_tune = _in_tune_session()
        run_dir = (
            Path(get_context().get_trial_dir()) / "train"
            if in_tune
            else Path(tempfile.mkdtemp(prefix="textvib-baseline-"))
        )
        trainer = build_trainer(cfg, run_dir, data["texts"])  # the job's own factory
        if in_tune:
            scored = getattr(report, "scored", None)
            if scored is None:
                raise TypeError(
                    "the textvib target needs the runner's TrialReporter (with .scored) to score inside Train"
                )
            trainer.run_config.callbacks = [*(trainer.run_config.callbacks or []), _scored_callback(scored)]
            trainer.fit()
            return
        try:  # driver (the untuned baseline): same run, reports replayed from the final checkpoint
            for metrics in checkpoint_state(trainer.fit())["history"]:
                report(metrics)
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)


TARGET = TextVibTarget()
