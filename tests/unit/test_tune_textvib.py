"""The textvib Tune target without Ray: registration, the space's epoch budget, ASHA's savings accounting."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from monovec.config import ConfigError, load_config
from monovec.textvib.config import TextVibConfig
from monovec.tuning.config import TuneJobConfig
from monovec.tuning.objective import ObjectiveConfig
from monovec.tuning.runner import TrialReporter, resolve_base
from monovec.tuning.space import load_space
from monovec.tuning.targets import config_model, runtime, target_spec
from monovec.tuning.textvib import STAGE1_KEY, TextVibTuneOptions, asha_savings, max_epochs, planned_epochs

REPO = Path(__file__).resolve().parents[2]
SPACE = REPO / "tune_spaces" / "textvib_loss_weights.yaml"
JOB = REPO / "jobs" / "configs" / "tune_textvib.yaml"
BASE = {"data": {"domains": ["a", "b"]}, "train": {"epochs_per_domain": 4, "first_domain_stage1_epochs": 1}}
PARAMS = [STAGE1_KEY, "train.lr"]


def test_target_is_registered_with_the_job_config_model_and_runtime() -> None:
    spec = target_spec("textvib")
    assert config_model("textvib") is TextVibConfig and spec.options_field == "textvib"
    target = runtime("textvib")
    assert target.reuse_actors is False  # a stopped trial's actor must die with its Train controller
    assert target.trial_resources({"options": TextVibTuneOptions()}) == {"cpu": 0.05}
    assert isinstance(TuneJobConfig().textvib, TextVibTuneOptions)


def test_tune_job_config_sweeps_the_smoke_slice_with_asha() -> None:
    assert (
        JOB.read_text().splitlines()[0]
        == f"# python jobs/tune.py --space tune_spaces/{SPACE.name} --config jobs/configs/{JOB.name}"
    )
    job = load_config(TuneJobConfig, JOB)
    space = load_space(SPACE)
    assert (
        space.target == "textvib" and job.search.scheduler == "asha" and job.objective.budget_metric is None
    )
    base, base_dict, path = resolve_base(job, space)
    assert path.endswith("textvib_smoke.yaml") and base.scaling.num_workers == 1
    # a trial's worker plus the trial itself fit one CPU, so max_concurrent trials fit the local Ray
    assert base.scaling.cpus_per_worker + job.textvib.trial_cpus <= 1.0
    assert job.search.max_concurrent <= job.ray.num_cpus
    # 2 domains x 4 epochs + at most 3 stage-1 epochs: ASHA's max_t
    assert planned_epochs(base_dict) == 9 and runtime("textvib").max_iterations(base_dict, space.params) == 11


def test_local_mode_is_refused_before_any_work() -> None:
    cfg = TextVibConfig().model_copy(
        update={"scaling": TextVibConfig().scaling.model_copy(update={"num_workers": 0})}
    )
    with pytest.raises(ConfigError, match="num_workers >= 1"):
        runtime("textvib").prepare(cfg, TextVibTuneOptions(), lambda _m: None)


def test_max_epochs_uses_the_largest_stage1_the_space_allows() -> None:
    space = load_space(SPACE)
    assert max_epochs(BASE, space.params) == 2 * 4 + 3
    assert max_epochs(BASE, {}) == 2 * 4 + 1  # stage 1 not tuned: the base config's


def test_asha_savings_counts_epochs_run_against_trials_times_max_epochs() -> None:
    rows = [
        {"trial": 0, "epoch": 9, STAGE1_KEY: 1, "train.lr": 0.002},  # ran to the end of its own plan (9)
        {"trial": 1, "epoch": 11, STAGE1_KEY: 3, "train.lr": 0.001},  # the longest plan, complete
        {"trial": 2, "epoch": 2, STAGE1_KEY: 0, "train.lr": 0.004},  # stopped at the first rung
        {"trial": 3, "epoch": 4, STAGE1_KEY: 2, "train.lr": 0.0005},  # stopped at the second rung
    ]
    s = asha_savings(rows, BASE, PARAMS, max_t=11)
    assert s["epochs_run"] == 26 and s["epochs_budget"] == 44 and s["max_epochs"] == 11
    assert s["epochs_full"] == 9 + 11 + 8 + 10
    assert s["epoch_fraction"] == pytest.approx(26 / 44) and s["asha_saved_fraction"] == pytest.approx(
        1 - 26 / 44
    )
    assert s["asha_saved_fraction_vs_planned"] == pytest.approx(1 - 26 / 38)
    assert s["trials_stopped_early"] == 2


def test_asha_savings_without_early_stopping_is_only_the_shorter_plans() -> None:
    rows = [{"trial": i, "epoch": 9} for i in range(3)]  # stage 1 not in the rows: the base config's
    s = asha_savings(rows, BASE, PARAMS, max_t=9)
    assert s["asha_saved_fraction"] == 0.0 and s["trials_stopped_early"] == 0
    assert math.isnan(asha_savings([], BASE, PARAMS, max_t=9)["epoch_fraction"])


def test_trial_reporter_scores_what_it_forwards() -> None:
    """`.scored` is what the nested Train controller's callback applies, so Tune and ASHA see `objective`."""
    got: dict = {}
    reporter = TrialReporter(ObjectiveConfig(metric="val_acc", budget_metric=None, budget=None), got.update)
    assert reporter.scored({"val_acc": 0.5})["objective"] == 0.5
    reporter({"val_acc": 0.75, "epoch": 3})
    assert got["objective"] == 0.75 and got["epoch"] == 3 and got["feasible"] == 1.0
    import pickle

    assert pickle.loads(pickle.dumps(reporter.scored.__self__)).objective.metric == "val_acc"
