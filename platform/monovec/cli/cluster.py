"""`monovec cluster up|status|down` and `monovec submit`."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import typer

from monovec.cli.common import fail

app = typer.Typer(
    help="A local Ray head with token auth (dashboard + job server on 127.0.0.1).", no_args_is_help=True
)


@app.command("up")
def up(
    config: Path = typer.Option(
        None,
        "--config",
        "-c",
        help="head settings YAML (default: cluster/local/head.yaml in the repo root, if present)",
    ),
    num_cpus: int = typer.Option(
        None, "--num-cpus", min=1, help="CPUs the head offers [config: num_cpus, 2]"
    ),
    dashboard_port: int = typer.Option(
        None, "--dashboard-port", help="dashboard / job server port [config: dashboard_port, 8265]"
    ),
    port: int = typer.Option(None, "--port", help="GCS port [config: gcs_port, 6379]"),
    auth: bool = typer.Option(
        None, "--auth/--no-auth", help="token authentication; --no-auth is not recommended [config: auth, on]"
    ),
) -> None:
    """Start a local Ray head bound to 127.0.0.1 with token authentication (defaults from the config file)."""
    from monovec.cluster import LocalHeadConfig, cluster_up
    from monovec.config import ConfigError

    try:
        cfg = LocalHeadConfig.load(
            config, num_cpus=num_cpus, dashboard_port=dashboard_port, gcs_port=port, auth=auth
        )
        info = cluster_up(cfg)
    except (ConfigError, RuntimeError) as exc:
        fail(str(exc))
    typer.echo(f"Ray head up: address {info['address']}, dashboard {info['dashboard_url']}")
    if info["auth"]:
        typer.echo(
            "token auth on: clients need RAY_AUTH_MODE=token and the token in ~/.ray/auth_token (or RAY_AUTH_TOKEN)"
        )
    typer.echo(
        f"submit: RAY_AUTH_MODE=token ray job submit --address {info['dashboard_url']} --working-dir . -- python jobs/build_classifier.py --config jobs/configs/classifier.yaml"
    )


@app.command("status")
def status(as_json: bool = typer.Option(False, "--json")) -> None:
    """Whether the head this project started is running."""
    from monovec.cluster import cluster_status

    info = cluster_status()
    if as_json:
        typer.echo(json.dumps(info, indent=2))
    elif not info.get("running"):
        typer.echo("no monovec Ray head running")
    else:
        typer.echo(
            f"running: {info['address']} dashboard {info['dashboard_url']} ({info['processes']} processes, temp dir {info['temp_dir']})"
        )


@app.command("down")
def down() -> None:
    """Stop the head this project started (and only it)."""
    from monovec.cluster import cluster_down

    n = cluster_down()
    typer.echo(f"stopped {n} Ray processes" if n else "nothing to stop")


def submit(
    job: str = typer.Argument(..., help="job name (jobs/<job>.py) or a path to a .py file"),
    config: Path = typer.Option(..., "--config", "-c", help="the job's YAML config"),
    address: str = typer.Option(
        None, "--address", help="dashboard URL (default: the local head, or RAY_API_SERVER_ADDRESS)"
    ),
    no_follow: bool = typer.Option(False, "--no-follow", help="return after submitting"),
    args: list[str] = typer.Argument(None, help="extra arguments / dotted overrides for the job"),
) -> None:
    """Submit jobs/<job>.py to the cluster, stream its logs, exit with its status."""
    from monovec.cluster import submit_job
    from monovec.paths import state_dir

    path = Path(job) if job.endswith(".py") else Path("jobs") / f"{job}.py"
    if not path.is_file():
        fail(f"no job entrypoint at {path} (run from the project root)")
    if not config.is_file():
        fail(f"config not found: {config}")
    entrypoint = shlex.join(["python", str(path), "--config", str(config), *(args or [])])
    try:
        job_id, final = submit_job(entrypoint, address=address, follow=not no_follow, echo=typer.echo)
    except Exception as exc:  # connection / auth errors from the job client
        fail(f"submission failed: {exc}")
    typer.echo(f"job {job_id}: {final}; results land in {state_dir()} (MLflow: monovec models/registry)")
    if final not in ("SUCCEEDED", "PENDING", "RUNNING"):
        raise typer.Exit(1)
