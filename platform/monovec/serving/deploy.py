"""`monovec serve up/down`: deploy serve_apps/classifier.yaml the way `serve deploy` does, locally.

If no Ray is reachable (RAY_ADDRESS unset and no head from `monovec cluster up`), a local head is
started and remembered so that `serve down` stops exactly it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from monovec.paths import state_dir


def _marker() -> Path:
    return state_dir() / "serve" / "up.json"


def load_serve_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"serve config not found: {path}")
    cfg = yaml.safe_load(path.read_text())
    apps = cfg.get("applications") or []
    if not apps:
        raise ValueError(f"{path}: no applications")
    return cfg


def import_build_app() -> Callable[[dict[str, Any]], Any]:
    """`serve_apps.classifier:build_app`, importable from anywhere (serve_apps/ is at the repo root)."""
    import sys

    repo = str(Path(__file__).resolve().parents[3])
    if repo not in sys.path:
        sys.path.insert(0, repo)
    from serve_apps.classifier import build_app

    return build_app


def serve_up(config: str | Path, timeout_s: float = 300, echo: Callable[[str], None] = print) -> dict[str, Any]:
    import os

    import ray
    from ray import serve

    from monovec.cluster import LocalHeadConfig, cluster_status, cluster_up

    cfg = load_serve_config(config)
    started = False
    if not os.environ.get("RAY_ADDRESS") and not cluster_status().get("running"):
        echo("no Ray cluster reachable: starting a local head (monovec cluster up)")
        cluster_up(LocalHeadConfig.load())
        started = True
    address = os.environ.get("RAY_ADDRESS") or cluster_status()["address"]
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    ray.init(address=address, log_to_driver=False, ignore_reinit_error=True)
    http = cfg.get("http_options", {})
    serve.start(http_options={"host": http.get("host", "127.0.0.1"), "port": http.get("port", 8000)})
    build_app = import_build_app()

    for app in cfg["applications"]:
        builder = build_app if app["import_path"] == "serve_apps.classifier:build_app" else None
        if builder is None:
            raise ValueError(f"unsupported import_path {app['import_path']!r} for serve up; use `serve deploy`")
        serve.run(builder(app.get("args", {})), name=app["name"], route_prefix=app.get("route_prefix", "/"), blocking=False)
    url = f"http://{http.get('host', '127.0.0.1')}:{http.get('port', 8000)}"
    _marker().parent.mkdir(parents=True, exist_ok=True)
    _marker().write_text(json.dumps({"url": url, "started_ray": started, "apps": [a["name"] for a in cfg["applications"]]}))
    from monovec.serving.client import ServeClient

    client = ServeClient(url)
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            health = client.healthz()
            return {"url": url, "split": health.get("split"), "started_ray": started}
        except Exception as exc:
            last = str(exc)
            time.sleep(1.0)
    raise RuntimeError(f"app did not become healthy within {timeout_s:.0f}s: {last}")


def serve_down() -> str:
    import os

    import ray
    from ray import serve

    from monovec.cluster import cluster_down, cluster_status

    marker = json.loads(_marker().read_text()) if _marker().is_file() else {"apps": ["classifier"], "started_ray": False}
    address = os.environ.get("RAY_ADDRESS") or cluster_status().get("address")
    msg = []
    if address:
        os.environ.setdefault("RAY_AUTH_MODE", "token")
        ray.init(address=address, log_to_driver=False, ignore_reinit_error=True)
        for name in marker["apps"]:
            serve.delete(name)
            msg.append(f"deleted app {name}")
        ray.shutdown()
    if marker.get("started_ray"):
        msg.append(f"stopped {cluster_down()} Ray processes")
    _marker().unlink(missing_ok=True)
    return "; ".join(msg) or "nothing to stop"
