"""The infrastructure blocks every job config shares: where Ray runs, how wide a job runs, where MLflow is.

One shape per concern, used by every family (classifier build, taste2vec update, TextVibCLIP training,
Tune sweeps), so `ray.address`, `scaling.num_workers` and `tracking.uri` mean the same in every YAML.
A job that wants other defaults passes them with `default_factory` (e.g. taste2vec runs its loop in the
driver: `ScalingConfig(num_workers=0)`); the fields and their meaning never differ between jobs.
"""

from __future__ import annotations

from pydantic import Field

from monovec.config import StrictModel


class RayConfig(StrictModel):
    """Which Ray this job's entrypoint joins or starts (`monovec.ray_env.init_ray` reads these two fields)."""

    address: str | None = Field(
        None, description="Ray address to join; None = $RAY_ADDRESS, else a private local Ray on 127.0.0.1"
    )
    num_cpus: int | None = Field(
        None, ge=1, description="CPUs of a locally started Ray (None = all of the machine's)"
    )


class ScalingConfig(StrictModel):
    """How many Ray workers the job's parallel stage uses and what each one reserves.

    Ray Train jobs (textvib, taste2vec): `num_workers` Train workers with `cpus_per_worker` CPUs each,
    `max_failures` worker failures recovered from the latest checkpoint, `checkpoints_to_keep` kept.
    0 workers runs the loop in the driver process (Train v2 local mode). The classifier build uses
    `num_workers` embedding actors (0 or 1 = embed in the driver); the other fields do not apply to it.
    """

    num_workers: int = Field(
        1, ge=0, description="Ray workers of the parallel stage (0 = run it in the driver process)"
    )
    cpus_per_worker: float = Field(1.0, gt=0, description="CPUs each Ray Train worker reserves")
    max_failures: int = Field(
        1,
        ge=-1,
        description="worker failures to recover from (resume from the latest checkpoint; -1 = unlimited)",
    )
    checkpoints_to_keep: int = Field(2, ge=1, description="Ray Train checkpoints kept (the newest)")


class TrackingConfig(StrictModel):
    """MLflow: where runs are logged and under which registered model a job's versions go."""

    enabled: bool = Field(True, description="log the run to MLflow and register a model version")
    uri: str | None = Field(
        None, description="tracking URI; None = $MLFLOW_TRACKING_URI or sqlite under the state dir"
    )
    experiment: str = Field("monovec-classifier", description="MLflow experiment name")
    registered_model: str | None = Field(
        None, description="registry name (None = the job's model name, e.g. the classifier's name)"
    )
    alias: str | None = Field(
        None, description="alias set on the new version (e.g. 'candidate'); None sets none"
    )
