"""Connect to Ray, start/stop a local head with token auth, and submit jobs to it.

`monovec cluster up` runs `ray start --head` bound to 127.0.0.1 with `RAY_AUTH_MODE=token` (the token
lives where Ray looks for it, `~/.ray/auth_token`, generated if missing and never printed). Its
processes share a private temp dir, which is how `cluster down` stops exactly what `up` started and
nothing else on the machine. The head's environment carries MONOVEC_HOME / MONOVEC_DATA /
MLFLOW_TRACKING_URI and the venv's bin dir, so a plain `ray job submit -- python jobs/X.py` finds the
project's state, data and Python.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import Field

from monovec.config import StrictModel
from monovec.paths import data_dir, state_dir

log = logging.getLogger(__name__)


def init_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Initialise Ray once per process (join RAY_ADDRESS/`address`, else a private local Ray). True if started."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
        log.info("joined Ray at %s", address)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=True)
        log.info("started a local Ray with %s CPUs", num_cpus or os.cpu_count())
    return True


class LocalHeadConfig(StrictModel):
    num_cpus: int = Field(2, ge=1, description="CPUs the head offers")
    dashboard_port: int = Field(8265, ge=1024, le=65535, description="dashboard + job server port")
    gcs_port: int = Field(6379, ge=1024, le=65535, description="GCS port (the cluster address)")
    host: str = Field("127.0.0.1", description="every server binds here")
    temp_dir: str | None = Field(None, description="Ray temp dir (short path: Unix socket limit); None = /tmp/monovec-ray-<gcs_port>")
    auth: bool = Field(True, description="token authentication (RAY_AUTH_MODE=token)")


def _state_file() -> Path:
    return state_dir() / "cluster" / "head.json"


def auth_env(enabled: bool = True) -> dict[str, str]:
    """Environment a Ray CLI/client needs to talk to a token-auth cluster."""
    return {"RAY_AUTH_MODE": "token"} if enabled else {}


def ensure_token() -> Path:
    """Create ~/.ray/auth_token (Ray's default location) if missing; its value is never printed."""
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    if not path.is_file() and not os.environ.get("RAY_AUTH_TOKEN"):
        ray_cli = Path(sys.executable).parent / "ray"
        subprocess.run([str(ray_cli), "get-auth-token", "--generate"], check=True, capture_output=True, env={**os.environ, **auth_env()})
    return path


def head_env(cfg: LocalHeadConfig) -> dict[str, str]:
    from monovec.tracking.mlflow_store import tracking_uri

    env = dict(os.environ)
    env.update(auth_env(cfg.auth))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("MONOVEC_HOME", str(state_dir()))
    env.setdefault("MONOVEC_DATA", str(data_dir()))
    env.setdefault("MLFLOW_TRACKING_URI", tracking_uri())
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    repo = str(Path(__file__).resolve().parents[2])  # so `serve deploy` can import serve_apps.*
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, env.get("PYTHONPATH", "")) if p)
    return env


