"""``monovec taste``: simulate users end to end, run the update job, recommend lots to a user."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from monovec.cli.common import OutOpt, OverridesArg, fail, job_config

app = typer.Typer(
    help="Taste2Vec: coffee taste embeddings learned online from feedback.", no_args_is_help=True
)

TasteConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Taste2VecJobConfig YAML [default: jobs/configs/taste2vec.yaml]"),
]


def _config(path: Path | None, overrides: list[str] | None, out: Path | None = None):  # noqa: ANN202 - imports stay lazy
    from monovec.paths import REPO_ROOT
    from monovec.taste.config import Taste2VecJobConfig

    default = REPO_ROOT / "jobs" / "configs" / "taste2vec.yaml"
    return job_config(
        Taste2VecJobConfig, path, overrides, out, default_config=default if default.is_file() else None
    )


@app.command("simulate")
def simulate(
    users: Annotated[int, typer.Option("--users", min=2, help="simulated users")] = 300,
    events: Annotated[int, typer.Option("--events", min=10, help="feedback events")] = 20000,
    seed: Annotated[int, typer.Option("--seed", help="seed of the simulation")] = 0,
    out: Annotated[
        Path | None, typer.Option("--out", help="output folder [default: $MONOVEC_HOME/taste-sim]")
    ] = None,
    malformed_rate: Annotated[
        float, typer.Option("--malformed-rate", min=0.0, max=0.5, help="share of broken events")
    ] = 0.0,
    write_events: Annotated[
        bool, typer.Option("--write-events", help="also write OUT/events/*.jsonl for the update job")
    ] = False,
    config: TasteConfigOpt = None,
    overrides: OverridesArg = None,
) -> None:
    """Simulated users -> events -> prequential online learning vs a frozen model and popularity.

    Writes OUT/summary.json (final_auc, frozen_auc, hit_rate_at_10, popularity_hit_rate_at_10, ...),
    OUT/curves.json, OUT/prequential.png and OUT/dead_letter.jsonl."""
    from monovec.paths import state_dir
    from monovec.taste.experiment import run_simulation
    from monovec.taste.simulate import SimConfig

    job = _config(config, overrides)
    sim = SimConfig(users=users, events=events, seed=seed, malformed_rate=malformed_rate)
    out_dir = out or state_dir() / "taste-sim"
    summary = run_simulation(
        sim, job, out_dir, write_events=write_events, progress=lambda m: typer.echo(m, err=True)
    )
    typer.echo(
        f"final prequential AUC {summary['final_auc']:.3f} (frozen {summary['frozen_auc']:.3f}, popularity "
        f"{summary['popularity_auc']:.3f}, oracle {summary['oracle_auc']:.3f}); hit@10 {summary['hit_rate_at_10']:.3f} "
        f"(popularity {summary['popularity_hit_rate_at_10']:.3f}); {summary['seconds']:.0f} s"
    )
    typer.echo(f"wrote {Path(out_dir) / 'summary.json'} and {Path(out_dir) / 'prequential.png'}")


@app.command("update")
def update(
    events: Annotated[Path, typer.Option("--events", help="a JSONL file or a folder of *.jsonl")],
    out: OutOpt = None,
    config: TasteConfigOpt = None,
    overrides: OverridesArg = None,
) -> None:
    """Learn new events (the body of jobs/update_taste2vec.py, on a local or $RAY_ADDRESS Ray)."""
    from monovec.entry import start_ray
    from monovec.taste.update import run_update

    job = _config(config, overrides, out)
    if not events.exists():
        fail(f"events not found: {events}")
    start_ray(job.ray)
    typer.echo(json.dumps(run_update(job, events), indent=2, default=str))


@app.command("recommend")
def recommend(
    user: Annotated[str, typer.Option("--user", "-u", help="user id as in the events")],
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="how many lots")] = 10,
    hour: Annotated[int | None, typer.Option("--hour", min=0, max=23, help="context: hour of day")] = None,
    weekday: Annotated[
        int | None, typer.Option("--weekday", min=0, max=6, help="context: 0 = Monday")
    ] = None,
    weather: Annotated[
        str | None, typer.Option("--weather", help="context: sunny | cloudy | rainy | snowy")
    ] = None,
    temp_c: Annotated[float | None, typer.Option("--temp", help="context: temperature in C")] = None,
    mood: Annotated[float | None, typer.Option("--mood", min=1, max=10, help="context: mood 1-10")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    config: TasteConfigOpt = None,
    overrides: OverridesArg = None,
) -> None:
    """Nearest lots (Chroma) to the user's taste vector in the given context."""
    from monovec.taste.recommend import recommend as run

    if weather is not None and weather not in ("sunny", "cloudy", "rainy", "snowy"):
        fail(f"--weather must be sunny, cloudy, rainy or snowy, not {weather!r}")
    job = _config(config, overrides)
    context = {"hour": hour, "weekday": weekday, "weather": weather, "temp_c": temp_c, "mood": mood}
    try:
        result = run(job, user, k, context)
    except FileNotFoundError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    who = "" if result["known_user"] else " (unknown user: population taste)"
    typer.echo(f"top {k} for {user}{who}, model after {result['events_learned']} events:")
    for rank, item in enumerate(result["items"], 1):
        typer.echo(
            f"{rank:>3}. {item['item_id']:<14} {item['score']:6.2f}  {item['country']}, {item['process']}, "
            f"{item['variety']} - {item['notes']}"
        )
