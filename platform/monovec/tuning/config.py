"""`jobs/tune.py` / `monovec tune run` configuration: what to search, how, and where results go.

The space file says *which* config paths move; this config says how the sweep runs (algorithm,
budget of trials, concurrency, seed), what it optimises, and which build config the winning
overrides apply to.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from monovec.config import StrictModel
from monovec.faults import FaultConfig
from monovec.infra import RayConfig, TrackingConfig
from monovec.tuning.encoder import EncoderTuneOptions
from monovec.tuning.objective import ObjectiveConfig
from monovec.tuning.scoring import ClassifierTuneOptions
from monovec.tuning.textvib import TextVibTuneOptions


class SearchConfig(StrictModel):
    algorithm: Literal["optuna", "random", "grid"] = Field(
        "optuna",
        description="optuna = TPE (OptunaSearch); random = BasicVariantGenerator; grid = every grid point",
    )
    num_samples: int = Field(
        200,
        ge=1,
        description="trials (the untuned baseline is the first); grid: the maximum grid size accepted",
    )
    max_concurrent: int = Field(2, ge=1, description="trials in flight at once (ConcurrencyLimiter)")
    cpus_per_trial: float = Field(1.0, gt=0, description="Ray CPUs reserved per trial")
    seed: int = Field(
        0, description="sampler seed (TPE / random); with max_concurrent > 1 completion order can still vary"
    )
    grid_points: int = Field(
        3,
        ge=2,
        le=50,
        description="grid search: values per continuous parameter (choice/grid entries use their values)",
    )
    scheduler: Literal["fifo", "asha"] = Field(
        "fifo", description="asha stops weak multi-step trials early (single objective only)"
    )
    grace_period: int = Field(
        1, ge=1, description="asha: iterations (epochs) every trial runs before it can be stopped"
    )
    reduction_factor: float = Field(
        2.0, gt=1, description="asha: 1/reduction_factor of the trials reaching a rung go on"
    )


class TuneJobConfig(StrictModel):
    """One sweep. Every field has a default: `python jobs/tune.py --space FILE` alone is a full run."""

    name: str | None = Field(
        None, description="sweep name (default: the space's name); output dir is <name>-<UTC time>"
    )
    base_config: str | None = Field(
        None,
        description="job config the overrides apply to (default: the target's, e.g. jobs/configs/classifier.yaml)",
    )
    base_overrides: list[str] = Field(
        default_factory=list,
        description="dotted overrides on the base config before tuning (e.g. data subsets)",
    )
    search: SearchConfig = Field(default_factory=SearchConfig)
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig)
    classifier: ClassifierTuneOptions = Field(
        default_factory=ClassifierTuneOptions, description="options of the classifier target"
    )
    textvib: TextVibTuneOptions = Field(
        default_factory=TextVibTuneOptions, description="options of the textvib target"
    )
    encoder: EncoderTuneOptions = Field(
        default_factory=EncoderTuneOptions, description="options of the encoder fine-tuning target"
    )
    tracking: TrackingConfig = Field(
        default_factory=lambda: TrackingConfig(experiment="monovec-tune"),
        description="MLflow: parent run per sweep, child run per trial",
    )
    ray: RayConfig = Field(default_factory=lambda: RayConfig(num_cpus=2))
    out_dir: str | None = Field(
        None, description="results directory (default <state dir>/tune/<name>-<UTC time>)"
    )
    top_k: int = Field(10, ge=1, description="rows of the printed / saved results table")
    faults: FaultConfig = Field(
        default_factory=FaultConfig,
        description="fault injection for recovery tests (faults.driver_step_delay_s); off",
    )


def load_job(
    path: str | None,
    overrides: list[str] | None = None,
    *,
    num_samples: int | None = None,
    out: str | None = None,
    address: str | None = None,
    algorithm: str | None = None,
    multi_objective: bool = False,
) -> TuneJobConfig:
    """The job config from YAML (or defaults) + dotted overrides + the entrypoints' shortcut flags."""
    from monovec.config import load_config

    items = list(overrides or [])
    items += [f"search.num_samples={num_samples}"] if num_samples else []
    items += [f"out_dir={out}"] if out else []
    items += [f"ray.address={address}"] if address else []
    items += [f"search.algorithm={algorithm}"] if algorithm else []
    job = load_config(TuneJobConfig, path, items)
    if multi_objective and not job.objective.pareto:
        o = job.objective
        job.objective = o.model_copy(
            update={"pareto": [f"{o.metric}:{o.mode}", f"{o.budget_metric or 'escalation_rate'}:min"]}
        )
    return job
