"""What `make quickstart` runs: a small real build, registered, then a few texts classified as a table."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import Field

from monovec.classify.build import BuildConfig, build_classifier
from monovec.classify.model import ClassifierModel
from monovec.classify.pipeline import ClassifierPipeline
from monovec.config import StrictModel


class QuickstartConfig(StrictModel):
    build: BuildConfig
    examples: list[str] = Field(min_length=1, description="texts classified and printed at the end")


def format_table(texts: list[str], rows: list[dict]) -> str:
    lines = [f"{'text':<34} {'decision':<9} {'stage':<11} {'emotion':<15} {'ethics':<15} reason"]
    for text, r in zip(texts, rows, strict=True):
        short = text if len(text) <= 32 else text[:31] + "…"
        cells = [f"{h['label']} {h['score']:.2f}" for h in (r["heads"].get("emotion", {"label": "-", "score": 0}), r["heads"].get("ethics", {"label": "-", "score": 0}))]
        lines.append(f"{short:<34} {r['decision']:<9} {r['stage']:<11} {cells[0]:<15} {cells[1]:<15} {r['reason'][:70]}")
    return "\n".join(lines)


def run_quickstart(cfg: QuickstartConfig, progress: Callable[[str], None] = print) -> str:
    result = build_classifier(cfg.build, progress=progress)
    pipe = ClassifierPipeline(ClassifierModel.load(result.model_dir))
    rows = pipe.classify_batch(cfg.examples, escalate=False)
    where = f"registered as {result.registered['name']} v{result.registered['version']}" if result.registered else "not registered"
    table = format_table(cfg.examples, rows)
    progress(f"\nmodel {result.model_dir} ({where})\n\n{table}")
    return table
