"""A sweep directory's record (`sweep.json`): what lets a rerun on the same `--out` resume a dead sweep.

Ray Tune keeps the experiment itself under `DIR/ray/<name>-<UTC time>/` (tuner.pkl, experiment state,
the searcher's state, every trial's results) and `tune.Tuner.restore` continues it. What Tune does not
keep is ours: which experiment folder belongs to the sweep, the config and space it ran with (a rerun
with another space or budget is not a resume), the untuned defaults' metrics the driver measured
(re-measuring them would cost a whole training for the textvib target) and the MLflow parent run that
the resumed sweep keeps logging to. `sweep.json` holds exactly that, written atomically before
`Tuner.fit()` and marked `finished` as the sweep's very last step.

A rerun on DIR therefore means (`check_rerun`):

* no `sweep.json` and no `summary.json` -> a fresh sweep;
* `sweep.json` not finished -> resume it (same job config and space required, `ray:` and `faults:` may differ);
* finished (or a `summary.json` from a sweep without a record) -> refused with a ConfigError (exit 2):
  a finished sweep is shown with `monovec tune show DIR`, a new one needs a new `--out`.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monovec.config import ConfigError

if TYPE_CHECKING:
    from monovec.tuning.config import TuneJobConfig
    from monovec.tuning.space import SearchSpace

RECORD = "sweep.json"


@dataclass
class SweepRecord:
    experiment: str  # the Tune experiment folder, relative to the sweep directory
    job: dict[str, Any]  # `job_fingerprint`: the job config as run, without `ray:` and `out_dir`
    space: dict[str, Any]
    baseline_metrics: dict[str, float]
    mlflow_run_id: str | None = None
    finished: bool = False
    started: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    resumes: int = 0  # how many reruns continued this sweep

    def write(self, out: Path) -> None:
        tmp = out / f".{RECORD}.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=2))
        os.replace(tmp, out / RECORD)


def job_fingerprint(job: TuneJobConfig, space: SearchSpace) -> tuple[dict[str, Any], dict[str, Any]]:
    """What must not change between a sweep and its resume: the job config (but where Ray runs and the
    fault-injection switches) and the space."""
    return json.loads(job.model_dump_json(exclude={"ray", "out_dir", "faults"})), json.loads(
        space.model_dump_json()
    )


def read_record(out: Path) -> SweepRecord | None:
    path = out / RECORD
    return SweepRecord(**json.loads(path.read_text())) if path.is_file() else None


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            d
            for k in sorted(set(old) | set(new))
            for d in _differences(old.get(k), new.get(k), f"{prefix}{k}.")
        ]
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} when started, {new!r} now"]


def check_rerun(out: Path, job: TuneJobConfig, space: SearchSpace) -> SweepRecord | None:
    """None for a fresh sweep in `out`, the record of an unfinished one to resume; ConfigError otherwise."""
    record = read_record(out)
    if record is None:
        if (out / "summary.json").is_file():
            raise ConfigError(
                f"{out} holds a finished sweep (summary.json): nothing to resume. "
                f"See it with `monovec tune show {out}`; for a new sweep pass another --out"
            )
        return None
    if record.finished:
        raise ConfigError(
            f"{out} holds a finished sweep (started {record.started}): nothing to resume. "
            f"See it with `monovec tune show {out}`; for a new sweep pass another --out"
        )
    job_now, space_now = job_fingerprint(job, space)
    changed = _differences(record.job, job_now) + _differences(record.space, space_now, "space.")
    if changed:
        raise ConfigError(
            f"{out} holds an unfinished sweep started with other settings, so it cannot be resumed "
            f"({'; '.join(changed[:5])}). Rerun it with the same --space/--config/--num-samples, "
            f"or pass another --out for a new sweep"
        )
    return record


def _loads(data: bytes) -> Any:
    from ray import cloudpickle

    try:
        return cloudpickle.loads(data)  # tuner.pkl, searcher-state-*.pkl, search_gen_state-*.json
    except Exception:  # noqa: BLE001 - not a pickle: JSON text (experiment_state-*.json)
        return json.loads(data)


def saved_state_problem(experiment: Path) -> str | None:
    """Why `tune.Tuner.restore` cannot continue the experiment in `experiment` (None: it can).

    Tune writes its state (tuner.pkl once; experiment state, searcher and search-generator state every
    >= 10 s, `TUNE_GLOBAL_CHECKPOINT_S`) in a staging folder and copies it into the experiment folder,
    not atomically: a kill during that copy leaves a file cut off. Checked: `Tuner.can_restore`, and every
    file of the newest save (the newest session's `*-<session>.*`) loads.
    """
    from ray import tune

    if not tune.Tuner.can_restore(str(experiment)):
        return "Tune saved no tuner.pkl"
    states = sorted(experiment.glob("experiment_state-*.json"))
    if not states:
        return "Tune saved no experiment state yet"
    session = states[-1].name.removeprefix("experiment_state-").removesuffix(".json")
    for path in [experiment / "tuner.pkl", *sorted(experiment.glob(f"*-{session}.*"))]:
        try:
            _loads(path.read_bytes())
        except Exception as exc:  # noqa: BLE001 - any failure to load means Tune cannot restore it either
            return f"{path.name} is unreadable ({type(exc).__name__}: {str(exc)[:80]})"
    return None
