"""`monovec serve up|down` and `monovec experiment status|evaluate|promote|rollback`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from monovec.cli.common import EXIT_FAILED, fail

serve_app = typer.Typer(help="Run the classifier A/B app on Ray Serve.", no_args_is_help=True)
experiment_app = typer.Typer(help="Inspect and steer the running A/B experiment.", no_args_is_help=True)


@serve_app.command("up")
def up(
    config: Path = typer.Option(
        Path("serve_apps/classifier.yaml"),
        "--config",
        "-c",
        help="Serve config YAML (what `serve deploy` takes)",
    ),
    address: str = typer.Option(
        None,
        "--address",
        help="dashboard URL [default: $RAY_DASHBOARD_ADDRESS, else the local head, started if none runs]",
    ),
    timeout_s: float = typer.Option(
        300, "--timeout", help="seconds to wait for the app to be RUNNING and healthy"
    ),
) -> None:
    """Deploy the app as `serve deploy` does (starting a local head if none runs); returns once healthy."""
    from monovec.serving.deploy import serve_up

    try:
        info = serve_up(config, address=address, timeout_s=timeout_s, echo=typer.echo)
    except (RuntimeError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    split = ", ".join(f"{arm} {w:.0%}" for arm, w in (info["split"] or {}).items())
    typer.echo(f"classifier app healthy at {info['url']}/v1/classify (split: {split})")
    typer.echo(
        f"experiment page: {info['url']}/  (watch and steer the rollout; promote/rollback ask for the admin token)"
    )


@serve_app.command("down")
def down() -> None:
    """Remove the app, and stop the local Ray if `serve up` started it."""
    from monovec.serving.deploy import serve_down

    typer.echo(serve_down())


def _client(url: str | None):
    from monovec.serving.client import ServeClient

    return ServeClient(url)


@experiment_app.command("status")
def status(
    url: str = typer.Option(
        None, "--url", help="app URL (default $MONOVEC_SERVE_URL or http://127.0.0.1:8000)"
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Split, per-arm metrics, test statistic, guardrails, recommended action."""
    from monovec.serving.client import format_experiment

    try:
        exp = _client(url).experiment()
    except Exception as exc:
        fail(f"could not read the experiment: {exc}")
    typer.echo(json.dumps(exp, indent=2) if as_json else format_experiment(exp))


def _admin(action: str, url: str | None, reason: str | None = None, force: bool = False) -> None:
    try:
        client = _client(url)
        out = client.admin(action) if action == "evaluate" else client.step(action, reason, force)
    except Exception as exc:
        fail(str(exc), EXIT_FAILED)
    typer.echo(json.dumps(out, indent=2))


@experiment_app.command("evaluate")
def evaluate(url: str = typer.Option(None, "--url")) -> None:
    """Apply guardrails and the sequential test now; acts if they say so (admin token)."""
    _admin("evaluate", url)


@experiment_app.command("promote")
def promote(
    url: str = typer.Option(None, "--url"),
    reason: str = typer.Option(None, "--reason", help="logged with the decision"),
    force: bool = typer.Option(False, "--force", help="promote although the treatment breaches a guardrail"),
) -> None:
    """One ramp step from the split in force (at 100% the MLflow champion alias moves); admin token."""
    _admin("promote", url, reason, force)


@experiment_app.command("rollback")
def rollback(
    url: str = typer.Option(None, "--url"),
    reason: str = typer.Option(None, "--reason", help="logged with the decision"),
) -> None:
    """Treatment weight to 0 (MLflow alias unchanged); admin token."""
    _admin("rollback", url, reason)
