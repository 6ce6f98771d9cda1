"""`monovec serve up/down`: deploy a Serve config file exactly as `serve deploy` does, then wait for health.

`serve up` validates the file with Ray's own `ServeDeploySchema` (plus `ClassifierAppArgs` for our
apps, so a typo names its field before anything starts), sends it to the dashboard's Serve REST API
(what `serve deploy` does: declarative, the file replaces the running apps), and returns once every
app is RUNNING and `/healthz` answers. If Serve reports a deployment it cannot schedule or that failed,
it stops waiting and says so. With no Ray reachable it first starts a local head (`monovec cluster up`)
and remembers that, so `serve down` stops exactly what `serve up` started.

The admin token of the app (promote/rollback) is `$MONOVEC_ADMIN_TOKEN` on the replicas, else the
owner-only file `<state dir>/serve/admin_token`, which `serve up` creates when neither exists; the
`monovec experiment` commands read the same two places.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from monovec.config import ConfigError
from monovec.paths import state_dir

OUR_BUILDERS = ("monovec.serving.app:build_app",)


def marker_path() -> Path:
    """Where `serve up` records what it started (`serve down` reads it)."""
    return state_dir() / "serve" / "up.json"


def admin_token_path() -> Path:
    """The admin-token file shared by the replicas and the `monovec experiment` commands (serving.admin)."""
    return state_dir() / "serve" / "admin_token"


def ensure_admin_token() -> Path | None:
    """Create the admin-token file owner-only when no token exists anywhere; None when the env has one."""
    if os.environ.get("MONOVEC_ADMIN_TOKEN"):
        return None
    path = admin_token_path()
    if not path.is_file():
        import secrets

        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32))
    return path


def load_serve_config(path: str | Path) -> Any:
    """The file as Ray's `ServeDeploySchema`; our apps' `args` also validated as `ClassifierAppArgs`.

    Raises:
        FileNotFoundError: no such file.
        ConfigError: invalid YAML, or a field Ray or monovec rejects (the message names it).
    """
    from pydantic import ValidationError
    from ray.serve.schema import ServeDeploySchema

    from monovec.serving.config import ClassifierAppArgs

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"serve config not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        schema = ServeDeploySchema.model_validate(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_errors(exc)}") from exc
    if not schema.applications:
        raise ConfigError(f"{path}: no applications")
    for app in schema.applications:
        if app.import_path in OUR_BUILDERS:
            try:
                ClassifierAppArgs.model_validate(app.args or {})
            except ValidationError as exc:
                raise ConfigError(f"{path}: application {app.name!r} args: {_errors(exc)}") from exc
    return schema


def _errors(exc: Any) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors())


def app_url(schema: Any, app: Any | None = None) -> str:
    """Base URL of an app of the config (the proxy's host/port plus its route prefix, no trailing /)."""
    http = schema.http_options
    prefix = (app.route_prefix if app is not None else "/") or "/"
    return f"http://{http.host}:{http.port}{prefix.rstrip('/')}"


def serve_up(
    config: str | Path,
    address: str | None = None,
    timeout_s: float = 300,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Deploy `config` to the dashboard at `address` (default: $RAY_DASHBOARD_ADDRESS, else the local
    head, started when none runs); return `{"url", "split", "started_ray"}` once healthy.

    Raises:
        ConfigError / FileNotFoundError: a bad config file.
        RuntimeError: the deploy was refused, an app failed or could not be scheduled, or no health
            answer came within `timeout_s` seconds (the message carries Serve's own explanation).
    """
    from monovec.cluster import LocalHeadConfig, cluster_status, cluster_up
    from monovec.ray_env import use_token_auth

    schema = load_serve_config(config)
    head = cluster_status()
    started = False
    address = address or os.environ.get("RAY_DASHBOARD_ADDRESS")
    if address is None:
        if not head.get("running"):
            echo("no Ray head running: starting one (monovec cluster up)")
            head = cluster_up(LocalHeadConfig.load())
            started = True
        address = head["dashboard_url"]
    if head.get("auth", True):
        use_token_auth()
    if any(app.import_path in OUR_BUILDERS for app in schema.applications) and ensure_admin_token():
        echo(
            f"admin token: {admin_token_path()} (owner-only; or set MONOVEC_ADMIN_TOKEN before `cluster up`)"
        )
    from ray.dashboard.modules.serve.sdk import ServeSubmissionClient

    client = ServeSubmissionClient(address)
    client.deploy_applications(schema.model_dump(exclude_unset=True))
    marker_path().parent.mkdir(parents=True, exist_ok=True)
    marker_path().write_text(
        json.dumps(
            {"address": address, "started_ray": started, "apps": [a.name for a in schema.applications]}
        )
    )
    names = [a.name for a in schema.applications]
    echo(f"deployed {', '.join(names)} to {address}; waiting for the replicas (timeout {timeout_s:.0f}s)")
    _wait_running(client, names, timeout_s)
    first = schema.applications[0]
    url = app_url(schema, first)
    health = _wait_healthy(url, max(10.0, timeout_s / 4))
    return {"url": url, "split": health.get("split"), "started_ray": started, "dashboard": address}


def _wait_running(client: Any, names: list[str], timeout_s: float) -> None:
    """Poll Serve's status until every app is RUNNING; fail fast on DEPLOY_FAILED or unschedulable replicas."""
    deadline = time.monotonic() + timeout_s
    last = "no status yet"
    while time.monotonic() < deadline:
        apps = client.get_serve_details().get("applications", {})
        statuses = {n: apps.get(n, {}).get("status", "NOT_STARTED") for n in names}
        if all(s == "RUNNING" for s in statuses.values()):
            return
        for name in names:
            app = apps.get(name, {})
            if app.get("status") == "DEPLOY_FAILED":
                raise RuntimeError(f"app {name!r} failed to deploy: {app.get('message', '')[-1500:]}")
            for dep_name, dep in (app.get("deployments") or {}).items():
                msg = dep.get("message") or ""
                if "to be scheduled" in msg or dep.get("status") == "DEPLOY_FAILED":
                    raise RuntimeError(f"app {name!r}, deployment {dep_name!r}: {msg[-1500:]}")
                if msg:
                    last = f"{dep_name}: {msg}"
        time.sleep(1.0)
    raise RuntimeError(f"apps not RUNNING within {timeout_s:.0f}s ({last})")


def _wait_healthy(url: str, timeout_s: float) -> dict[str, Any]:
    from monovec.serving.client import ServeClient

    client = ServeClient(url)
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            return client.healthz()
        except Exception as exc:  # proxy not routing yet
            last = str(exc)
            time.sleep(0.5)
    raise RuntimeError(f"{url}/healthz did not answer within {timeout_s:.0f}s: {last}")


def serve_down(address: str | None = None) -> str:
    """Shut Serve down on the cluster `serve up` used (like `serve shutdown`), and stop the local head if
    `serve up` started it. Returns what was done, in words."""
    from monovec.cluster import cluster_down, cluster_status
    from monovec.ray_env import use_token_auth

    marker = json.loads(marker_path().read_text()) if marker_path().is_file() else {}
    head = cluster_status()
    address = (
        address
        or marker.get("address")
        or os.environ.get("RAY_DASHBOARD_ADDRESS")
        or head.get("dashboard_url")
    )
    msg = []
    if address and (head.get("running") or not marker.get("started_ray")):
        if head.get("auth", True):
            use_token_auth()
        from ray.dashboard.modules.serve.sdk import ServeSubmissionClient

        try:
            ServeSubmissionClient(address).delete_applications()
            msg.append(f"Serve shut down on {address}")
        except Exception as exc:  # nothing listening: nothing to delete
            msg.append(f"no Serve to shut down at {address} ({type(exc).__name__})")
    if marker.get("started_ray"):
        msg.append(f"stopped {cluster_down()} Ray processes")
    marker_path().unlink(missing_ok=True)
    return "; ".join(msg) or "nothing to stop"
