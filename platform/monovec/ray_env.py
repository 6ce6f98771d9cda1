"""How this process talks to Ray: a private loopback Ray, or an existing cluster with token auth.

Three facts of Ray 2.60 shape this module (each learned the hard way on a machine that also has a
non-loopback interface):

* **Loopback is not loopback by default.** Ray replaces a loopback node IP (`127.0.0.1`) with the
  machine's reachable address (`services.resolve_ip_for_localhost`), so `ray start --node-ip-address
  127.0.0.1` and `ray.init(_node_ip_address="127.0.0.1")` still listen on `*:<port>` under the external
  address. `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` is the switch that keeps the loopback address (Ray's
  single-machine mode); it is read when `ray` is imported, so it must be in the environment of the
  process that starts Ray (`LOCAL_RAY_ENV`, set by `init_ray` and by `monovec cluster up`).
* **Token auth is on by default** and the token file is written with the process umask (0644): we
  create `~/.ray/auth_token` ourselves, owner-only, before any Ray process can (`ensure_token`).
* **The auth mode is cached** by Ray's C++ config when `ray` is imported: setting `RAY_AUTH_MODE`
  afterwards is not seen (`use_token_auth` refreshes it). A client that leaves `RAY_AUTH_MODE` unset
  is switched to token mode by `ray.init(address=...)` itself when a token file exists.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
from pathlib import Path

log = logging.getLogger(__name__)

LOCAL_RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
"""Environment of every process that starts a Ray node bound to 127.0.0.1 (see module docstring)."""


def token_path() -> Path:
    """Where Ray reads the token: `$RAY_AUTH_TOKEN_PATH`, else `~/.ray/auth_token`."""
    return Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")


def ensure_token() -> Path:
    """Create the Ray auth token owner-only (0600) if missing, and make an existing one owner-only.

    Same format as `ray get-auth-token --generate` (64 hex characters, 256 bits); the value is never
    printed or logged. Nothing is written when the token comes from `$RAY_AUTH_TOKEN`.
    """
    path = token_path()
    if os.environ.get("RAY_AUTH_TOKEN"):
        return path
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it meanwhile: use theirs
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
    if path.is_file() and path.stat().st_mode & 0o077:
        log.warning("%s was readable by other users; made it owner-only (0600)", path)
        path.chmod(0o600)
    return path


def use_token_auth() -> None:
    """Make this process send the token (for `JobSubmissionClient`, `ray.init(address=...)`).

    Refreshes Ray's cached config when `ray` was already imported; otherwise the variable alone is
    enough. The same thing Ray does when it switches a client to token mode itself.
    """
    os.environ["RAY_AUTH_MODE"] = "token"
    if "ray._raylet" in sys.modules:
        from ray._raylet import Config

        Config.initialize("")


def local_ray_env() -> None:
    """Put `LOCAL_RAY_ENV` into this process's environment before it starts a local Ray.

    When `ray` is already imported its constant is fixed: it is then set on the module as well (Ray
    reads it at call time in `services.get_node_ip_address`).
    """
    for key, value in LOCAL_RAY_ENV.items():
        os.environ.setdefault(key, value)
    if "ray._private.ray_constants" in sys.modules and os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0":
        import ray._private.ray_constants as constants

        constants.ENABLE_RAY_CLUSTER = False


def init_ray(
    address: str | None = None,
    num_cpus: int | None = None,
    dashboard: bool = False,
    log_to_driver: bool = True,
    logging_level: int = logging.INFO,
) -> bool:
    """Initialise Ray once per process: join `address`/`$RAY_ADDRESS`, else start a private local Ray.

    A local Ray binds every listener to 127.0.0.1, with token auth (token created owner-only first).
    `dashboard=True` starts the local dashboard on 127.0.0.1: Ray Train's PlacementGroupCleaner asks the
    State API (served by the dashboard) whether a run's controller died, and without it the placement
    group of a trial that Tune stops early (ASHA) is never released. `log_to_driver=False` keeps worker
    output in Ray's log files (`ray_log_dir()`) and `logging_level` sets Ray's own driver-side logger, for
    commands whose console must stay readable.

    Returns True when this call started or joined Ray, False when Ray was already initialised.
    """
    address = address or os.environ.get("RAY_ADDRESS")
    if not address:
        local_ray_env()
        ensure_token()
        use_token_auth()  # explicit: no "token auth enabled by default" warning, same behaviour
    import ray

    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=log_to_driver, logging_level=logging_level)
        log.info("joined Ray at %s", address)
    else:
        ray.init(
            num_cpus=num_cpus or os.cpu_count(),
            include_dashboard=dashboard,
            dashboard_host="127.0.0.1",
            # Never Ray's default 8265: that is the documented port of `monovec cluster up`'s head, and a
            # private Ray holding it would receive that head's job submissions and Serve deploys.
            dashboard_port=free_port() if dashboard else None,
            _node_ip_address="127.0.0.1",
            log_to_driver=log_to_driver,
            logging_level=logging_level,
            runtime_env={"worker_process_setup_hook": "monovec.ray_env.pin_ray_address"},
        )
        log.info("started a local Ray with %s CPUs (logs: %s)", num_cpus or os.cpu_count(), ray_log_dir())
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_holder(port: int, host: str = "127.0.0.1") -> str | None:
    """None when `host:port` can be bound; else who holds it ("pid 123: cmdline"), or "unknown"."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
            return None
        except OSError:
            pass
    import psutil

    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                cmd = " ".join(psutil.Process(conn.pid).cmdline())[:160]
                return f"pid {conn.pid}: {cmd}"
    except (psutil.AccessDenied, psutil.NoSuchProcess):
        pass
    return "unknown process"


