"""Connect to Ray, start/stop a local head with token auth, and submit jobs to it.

`monovec cluster up` runs `ray start --head` bound to 127.0.0.1 with `RAY_AUTH_MODE=token` (the token
lives where Ray looks for it, `~/.ray/auth_token`, generated if missing and never printed). Its
processes share a private temp dir, which is how `cluster down` stops exactly what `up` started and
nothing else on the machine. The head's environment carries MONOVEC_HOME / MONOVEC_DATA /
MLFLOW_TRACKING_URI and the venv's bin dir, so a plain `ray job submit -- python jobs/X.py` finds the
project's state, data and Python. The head's defaults live in `cluster/local/head.yaml` (flags override).
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

from pydantic import Field, ValidationError, model_validator

from monovec.config import ConfigError, StrictModel, load_config
from monovec.paths import REPO_ROOT, data_dir, state_dir
from monovec.ray_env import LOCAL_RAY_ENV, ensure_token, free_port, port_holder, use_token_auth

log = logging.getLogger(__name__)


DEFAULT_HEAD_CONFIG = REPO_ROOT / "cluster" / "local" / "head.yaml"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class LocalHeadConfig(StrictModel):
    """What `monovec cluster up` starts. Defaults come from `cluster/local/head.yaml` (see `load`)."""

    num_cpus: int = Field(2, ge=1, description="CPUs the head offers")
    dashboard_port: int = Field(8265, ge=1024, le=65535, description="dashboard + job server port")
    gcs_port: int = Field(6379, ge=1024, le=65535, description="GCS port (the cluster address)")
    host: str = Field("127.0.0.1", description="every server binds here")
    temp_dir: str | None = Field(
        None, description="Ray temp dir (short path: Unix socket limit); None = /tmp/monovec-ray-<gcs_port>"
    )
    auth: bool = Field(True, description="token authentication (RAY_AUTH_MODE=token)")

    @model_validator(mode="after")
    def _no_open_head_without_auth(self) -> LocalHeadConfig:
        # Without a token anyone who reaches the job server runs code on this machine: only on loopback.
        if not self.auth and self.host not in LOOPBACK:
            raise ValueError(f"auth: false is only allowed on a loopback host, not {self.host!r}")
        return self

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: Any) -> LocalHeadConfig:
        """Defaults from `path` (None: cluster/local/head.yaml when it exists), then `overrides` that are not None.

        CLI flags arrive as overrides with None meaning "not given", so the file stays the one place
        where the defaults are written down. Raises ConfigError naming the file and field.
        """
        if path is None and DEFAULT_HEAD_CONFIG.is_file():
            path = DEFAULT_HEAD_CONFIG
        base = load_config(cls, path)
        given = {key: value for key, value in overrides.items() if value is not None}
        try:
            return cls.model_validate({**base.model_dump(), **given})
        except ValidationError as exc:
            lines = [f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()]
            raise ConfigError(
                f"invalid cluster settings (flags over {path or 'defaults'}):\n  " + "\n  ".join(lines)
            ) from exc


def _state_file() -> Path:
    return state_dir() / "cluster" / "head.json"


def auth_env(enabled: bool = True) -> dict[str, str]:
    """Environment a Ray CLI/client needs to talk to a token-auth cluster."""
    return {"RAY_AUTH_MODE": "token"} if enabled else {}


def head_env(cfg: LocalHeadConfig) -> dict[str, str]:
    from monovec.tracking.mlflow_store import tracking_uri

    env = dict(os.environ)
    env.update(auth_env(cfg.auth))
    if cfg.host in LOOPBACK:
        env.update(LOCAL_RAY_ENV)  # else Ray swaps 127.0.0.1 for the machine's address (ray_env docstring)
    # Every process of the head (jobs, their workers, Train controllers) finds this cluster by this
    # address instead of scanning the machine, which fails when another Ray runs here (ray_env.pin_ray_address).
    env["RAY_ADDRESS"] = f"{cfg.host}:{cfg.gcs_port}"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("MONOVEC_HOME", str(state_dir()))
    env.setdefault("MONOVEC_DATA", str(data_dir()))
    env.setdefault("MLFLOW_TRACKING_URI", tracking_uri())
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    return env


def cluster_up(cfg: LocalHeadConfig) -> dict[str, Any]:
    """Start a local head; returns addresses. Raises RuntimeError if one of ours is already running."""
    current = cluster_status()
    if current.get("running"):
        raise RuntimeError(
            f"a monovec Ray head is already running at {current['dashboard_url']} (monovec cluster down first)"
        )
    for what, port in (("GCS", cfg.gcs_port), ("dashboard", cfg.dashboard_port)):
        holder = port_holder(port, cfg.host)
        if holder:
            raise RuntimeError(
                f"{what} port {cfg.host}:{port} is already in use ({holder}); stop it or pick another port"
            )
    temp_dir = Path(cfg.temp_dir or f"/tmp/monovec-ray-{cfg.gcs_port}")
    temp_dir.mkdir(parents=True, exist_ok=True)
    if cfg.auth:
        ensure_token()
    cmd = [
        str(Path(sys.executable).parent / "ray"),
        "start",
        "--head",
        "--node-ip-address",
        cfg.host,
        "--port",
        str(cfg.gcs_port),
        "--dashboard-host",
        cfg.host,
        "--dashboard-port",
        str(cfg.dashboard_port),
        "--num-cpus",
        str(cfg.num_cpus),
        "--temp-dir",
        str(temp_dir),
        "--disable-usage-stats",
        # The agent's HTTP port defaults to a fixed 52365: when any other Ray on the machine holds it
        # (a notebook's ray.init, a test session) our agent never comes up and job submission fails.
        "--dashboard-agent-listen-port",
        str(free_port(cfg.host)),
        # The Ray Client server (ray://) must not collide with another head on this machine either.
        "--ray-client-server-port",
        str(free_port(cfg.host)),
    ]
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
    try:
        _wait_for_dashboard(info["dashboard_url"], cfg.auth)
        _wait_for_job_agent(info["address"], cfg)
    except BaseException:
        cluster_down()  # never leave a half-started head holding the ports
        raise
    return info


# Runs in a child process so the caller's own Ray client state (auth mode, a local ray.init) is
# untouched. Exits 0 once the head's dashboard agent has registered its address in the GCS.
_AGENT_PROBE = """
import sys, time
from ray._raylet import GcsClient
from ray.dashboard.consts import DASHBOARD_AGENT_ADDR_NODE_ID_PREFIX as PREFIX
client = GcsClient(address=sys.argv[1])
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    keys = client.internal_kv_keys(b"", namespace=b"dashboard")
    if any(k.startswith(PREFIX.encode()) for k in keys):
        sys.exit(0)
    time.sleep(0.5)
