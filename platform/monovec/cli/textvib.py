"""`monovec textvib train|evaluate|ablate`: TextVibCLIP continual training on vibration + text."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from monovec.cli.common import EXIT_NOT_FOUND, fail

app = typer.Typer(help="TextVibCLIP: align vibration windows with text descriptions, domain after domain.", no_args_is_help=True)


def _config(config: Path, overrides: list[str] | None, out: Path | None, key: str = "out_dir"):  # noqa: ANN202
    from monovec.config import ConfigError, load_config
    from monovec.textvib.config import TextVibConfig

    items = list(overrides or []) + ([f"{key}={out}"] if out is not None else [])
    try:
        return load_config(TextVibConfig, config, items)
    except ConfigError as exc:
        fail(str(exc))


@app.command("train")
def train(
    config: Path = typer.Option(..., "--config", "-c", help="TextVibConfig YAML, e.g. jobs/configs/textvib_cwru.yaml"),
    out: Path = typer.Option(None, "--out", help="run directory (default: <state dir>/textvib/runs/<name>-<time>)"),
    overrides: list[str] = typer.Argument(None, help="dotted overrides, e.g. model.prototypes.tau=0.05"),
) -> None:
    """Continual training through Ray Train (the same code as jobs/train_textvib.py)."""
    from monovec.textvib.train import run_training

    result = run_training(_config(config, overrides, out), progress=typer.echo)
    typer.echo(f"run_dir={result.run_dir}")
    typer.echo(f"model_dir={result.model_dir}")


@app.command("evaluate")
def evaluate(
    model: Path = typer.Option(..., "--model", "-m", help="a model folder, a run folder (its model/), or a folder of runs such as the --out of train (the newest is taken)"),
    data: Path = typer.Option(..., "--data", "-d", help="folder in the shared layout: <domain>/<class>.npz (or .mat)"),
    out: Path = typer.Option(None, "--out", "-o", help="write the report JSON here"),
    split: str = typer.Option("test", "--split", help="test = last part of each recording (held out in training); all = whole recordings"),
    domain: list[str] = typer.Option(None, "--domain", help="evaluate only these domain folders (repeatable)"),
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
        typer.echo(f"{name:>8}  accuracy={res['accuracy']:.4f}  v2t_top1={res['v2t_top1']:.3f}  t2v_top5={res['t2v_top5']:.3f}  n={res['n']}")
    typer.echo(f"average_accuracy={report['average_accuracy']:.4f}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
        typer.echo(f"report: {out}")


@app.command("ablate")
def ablate(
    config: Path = typer.Option(..., "--config", "-c", help="base TextVibConfig YAML (the full method)"),
    out: Path = typer.Option(None, "--out", help="folder for the runs and ablation.csv / ablation.md"),
    variant: list[str] = typer.Option(None, "--variant", help="run only these variants (repeatable; default: all)"),
    overrides: list[str] = typer.Argument(None, help="dotted overrides applied to every variant"),
) -> None:
    """The seed's ablation order (proto -> +multi-positive -> +residual -> +bilinear -> +RKD) and naive fine-tuning."""
    from monovec.textvib.ablation import VARIANTS, run_ablation

    unknown = sorted(set(variant or []) - set(VARIANTS))
    if unknown:
        fail(f"unknown variant(s) {unknown}; known: {list(VARIANTS)}")
    table = run_ablation(_config(config, overrides, None), out, variants=variant or None, progress=typer.echo)
    typer.echo(table.markdown)
    typer.echo(f"table: {table.csv_path}")
