"""What `make quickstart` runs: a small real build, registered, then a few texts classified as a table."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import Field

from monovec.classify.build import BuildConfig, build_classifier
from monovec.classify.model import ClassifierModel
from monovec.classify.pipeline import ClassifierPipeline
from monovec.config import StrictModel


class QuickstartServeConfig(StrictModel):
    enabled: bool = Field(True, description="deploy the A/B app after the build and drive it")
    port: int = Field(8123, ge=1024, le=65535, description="Serve HTTP port on 127.0.0.1")
    requests: int = Field(300, ge=10, description="real dev texts sent through HTTP, each followed by feedback")
    treatment_overrides: dict[str, float | bool | str] = Field(
        default_factory=lambda: {"heads.emotion.linear.threshold": 0.3},
        description="the treatment is the same model with these thresholds",
    )


class QuickstartConfig(StrictModel):
    build: BuildConfig
    examples: list[str] = Field(min_length=1, description="texts classified and printed at the end")
    serve: QuickstartServeConfig = Field(default_factory=QuickstartServeConfig)


def format_table(texts: list[str], rows: list[dict]) -> str:
    lines = [f"{'text':<34} {'decision':<9} {'stage':<11} {'emotion':<15} {'top harm':<16} reason"]
    for text, r in zip(texts, rows, strict=True):
        short = text if len(text) <= 32 else text[:31] + "…"
        emotion = r["heads"].get("emotion", {"label": "-", "score": 0.0})
        cats = (r.get("safety") or {}).get("categories") or {"-": 0.0}
        top = max(cats, key=lambda c: cats[c])
        emo_cell = f"{emotion['label']} {emotion['score']:.2f}"
        harm_cell = f"{top} {cats[top]:.2f}"
        lines.append(f"{short:<34} {r['decision']:<9} {r['stage']:<11} {emo_cell:<15} {harm_cell:<16} {r['reason'][:70]}")
    return "\n".join(lines)


def run_quickstart(cfg: QuickstartConfig, progress: Callable[[str], None] = print) -> str:
    result = build_classifier(cfg.build, progress=progress)
    pipe = ClassifierPipeline(ClassifierModel.load(result.model_dir))
    rows = pipe.classify_batch(cfg.examples, escalate=False)
    where = f"registered as {result.registered['name']} v{result.registered['version']}" if result.registered else "not registered"
    table = format_table(cfg.examples, rows)
    progress(f"\nmodel {result.model_dir} ({where})\n\n{table}")
    if cfg.serve.enabled:
        progress("\n" + drive_ab_app(str(result.model_dir), cfg, progress))
    return table


def drive_ab_app(model_dir: str, cfg: QuickstartConfig, progress: Callable[[str], None]) -> str:
    """Deploy control vs treatment, send real dev texts over HTTP with their true labels as feedback."""
    import random

    from ray import serve

    from monovec.classify.data import load_examples
    from monovec.serving.client import ServeClient, format_experiment
    from monovec.serving.deploy import import_build_app

    emotion = cfg.build.classifier.heads["emotion"]
    dev = load_examples(emotion.dev or emotion.train, emotion.labels)
    order = random.Random(cfg.build.classifier.seed).sample(range(len(dev)), k=min(cfg.serve.requests, len(dev)))
    args = {
        "experiment": "quickstart",
        "control": {"model": model_dir, "weight": 0.8, "num_cpus": 0.5},
        "treatment": {"model": model_dir, "weight": 0.2, "num_cpus": 0.5, "overrides": cfg.serve.treatment_overrides},
        "guardrails": {"min_samples": 50},
    }
    serve.start(http_options={"host": "127.0.0.1", "port": cfg.serve.port})
    try:
        serve.run(import_build_app()(args), name="classifier", route_prefix="/")
        client = ServeClient(f"http://127.0.0.1:{cfg.serve.port}")
        progress(f"A/B app up at {client.url}; sending {len(order)} requests with feedback")
        for n, i in enumerate(order):
            res = client.classify(dev.texts[i], user_id=f"user-{n % 120}")
            client.feedback(res["request_id"], correct={"emotion": dev.labels[i][0]}, satisfied=res["heads"]["emotion"]["label"] == dev.labels[i][0])
        return format_experiment(client.experiment())
    finally:
        serve.shutdown()
