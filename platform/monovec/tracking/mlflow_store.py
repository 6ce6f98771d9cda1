"""MLflow: one run per build, the model directory as its artefact, a registry version per build.

Default store is sqlite under the state dir (the file store is deprecated in MLflow 3); set
`MLFLOW_TRACKING_URI` (or `tracking.uri`) to use a server. The registered version's source is the
run's `model/` artefact folder, so `models:/name/3` or `models:/name@champion` resolve to a plain
monovec model directory any process can load.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from monovec.infra import TrackingConfig
from monovec.paths import state_dir

log = logging.getLogger(__name__)


def tracking_uri(uri: str | None = None) -> str:
    if uri:
        return uri
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{state_dir() / 'mlflow.db'}"


def mlflow_client(uri: str | None):  # noqa: ANN201 - mlflow stays a lazy import
    """(the mlflow module, an MlflowClient, the resolved URI) with tracking and registry set to `uri`
    (None = $MLFLOW_TRACKING_URI or sqlite under the state dir, whose folder is created here)."""
    import mlflow

    resolved = tracking_uri(uri)
    if resolved.startswith("sqlite:///"):
        Path(resolved[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(resolved)
    mlflow.set_registry_uri(resolved)
    return mlflow, mlflow.MlflowClient(tracking_uri=resolved, registry_uri=resolved), resolved


def _artifact_location(uri: str) -> str | None:
    """Artefacts next to a sqlite store (MLflow would otherwise use ./mlruns in the cwd); servers choose their own."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri[len("sqlite:///") :]).parent / "mlartifacts").as_uri()


def sanitise(key: str) -> str:
    """An MLflow metric/param key: characters MLflow refuses become `_`."""
    return "".join(c if c.isalnum() or c in "._-/ " else "_" for c in key)


def experiment_id(client: Any, uri: str, name: str) -> str:
    """The id of experiment `name`, created (artefacts beside a sqlite store) when missing."""
    exp = client.get_experiment_by_name(name)
    return (
        exp.experiment_id
        if exp
        else client.create_experiment(name, artifact_location=_artifact_location(uri))
    )


def ensure_registered_model(client: Any, name: str, description: str) -> None:
    """Create registered model `name` unless it exists (a second build just adds a version)."""
    try:
        client.create_registered_model(name, description=description)
    except Exception as exc:  # already exists
        if "already exists" not in str(exc).lower() and "RESOURCE_ALREADY_EXISTS" not in str(exc):
            raise


def log_and_register(
    model_dir: Path,
    config: BaseModel,
    metrics: dict[str, float],
    tracking: TrackingConfig,
    description: str = "monovec unified classifier (one embedding, several heads)",
    run_name: str | None = None,
) -> dict[str, Any]:
    mlflow, client, uri = mlflow_client(tracking.uri)
    exp_id = experiment_id(client, uri, tracking.experiment)
    name = (
        tracking.registered_model
        or getattr(getattr(config, "classifier", None), "name", None)
        or "monovec-model"
    )
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name or f"build-{model_dir.name}") as run:
        flat = _flatten(config.model_dump(mode="json"))
        mlflow.log_params({k[:250]: str(v)[:500] for k, v in list(flat.items())[:400]})
        mlflow.log_metrics({sanitise(k): float(v) for k, v in metrics.items()})
        mlflow.log_artifacts(str(model_dir), artifact_path="model")
        run_id = run.info.run_id
        source = f"{run.info.artifact_uri}/model"
    ensure_registered_model(client, name, description)
    mv = client.create_model_version(
        name, source=source, run_id=run_id, tags={"monovec_version": model_dir.name}
    )
    if tracking.alias:
        client.set_registered_model_alias(name, tracking.alias, mv.version)
    try:  # the first version of a model becomes its champion, so `@champion` always resolves
        client.get_model_version_by_alias(name, "champion")
    except Exception:
        client.set_registered_model_alias(name, "champion", mv.version)
    return {"name": name, "version": str(mv.version), "run_id": run_id, "tracking_uri": uri, "source": source}


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def resolve_model(
    ref: str, uri: str | None = None, dst: str | Path | None = None, marker: str = "model.json"
) -> Path:
    """A local model directory for `ref`: a folder (see `model_dirs.find_model_dir`), `models:/name/3` or
    `models:/name@alias` (downloaded once into the registry cache).

    `marker` is the file a complete download holds (a fine-tuned encoder's is encoder.json).

    Raises:
        FileNotFoundError: no such folder, or the registry has no such name, version or alias.
        ValueError: a `models:/` reference that is neither `name/version` nor `name@alias`.
    """
    if not ref.startswith("models:/"):
        from monovec.model_dirs import find_model_dir

        return find_model_dir(ref)[0]
    mlflow, client, _ = mlflow_client(uri)
    body = ref[len("models:/") :]
    from mlflow.exceptions import MlflowException

    try:
        if "@" in body:
            name, alias = body.split("@", 1)
            mv = client.get_model_version_by_alias(name, alias)
        elif "/" in body:
            name, version = body.rsplit("/", 1)
            mv = client.get_model_version(name, version)
        else:
            raise ValueError(f"bad model reference {ref!r}: use models:/name/version or models:/name@alias")
    except MlflowException as exc:
        raise FileNotFoundError(
            f"{ref}: not in the registry at {tracking_uri(uri)} ({exc.message})"
        ) from None
    target = Path(dst) if dst else state_dir() / "registry-cache" / mv.name / str(mv.version)
    if (target / marker).is_file():
        return target
    tmp = target.parent / f".{target.name}.download"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=mv.source, dst_path=str(tmp)))
    shutil.rmtree(target, ignore_errors=True)
    shutil.move(str(local), str(target))
    shutil.rmtree(tmp, ignore_errors=True)
    return target


def set_alias(name: str, alias: str, version: str, uri: str | None = None) -> None:
    _, client, _ = mlflow_client(uri)
    client.set_registered_model_alias(name, alias, version)


def get_alias(name: str, alias: str, uri: str | None = None) -> str | None:
    _, client, _ = mlflow_client(uri)
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except Exception:
        return None


def registry_entry(
    ref: str, monovec_version: str, name: str | None = None, uri: str | None = None
) -> dict[str, str] | None:
    """The registry (name, version) behind a model reference, or None if it was never registered.

    `models:/` references say it directly; a plain directory is matched by the `monovec_version`
    tag every build puts on its registry version.
    """
    try:
        _, client, _ = mlflow_client(uri)
        if ref.startswith("models:/"):
            body = ref[len("models:/") :]
            if "@" in body:
                n, alias = body.split("@", 1)
                return {"name": n, "version": str(client.get_model_version_by_alias(n, alias).version)}
            n, v = body.rsplit("/", 1)
            return {"name": n, "version": v}
        query = f"tags.monovec_version = '{monovec_version}'" + (f" and name = '{name}'" if name else "")
        found = client.search_model_versions(query)
        return {"name": found[0].name, "version": str(found[0].version)} if found else None
    except Exception as exc:  # registry unreachable: serving must not fail because of it
        log.warning("registry lookup for %s failed: %s", ref, exc)
        return None