def cluster_up(cfg: LocalHeadConfig) -> dict[str, Any]:
    """Start a local head; returns addresses. Raises RuntimeError if one of ours is already running."""
    current = cluster_status()
    if current.get("running"):
        raise RuntimeError(f"a monovec Ray head is already running at {current['dashboard_url']} (monovec cluster down first)")
    temp_dir = Path(cfg.temp_dir or f"/tmp/monovec-ray-{cfg.gcs_port}")
    temp_dir.mkdir(parents=True, exist_ok=True)
    if cfg.auth:
        ensure_token()
    cmd = [
        str(Path(sys.executable).parent / "ray"), "start", "--head",
        "--node-ip-address", cfg.host, "--port", str(cfg.gcs_port),
        "--dashboard-host", cfg.host, "--dashboard-port", str(cfg.dashboard_port),
        "--num-cpus", str(cfg.num_cpus), "--temp-dir", str(temp_dir), "--disable-usage-stats",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=head_env(cfg), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ray start failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    info = {
        "address": f"{cfg.host}:{cfg.gcs_port}",
        "dashboard_url": f"http://{cfg.host}:{cfg.dashboard_port}",
        "temp_dir": str(temp_dir),
        "auth": cfg.auth,
        "started_at": time.time(),
    }
    _state_file().parent.mkdir(parents=True, exist_ok=True)
    _state_file().write_text(json.dumps(info, indent=2))
    _wait_for_dashboard(info["dashboard_url"], cfg.auth)
    return info


def _wait_for_dashboard(url: str, auth: bool, timeout_s: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/version", timeout=2.0).status_code in (200, 401):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"dashboard at {url} did not answer within {timeout_s:.0f}s")


def _our_processes(temp_dir: str) -> list[Any]:
    """Top-level processes of the head we started (their command lines name our private temp dir)."""
    import psutil

    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(temp_dir in part for part in (p.info["cmdline"] or [])):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def cluster_status() -> dict[str, Any]:
    path = _state_file()
    if not path.is_file():
        return {"running": False}
    info = json.loads(path.read_text())
    procs = _our_processes(info["temp_dir"])
    info["running"] = bool(procs)
    info["processes"] = len(procs)
    return info


def cluster_down(timeout_s: float = 15.0) -> int:
    """Stop every process of the head we started (and their children). Returns how many were stopped."""
    import psutil

    path = _state_file()
    if not path.is_file():
        return 0
    info = json.loads(path.read_text())
    victims: dict[int, Any] = {}
    for p in _our_processes(info["temp_dir"]):
        try:
            for c in [p, *p.children(recursive=True)]:
                victims[c.pid] = c
        except psutil.NoSuchProcess:
            continue
    for p in victims.values():
        try:
            p.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(list(victims.values()), timeout=timeout_s)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
    path.unlink(missing_ok=True)
    return len(victims)


def runtime_env(working_dir: str | Path = ".", extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """What a submitted job carries: the repo (minus venv/state/outputs), the uploaded source first on
    PYTHONPATH, and the data/state/MLflow locations as paths on the cluster (data is never uploaded)."""
    from monovec.tracking.mlflow_store import tracking_uri

    env = {
        "PYTHONPATH": "platform",
        "HF_HUB_OFFLINE": "1",
        "MONOVEC_DATA": os.environ.get("MONOVEC_DATA", str(data_dir())),
        "MONOVEC_HOME": str(state_dir()),
        "MLFLOW_TRACKING_URI": tracking_uri(),
    }
    env.update(extra_env or {})
    return {
        "working_dir": str(working_dir),
        "excludes": [".venv", ".monovec", ".git", "mlruns", "*.egg-info", "__pycache__", ".pytest_cache", "runs", "out"],
        "env_vars": env,
    }


def submit_job(
    entrypoint: str,
    address: str | None = None,
    working_dir: str | Path = ".",
    follow: bool = True,
    timeout_s: float | None = None,
    echo: Any = print,
) -> tuple[str, str]:
    """Submit through JobSubmissionClient, stream the logs, return (job_id, final status)."""
    os.environ.update(auth_env(bool(cluster_status().get("auth", True))))
    from ray.job_submission import JobStatus, JobSubmissionClient

    address = address or os.environ.get("RAY_API_SERVER_ADDRESS") or cluster_status().get("dashboard_url") or "http://127.0.0.1:8265"
    client = JobSubmissionClient(address)
    job_id = client.submit_job(entrypoint=entrypoint, runtime_env=runtime_env(working_dir))
    echo(f"submitted {job_id} to {address}: {entrypoint}")
    if not follow:
        return job_id, str(client.get_job_status(job_id))
    seen = 0
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    terminal = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}
    while True:
        status = client.get_job_status(job_id)
        logs = client.get_job_logs(job_id)
        if len(logs) > seen:
            echo(logs[seen:].rstrip("\n"))
            seen = len(logs)
        if status in terminal:
            return job_id, str(status.value if hasattr(status, "value") else status)
        if deadline is not None and time.monotonic() > deadline:
            client.stop_job(job_id)
            return job_id, "TIMEOUT"
        time.sleep(1.0)