def pin_ray_address() -> None:
    """Worker set-up hook (`runtime_env["worker_process_setup_hook"]`): point `RAY_ADDRESS` at this
    worker's own cluster.

    Ray code that looks a cluster up by itself (Train's PlacementGroupCleaner asking the State API
    whether a run's controller died) otherwise scans the machine for GCS processes and gives up with
    "Found multiple active Ray instances" whenever another Ray runs on the same machine (a test
    session, a notebook, a `monovec cluster up` head): the placement groups of trials that ASHA stops
    are then never released and later trials wait forever.
    """
    import ray

    os.environ["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address


LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def bind_replica_grpc_to_node_ip() -> None:
    """Call in a Serve deployment's constructor: its replica's inter-deployment gRPC server then
    listens on the node's address instead of every interface, when that address is loopback.

    Why: Ray Serve 2.60 starts that server in every replica, after the user constructor ran
    (`ReplicaBase._on_initialized`), on the hard-coded address `[::]:0` — all interfaces, with no
    option to change it — although handles only ever dial `<replica node_ip>:<port>`
    (`RunningReplicaInfo.node_ip`/`port`). A local head (`monovec cluster up`, `init_ray`) promises
    that every listener is on loopback, so on a loopback node we bind `127.0.0.1:0` instead. On a
    multi-node cluster (a routable node IP) nothing changes. Idempotent; harmless outside a replica
    (only a replica's own start calls the patched function).
    Checked by tests/e2e/test_documented_commands.py (every listener of the head, sampled with psutil).
    """
    import ray
    from ray.serve._private import replica

    if getattr(replica.add_port_to_grpc_server, "_monovec_loopback", False):
        return
    node_ip = ray.util.get_node_ip_address()
    if node_ip not in LOOPBACK_HOSTS:
        return
    original = replica.add_port_to_grpc_server

    def add_port(server, address: str):  # noqa: ANN001, ANN202 (Ray's own untyped signature)
        if address.startswith("[::]:"):
            address = f"{node_ip}:{address.rsplit(':', 1)[1]}"
        return original(server, address)

    add_port._monovec_loopback = True  # type: ignore[attr-defined]
    replica.add_port_to_grpc_server = add_port


def ray_log_dir() -> Path | None:
    """The log folder of the Ray session this process is connected to (None when not connected)."""
    import ray

    if not ray.is_initialized():
        return None
    from ray._private import worker

    node = worker._global_node  # the session's Node: what `ray start` prints as its log folder
    return Path(node.get_logs_dir_path()) if node is not None else None
