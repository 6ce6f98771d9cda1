"""`monovec tune run|show`: the same sweep as `python jobs/tune.py`, and a look at a finished one."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from monovec.cli.common import fail

app = typer.Typer(help="Ray Tune sweeps over config paths (thresholds, loss weights).", no_args_is_help=True)


@app.command("run")
def run(
    space: Path = typer.Option(
        ..., "--space", "-s", help="search space YAML, e.g. tune_spaces/prototype_thresholds.yaml"
    ),
    config: Path = typer.Option(
        None,
        "--config",
        "-c",
        help="TuneJobConfig YAML, e.g. jobs/configs/tune_classifier.yaml (default: built-in defaults)",
    ),
    num_samples: int = typer.Option(
        None, "--num-samples", "-n", min=1, help="trials (the untuned defaults are the first)"
    ),
    out: Path = typer.Option(
        None,
        "--out",
        help="results directory (default .monovec/tune/<name>-<UTC time>); an unfinished sweep there is resumed, a finished one refused",
    ),
    address: str = typer.Option(None, "--address", help="Ray address (default: RAY_ADDRESS or a local Ray)"),
    search: str = typer.Option(None, "--search", help="optuna | random | grid"),
    multi_objective: bool = typer.Option(
        False, "--multi-objective", help="Optuna on [metric:max, budget metric:min]; Pareto CSV/PNG"
    ),
    overrides: list[str] = typer.Argument(
        None, help="dotted overrides of the tune config, e.g. objective.budget=0.1"
    ),
) -> None:
    """Sweep, log every trial to MLflow, write best.yaml / trials.csv / summary.json / plots.

    Rerun with the same options on the --out of a sweep whose driver died to resume it."""
    from monovec.config import ConfigError
    from monovec.entry import start_ray
    from monovec.tuning.config import load_job
    from monovec.tuning.runner import plan_sweep, run_sweep
    from monovec.tuning.space import load_space

    if search is not None and search not in ("optuna", "random", "grid"):
        fail(f"--search must be optuna, random or grid, got {search!r}")
    try:
        sp = load_space(space)
        job = load_job(
            str(config) if config else None,
            list(overrides or []),
            num_samples=num_samples,
            out=str(out) if out else None,
            address=address,
            algorithm=search,
            multi_objective=multi_objective,
        )
        plan = plan_sweep(job, sp, str(space))  # every config error before Ray starts
        start_ray(job.ray, dashboard=True)  # State API: see init_ray
        result = run_sweep(job, sp, str(space), progress=typer.echo, plan=plan)
    except ConfigError as exc:
        fail(str(exc))
    typer.echo(str(result.files["best"]))


@app.command("show")
def show(
    ref: str = typer.Argument(
        ...,
        help="sweep directory, a folder of sweeps (the newest), its best.yaml, or the sweep's MLflow run id",
    ),
) -> None:
    """Print a sweep's best config and headline numbers."""
    from monovec.config import ConfigError
    from monovec.tuning.report import load_best

    try:
        best = load_best(ref)
    except ConfigError as exc:
        fail(str(exc))
    if best.get("_note"):
        typer.echo(best["_note"], err=True)
    summary = Path(best["_path"]).parent / "summary.json"
    if summary.is_file():
        s = json.loads(summary.read_text())
        typer.echo(
            f"{s['trials']} trials in {s['seconds']}s ({s['trials_per_minute']}/min); objective: defaults {s['baseline_objective']:.4f} -> best {s['best_objective']:.4f} (trial {s['best_trial']})"
        )
    typer.echo(f"best.yaml: {best['_path']}")
    for key, value in best["overrides"].items():
        typer.echo(f"  {key} = {value}")
