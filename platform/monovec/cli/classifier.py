"""`monovec classifier build|predict|evaluate`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from monovec.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_NOT_FOUND,
    ConfigOpt,
    FromTuneOpt,
    OutOpt,
    OverridesArg,
    fail,
    job_config,
    note,
)

app = typer.Typer(help="Build, run and evaluate the unified classifier.", no_args_is_help=True)


@app.command("build")
def build(
    config: ConfigOpt = None,
    out: OutOpt = None,
    from_tune: FromTuneOpt = None,
    overrides: OverridesArg = None,
) -> None:
    """Build a versioned model directory, evaluate it on dev, register it in MLflow (the same code as
    jobs/build_classifier.py). --config is the BuildConfig YAML, e.g. jobs/configs/classifier.yaml
    (with --from-tune: default the sweep's base config); versions are written under --out."""
    from monovec.classify.build import BuildConfig, build_classifier
    from monovec.entry import start_ray

    if config is None and from_tune is None:
        fail("--config is required (or --from-tune with a sweep that names its base config)")
    cfg = job_config(BuildConfig, config, overrides, out, from_tune)
    start_ray(cfg.ray)
    result = build_classifier(cfg, progress=typer.echo)
    typer.echo(str(result.model_dir))


@app.command("predict")
def predict(
    input: Path = typer.Option(..., "--input", "-i", help="JSONL, one object per line"),
    output: Path = typer.Option(..., "--output", "-o", help="JSONL answers, one line per input line"),
    model: str = typer.Option(
        None,
        "--model",
        "-m",
        help="model folder (or a build's --out folder: newest version), models:/name/version or models:/name@alias",
    ),
    text_field: str = typer.Option("text", "--text-field", help="field holding the text"),
    batch_size: int = typer.Option(64, "--batch-size", min=1, max=4096),
    escalate: bool = typer.Option(
        False, "--escalate/--no-escalate", help="send uncertain items to the escalation backend"
    ),
    chroma: bool = typer.Option(
        False, "--chroma", help="store each embedding in Chroma (collection per model version)"
    ),
) -> None:
    """Classify a JSONL file. A bad line gets an error line; the other lines are still classified."""
    from monovec.classify.service import load_pipeline
    from monovec.io import iter_jsonl

    if not input.is_file():
        fail(f"input file not found: {input}", EXIT_NOT_FOUND)
    try:
        pipe = load_pipeline(model, threads=2, note=note)
    except FileNotFoundError as exc:
        fail(str(exc), EXIT_NOT_FOUND)
    except ValueError as exc:
        fail(str(exc), EXIT_BAD_INPUT)
    memory = None
    if chroma:
        from monovec.tracking.chroma_store import VectorMemory

        memory = VectorMemory.for_model(pipe)
    n_ok = n_err = 0
    pending: list[tuple[int, str]] = []
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8") as out:

        def flush() -> None:
            nonlocal n_ok, n_err
            if not pending:
                return
            results = pipe.classify_batch(
                [t for _, t in pending], escalate=escalate, with_embeddings=memory is not None
            )
            if memory is not None:
                memory.add_results([t for _, t in pending], results)
            for (line, _), r in zip(pending, results, strict=True):
                r = {"line": line, **r}
                n_err += "error" in r
                n_ok += "error" not in r
                out.write(json.dumps(r, ensure_ascii=False) + "\n")
            pending.clear()

        for line, rec, err in iter_jsonl(input):
            if err is not None:
                flush()
                out.write(json.dumps(err.as_dict(), ensure_ascii=False) + "\n")
                n_err += 1
                continue
            assert rec is not None
            if text_field not in rec:
                flush()
                out.write(
                    json.dumps(
                        {
                            "line": line,
                            "error": {
                                "code": "missing_field",
                                "message": f"line {line}: no {text_field!r} field",
                            },
                        }
                    )
                    + "\n"
                )
                n_err += 1
                continue
            pending.append((line, rec[text_field]))
            if len(pending) >= batch_size:
                flush()
        flush()
    typer.echo(f"{n_ok} classified, {n_err} errors -> {output}")


@app.command("evaluate")
def evaluate(
    model: str = typer.Option(
        None,
        "--model",
        "-m",
        help="model folder (or a build's --out folder: newest version), models:/name/version or models:/name@alias",
    ),
    data: Path = typer.Option(
        None, "--data", help="labelled JSONL/TSV (default: the dev files in the model's config)"
    ),
    head: str = typer.Option(
        None, "--head", help="which head --data labels (default: every head that has dev data)"
    ),
    text_field: str = typer.Option(
        None, "--text-field", help="with --data: text field (default: the head's dev config)"
    ),
    label_field: str = typer.Option(None, "--label-field", help="with --data: label field"),
    lang: str = typer.Option("xx", "--lang", help="with --text-field: language tag for the report"),
    out: Path = typer.Option(
        Path(".monovec/reports/latest"), "--out", help="report directory (report.json + PNGs)"
    ),
    latency_samples: int = typer.Option(
        200, "--latency-samples", min=0, help="single-text calls timed for p50/p95"
    ),
) -> None:
    """Accuracy and macro-F1 per head and language, coverage, escalation, AURC, latency; JSON + PNG report."""
    from monovec import metrics
    from monovec.classify.data import DataSource, load_examples
    from monovec.classify.evaluate import evaluate_model, headline
    from monovec.classify.service import load_pipeline

    try:
        pipe = load_pipeline(model, threads=2, note=note)
    except FileNotFoundError as exc:
        fail(str(exc), EXIT_NOT_FOUND)
    except ValueError as exc:
        fail(str(exc), EXIT_BAD_INPUT)
    sources = None
    if data is not None:
        if not data.is_file():
            fail(f"data file not found: {data}", EXIT_NOT_FOUND)
        heads = [head] if head else list(pipe.model.heads)
        if head and head not in pipe.model.heads:
            fail(f"unknown head {head!r}; model heads: {list(pipe.model.heads)}")
        if len(heads) != 1:
            fail(f"--data needs --head (one of {heads})")
        base = (pipe.model.heads[heads[0]].config.dev or pipe.model.heads[heads[0]].config.train)[0]
        fields = {text_field: lang} if text_field else base.text_fields
        sources = {
            heads[0]: [
                DataSource(
                    path=str(data.resolve()),
                    text_fields=fields,
                    label_field=label_field or base.label_field,
                    label_map=base.label_map,
                    single_label_only=base.single_label_only,
                )
            ]
        }
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    report = evaluate_model(pipe, pipe.encoder.encode, out_dir=out, sources=sources)
    if not report:
        fail("nothing to evaluate: no --data and no dev sources in the model config")
    if latency_samples:
        h = next(iter(report))
        srcs = (sources or {}).get(h) or pipe.model.heads[h].config.dev
        texts = load_examples(srcs, pipe.model.heads[h].labels).texts[:latency_samples]
        lat = []
        for t in texts:
            s = time.perf_counter()
            pipe.classify_batch([t], escalate=False)
            lat.append((time.perf_counter() - s) * 1000)
        report["latency_ms"] = metrics.latency_summary(lat)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    flat = headline({k: v for k, v in report.items() if isinstance(v, dict) and "coverage" in v})
    for key in sorted(flat):
        if any(
            s in key
            for s in (
                ".pipeline.macro_f1",
                ".prototype_only.macro_f1",
                ".linear_only.macro_f1",
                "coverage",
                "escalation_rate",
                "aurc",
                "harm.f1",
            )
        ):
            typer.echo(f"{key:<45} {flat[key]:.4f}")
    if "latency_ms" in report:
        typer.echo(
            f"latency p50={report['latency_ms']['p50']:.2f} ms p95={report['latency_ms']['p95']:.2f} ms"
        )
    typer.echo(f"report: {out / 'report.json'}")