sys.exit(1)
"""


def _wait_for_job_agent(address: str, cfg: LocalHeadConfig, timeout_s: float = 120.0) -> None:
    """Block until the job server can hand work to the head's dashboard agent.

    The dashboard answers `/api/version` seconds before its agent registers; a `ray job submit` in
    that window fails with "No available agent to submit job" (seen on a loaded 2-core machine), so
    `cluster up` only returns once a submission can succeed.
    """
    probe = subprocess.run(
        [sys.executable, "-c", _AGENT_PROBE, address, str(timeout_s)],
        env=head_env(cfg),
        capture_output=True,
        text=True,
        timeout=timeout_s + 30,
        check=False,
    )
    if probe.returncode != 0:
        raise RuntimeError(
            f"the head's job agent did not register within {timeout_s:.0f}s; see "
            f"{cfg.temp_dir or f'/tmp/monovec-ray-{cfg.gcs_port}'}/session_latest/logs/dashboard_agent.log\n"
            f"{probe.stderr[-1500:]}"
        )


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


def our_processes(temp_dir: str, address: str | None = None) -> list[Any]:
    """Top-level processes of the head we started.

    Most name our private temp dir on their command line; the Ray Client server does not (it names
    only the GCS address, `--address=<host>:<port>`), so it is matched by that address.
    """
    import psutil

    markers = [temp_dir] + ([f"--address={address}"] if address else [])
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(m in part for part in (p.info["cmdline"] or []) for m in markers):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def cluster_status() -> dict[str, Any]:
    path = _state_file()
    if not path.is_file():
        return {"running": False}
    info = json.loads(path.read_text())
    procs = our_processes(info["temp_dir"], info.get("address"))
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
    for p in our_processes(info["temp_dir"], info.get("address")):
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


def runtime_env(
    working_dir: str | Path = ".", extra_env: dict[str, str] | None = None, local: bool = True
) -> dict[str, Any]:
    """What a submitted job carries: the repo (minus venv/state/outputs) as its working dir, this checkout's
    library as a Ray `py_modules` package (so the job runs the code that was submitted, not whatever
    version the cluster has installed), and, for the local head (`local`), this machine's
    data/state/MLflow locations (data is never uploaded). A remote cluster keeps its own locations: the
    launcher/KubeRay manifests set them, and a laptop path would be wrong there."""
    env = {"HF_HUB_OFFLINE": "1"}
    if local:
        from monovec.tracking.mlflow_store import tracking_uri

        env["MONOVEC_DATA"] = os.environ.get("MONOVEC_DATA", str(data_dir()))
        env["MONOVEC_HOME"] = str(state_dir())
        env["MLFLOW_TRACKING_URI"] = tracking_uri()
    env.update(extra_env or {})
    library = Path(__file__).resolve().parent  # platform/monovec of this checkout
    return {
        "working_dir": str(working_dir),
        "py_modules": [str(library)],
        "excludes": [
            ".venv",
            ".monovec",
            ".git",
            "mlruns",
            "*.egg-info",
            "__pycache__",
            ".pytest_cache",
            "runs",
            "out",
        ],
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
    """Submit through JobSubmissionClient, stream the logs, return (job_id, final status).

    Only a job for the head `monovec cluster up` started gets this machine's state/data/MLflow paths.
    """
    head = cluster_status()
    if head.get("auth", True):
        use_token_auth()
    from ray.job_submission import JobStatus, JobSubmissionClient

    address = (
        address
        or os.environ.get("RAY_API_SERVER_ADDRESS")
        or head.get("dashboard_url")
        or "http://127.0.0.1:8265"
    )
    local = bool(head.get("running")) and address.rstrip("/") == head.get("dashboard_url")
    client = JobSubmissionClient(address)
    job_id = client.submit_job(entrypoint=entrypoint, runtime_env=runtime_env(working_dir, local=local))
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
