"""The encoder fine-tuning Tune target without Ray: registration, the sweep config, the epoch budget."""

from __future__ import annotations

import pytest

from monovec.config import ConfigError, load_config
from monovec.finetune.config import FinetuneConfig
from monovec.tuning.config import TuneJobConfig
from monovec.tuning.encoder import EncoderTuneOptions
from monovec.tuning.runner import resolve_base
from monovec.tuning.space import load_space
from monovec.tuning.targets import config_model, runtime, target_spec
from tests.conftest import REPO

SPACE = REPO / "tune_spaces" / "encoder_finetune.yaml"
JOB = REPO / "jobs" / "configs" / "tune_encoder.yaml"


def test_target_uses_the_job_config_model_and_the_jobs_trainer_factory() -> None:
    spec = target_spec("encoder")
    assert (
        config_model("encoder") is FinetuneConfig
        and spec.default_base_config == "jobs/configs/encoder_finetune.yaml"
    )
    target = runtime("encoder")
    assert target.reuse_actors is False and target.trial_resources({"options": EncoderTuneOptions()}) == {
        "cpu": 0.05
    }
    import inspect

    assert "build_trainer(cfg, run_dir" in inspect.getsource(
        type(target).run_trial
    )  # one factory for the job and Tune


def test_tune_job_sweeps_a_slice_with_asha_on_the_dev_objective() -> None:
    assert (
        JOB.read_text().splitlines()[0]
        == f"# python jobs/tune.py --space tune_spaces/{SPACE.name} --config jobs/configs/{JOB.name}"
    )
    job = load_config(TuneJobConfig, JOB)
    space = load_space(SPACE)
    assert (
        space.target == "encoder"
        and job.search.scheduler == "asha"
        and job.objective.metric == "dev_objective"
    )
    assert set(space.params) == {
        "loss.alignment",
        "loss.supcon",
        "loss.geometry",
        "train.lr",
        "train.group_lr_scale.pool",
        "train.group_lr_scale.dan",
        "loss.geometry_anchor_batch",
    }
    base, base_dict, path = resolve_base(job, space)
    assert (
        path.endswith("encoder_finetune.yaml")
        and base.scaling.num_workers == 1
        and base.tasks["emotion"].max_rows == 200
    )
    assert (
        base.scaling.cpus_per_worker + job.encoder.trial_cpus <= 1.0
        and job.search.max_concurrent <= job.ray.num_cpus
    )
    assert (
        runtime("encoder").max_iterations(base_dict, space.params) == 2
    )  # ASHA's max_t = the trial's epochs


def test_local_mode_and_invalid_points_are_handled_before_any_training() -> None:
    base = load_config(FinetuneConfig, REPO / "jobs/configs/encoder_finetune.yaml", ["scaling.num_workers=0"])
    with pytest.raises(ConfigError, match="num_workers >= 1"):
        runtime("encoder").prepare(base, EncoderTuneOptions(), lambda _m: None)
    got: list[dict] = []
    runtime("encoder").run_trial({}, base.model_dump(mode="json"), {"loss.geometry": -1.0}, got.append)
    assert got == [{"valid": 0.0}]  # a point the config rejects is reported invalid, not trained
