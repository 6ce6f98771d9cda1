"""`monovec textvib train|evaluate|ablate`: TextVibCLIP continual training on vibration + text."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from monovec.cli.common import EXIT_NOT_FOUND, ConfigOpt, FromTuneOpt, OutOpt, OverridesArg, fail, job_config

app = typer.Typer(
    help="TextVibCLIP: align vibration windows with text descriptions, domain after domain.",
    no_args_is_help=True,
)


def _start_ray_if_needed(cfg) -> None:  # noqa: ANN001
    """Ray Train needs Ray from 1 worker up; 0 workers run the loop in this process without it."""
    if cfg.scaling.num_workers > 0:
        from monovec.entry import start_ray

        start_ray(cfg.ray)


@app.command("train")
def train(
    config: ConfigOpt = None,
    out: OutOpt = None,
    from_tune: FromTuneOpt = None,
    overrides: OverridesArg = None,
) -> None:
    """Continual training through Ray Train (the same code as jobs/train_textvib.py). --config is the
    TextVibConfig YAML, e.g. jobs/configs/textvib_cwru.yaml (with --from-tune: default the sweep's base
    config); --out is the run directory (default <state dir>/textvib/runs/<name>-<time>; an existing one is resumed)."""
    from monovec.textvib.config import TextVibConfig
    from monovec.textvib.train import run_training

    if config is None and from_tune is None:
        fail("--config is required (or --from-tune with a sweep that names its base config)")
    cfg = job_config(TextVibConfig, config, overrides, out, from_tune)
    _start_ray_if_needed(cfg)
    result = run_training(cfg, progress=typer.echo)
    typer.echo(f"run_dir={result.run_dir}")
    typer.echo(f"model_dir={result.model_dir}")


@app.command("evaluate")
def evaluate(
    model: Path = typer.Option(
        ...,
        "--model",
        "-m",
        help="a model folder, a run folder (its model/), or a folder of runs such as the --out of train (the newest is taken)",
    ),
    data: Path = typer.Option(
        ..., "--data", "-d", help="folder in the shared layout: <domain>/<class>.npz (or .mat)"
    ),
    out: Path = typer.Option(None, "--out", "-o", help="write the report JSON here"),
    split: str = typer.Option(
        "test",
        "--split",
        help="test = last part of each recording (held out in training); all = whole recordings",
    ),
    domain: list[str] = typer.Option(
        None, "--domain", help="evaluate only these domain folders (repeatable)"
    ),
) -> None:
    """Per-domain accuracy (nearest text prototype) and average_accuracy of a trained model on a data folder."""
    from monovec.model_dirs import find_model_dir
    from monovec.textvib.evaluate import evaluate_folder

    if split not in ("test", "val", "all"):
        fail(f"--split must be test, val or all, got {split!r}")
    try:
        model_dir, note = find_model_dir(model, "TextVibCLIP model")
        if note:
            typer.echo(note, err=True)
        report = evaluate_folder(model_dir, data, split=split, domains=domain or None)
    except FileNotFoundError as exc:
        fail(str(exc), EXIT_NOT_FOUND)
    except (ValueError, KeyError) as exc:
        fail(str(exc))
    for name, res in report["domains"].items():
        if "accuracy" not in res:
            typer.echo(f"{name:>8}  skipped: {res.get('skipped')}")
            continue
        typer.echo(
            f"{name:>8}  accuracy={res['accuracy']:.4f}  v2t_top1={res['v2t_top1']:.3f}  t2v_top5={res['t2v_top5']:.3f}  n={res['n']}"
        )
    typer.echo(f"average_accuracy={report['average_accuracy']:.4f}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
        typer.echo(f"report: {out}")


@app.command("ablate")
def ablate(
    config: Path = typer.Option(..., "--config", "-c", help="base TextVibConfig YAML (the full method)"),
    out: Path = typer.Option(None, "--out", help="folder for the runs and ablation.csv / ablation.md"),
    variant: list[str] = typer.Option(
        None, "--variant", help="run only these variants (repeatable; default: all)"
    ),
    overrides: list[str] = typer.Argument(None, help="dotted overrides applied to every variant"),
) -> None:
    """The seed's ablation order (proto -> +multi-positive -> +residual -> +bilinear -> +RKD) and naive fine-tuning."""
    from monovec.textvib.ablation import VARIANTS, run_ablation

    unknown = sorted(set(variant or []) - set(VARIANTS))
    if unknown:
        fail(f"unknown variant(s) {unknown}; known: {list(VARIANTS)}")
    from monovec.textvib.config import TextVibConfig

    cfg = job_config(TextVibConfig, config, overrides)
    _start_ray_if_needed(cfg)
    table = run_ablation(cfg, out, variants=variant or None, progress=typer.echo)
    typer.echo(table.markdown)
    typer.echo(f"table: {table.csv_path}")
