"""Register a Taste2Vec checkpoint's servable `model/` folder as a new MLflow model version.

Same store as the rest of the platform (sqlite under the state dir unless MLFLOW_TRACKING_URI / tracking.uri
says otherwise); the version's tags say how many events it has learned, so `models:/monovec-taste2vec/3`
can be traced back to a stream position.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from monovec.infra import TrackingConfig
from monovec.tracking.mlflow_store import ensure_registered_model, experiment_id, mlflow_client, sanitise


def register_version(
    model_dir: Path, learned: int, metrics: dict[str, float], tracking: TrackingConfig
) -> dict[str, Any]:
    mlflow, client, uri = mlflow_client(tracking.uri)
    exp_id = experiment_id(client, uri, tracking.experiment)
    with mlflow.start_run(experiment_id=exp_id, run_name=f"taste2vec-{learned}") as run:
        mlflow.log_params({"events_learned": learned})
        clean = {sanitise(k): float(v) for k, v in metrics.items() if v == v}  # drop NaN
        if clean:
            mlflow.log_metrics(clean, step=learned)
        mlflow.log_artifacts(str(model_dir), artifact_path="model")
        source, run_id = f"{run.info.artifact_uri}/model", run.info.run_id
    name = tracking.registered_model
    ensure_registered_model(client, name, "Taste2Vec: coffee taste embedding, updated online from feedback")
    mv = client.create_model_version(
        name, source=source, run_id=run_id, tags={"events_learned": str(learned)}
    )
    return {
        "name": name,
        "version": str(mv.version),
        "run_id": run_id,
        "events_learned": learned,
        "tracking_uri": uri,
    }
