"""What Tune targets whose trials are Ray Train runs share (TextVibCLIP, the encoder fine-tuning).

Ray 2.60's Train v2 + Tune pattern: a Tune function trial builds the job's own TorchTrainer (the same
factory the job uses), adds a `TuneReportCallback` that forwards every epoch's report to Tune (with the
runner's `objective` added, so ASHA and the searcher see the driver's number) and fits. On the driver,
outside Tune, the untuned baseline runs the same trainer and replays the per-epoch history into `report`.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from monovec.config import set_path


def apply_params(base: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of the base config dict with every dotted `params` key set."""
    cfg = copy.deepcopy(dict(base))
    for key, value in params.items():
        set_path(cfg, key.split("."), value)
    return cfg


def scored_report_callback(
    scored: Callable[[dict[str, Any]], dict[str, Any]], drop: Iterable[str] = ()
) -> Any:
    """A `TuneReportCallback` that forwards each Train report through `scored` (minus the keys `drop`)."""
    from ray.tune.integration.ray_train import TuneReportCallback

    dropped = set(drop)

    class ScoredTuneReport(TuneReportCallback):
        """`TuneReportCallback` that adds `objective` (the runner's scoring) to what it forwards, so
        ASHA and the search algorithm see the same number as the driver's baseline."""

        def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
            first = {k: v for k, v in metrics[0].items() if k not in dropped}
            super().after_report(run_context, [scored(first), *metrics[1:]], checkpoint)

    return ScoredTuneReport()


def run_train_trial(build: Callable[[Path], Any], history: Callable[[Any], list[dict[str, Any]]], report: Any, prefix: str,
                    drop: Iterable[str] = ()) -> None:  # fmt: skip
    """Fit `build(run_dir)`'s trainer as a Tune trial (reports forwarded per epoch), or on the driver
    (the baseline: `history(result)` replayed into `report`, the temporary run dir removed)."""
    from ray.tune import get_context
    from ray.tune.trainable.trainable_fn_utils import _in_tune_session

    in_tune = _in_tune_session()
    run_dir = (
        Path(get_context().get_trial_dir()) / "train" if in_tune else Path(tempfile.mkdtemp(prefix=prefix))
    )
    trainer = build(run_dir)
    if in_tune:
        scored = getattr(report, "scored", None)
        if scored is None:
            raise TypeError(
                "a Train-based target needs the runner's TrialReporter (with .scored) to score inside Train"
            )
        trainer.run_config.callbacks = [
            *(trainer.run_config.callbacks or []),
            scored_report_callback(scored, drop),
        ]
        trainer.fit()
        return
    try:
        for metrics in history(trainer.fit()):
            report({k: v for k, v in metrics.items() if k not in set(drop)})
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
