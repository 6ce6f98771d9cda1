"""The `monovec` root command and its sub-apps."""

from __future__ import annotations

import json

import typer

from monovec.cli.classifier import app as classifier_app
from monovec.cli.cluster import app as cluster_app
from monovec.cli.cluster import submit
from monovec.cli.common import EXIT_BAD_INPUT, EXIT_NOT_FOUND, fail, note
from monovec.cli.review import app as review_app
from monovec.cli.serve import experiment_app, serve_app
from monovec.cli.taste import app as taste_app
from monovec.cli.textvib import app as textvib_app
from monovec.cli.tune import app as tune_app

app = typer.Typer(
    help="monovec: train, tune and serve embedding models on Ray.", no_args_is_help=True, add_completion=False
)
app.add_typer(classifier_app, name="classifier")
app.add_typer(review_app, name="review")
app.add_typer(cluster_app, name="cluster")
app.command("submit")(submit)
app.add_typer(serve_app, name="serve")
app.add_typer(experiment_app, name="experiment")
app.add_typer(taste_app, name="taste")
app.add_typer(textvib_app, name="textvib")
app.add_typer(tune_app, name="tune")


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="debug logging")) -> None:
    from monovec.entry import setup_logging

    setup_logging(verbose)  # the same levels and format as the job scripts


@app.command("classify")
def classify(
    text: str = typer.Argument(..., help="the text to classify"),
    model: str = typer.Option(
        None,
        "--model",
        "-m",
        help="model folder (or a build's --out folder: newest version), models:/name/version or models:/name@alias [default: newest local build]",
    ),
    session: str = typer.Option(
        None, "--session", help="session id (context from earlier texts of the session)"
    ),
    as_json: bool = typer.Option(
        False, "--json", help='print the full JSON answer (errors too, as {"error": {"code", "message"}})'
    ),
    no_escalate: bool = typer.Option(
        False, "--no-escalate", help="do not send uncertain items to the review queue"
    ),
) -> None:
    """Classify one text and print the decision. Exit codes: 0 ok, 2 bad text, 3 model not found."""
    import time

    from monovec.classify.pipeline import InputError
    from monovec.classify.service import load_pipeline

    t0 = time.perf_counter()
    try:
        pipe = load_pipeline(model, threads=2, note=note)
    except FileNotFoundError as exc:
        fail(str(exc), EXIT_NOT_FOUND, error_code="model_not_found", as_json=as_json)
    except ValueError as exc:
        fail(str(exc), EXIT_BAD_INPUT, error_code="invalid_model", as_json=as_json)
    load_ms = (time.perf_counter() - t0) * 1000
    try:
        result = pipe.classify(text, session_id=session, escalate=not no_escalate)
    except InputError as exc:
        fail(str(exc), EXIT_BAD_INPUT, error_code=exc.code, as_json=as_json)
    if as_json:
        typer.echo(json.dumps({**result, "load_ms": round(load_ms, 1)}, ensure_ascii=False, indent=2))
        return
    typer.echo(
        f"decision: {result['decision']}  (stage: {result['stage']}, model {result['model_version']}, {result['latency_ms']:.1f} ms; model loaded in {load_ms / 1000:.1f} s)"
    )
    typer.echo(f"reason:   {result['reason']}")
    for name, head in result["heads"].items():
        extra = f"  labels={head['labels']}" if len(head["labels"]) > 1 else ""
        harm = f"  P(harmful)={head['harm_score']:.2f}" if "harm_score" in head else ""
        typer.echo(
            f"{name:>9}: {head['label']:<10} score={head['score']:.2f} status={head['status']} via {head['source']}{harm}{extra}"
        )
    safety = result.get("safety")
    if safety:
        cats = "  ".join(f"{k}={v:.2f}" for k, v in safety["categories"].items())
        typer.echo(f"   safety: {safety['decision']}  {cats}")
