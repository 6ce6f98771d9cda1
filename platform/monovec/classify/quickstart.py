"""What `make quickstart` runs: two real classifier versions, registered, served as an A/B experiment, decided.

The story a newcomer sees in a few minutes, on real data and real components:
1. a **baseline** build (a small class-balanced sample) and a **candidate** build (more real comments
   with their natural class mix), both registered in MLflow;
2. a few English and Korean texts classified by the candidate;
3. both versions behind the A/B app on Ray Serve (127.0.0.1), real dev texts sent over HTTP with their
   true labels as feedback, then the experiment's own rule (guardrails + the sequential test) decides,
   and a promotion moves the MLflow `champion` alias.
Console output stays short (progress bars, one line per result); every step is in the log file.
"""

from __future__ import annotations

import concurrent.futures as cf
import random
import time
from collections.abc import Callable
from typing import Any

from pydantic import Field

from monovec.classify.build import BuildConfig, BuildResult, build_classifier
from monovec.config import StrictModel, apply_overrides
from monovec.serving.guardrails import GuardrailConfig
from monovec.serving.stats import ExperimentDecisionConfig


class BaselineConfig(StrictModel):
    """The control version: the candidate's build config with a few dotted overrides."""

    description: str = Field(description="what makes it the baseline, shown in the output")
    overrides: list[str] = Field(
        min_length=1,
        description="dotted overrides of `build`, e.g. classifier.heads.emotion.max_per_class=100",
    )


class QuickstartServeConfig(StrictModel):
    """The A/B part: where the app listens, how much traffic, and the experiment's rules."""

    enabled: bool = Field(True, description="deploy both versions as an A/B experiment and drive it")
    port: int = Field(8123, ge=1024, le=65535, description="Serve HTTP port on 127.0.0.1")
    requests: int = Field(
        600, ge=10, description="real dev texts sent over HTTP, each followed by its true label as feedback"
    )
    clients: int = Field(8, ge=1, le=64, description="concurrent HTTP clients")
    treatment_weight: float = Field(
        0.5, gt=0, lt=1, description="share of users on the candidate during the experiment"
    )
    guardrails: GuardrailConfig = Field(default_factory=GuardrailConfig)
    decision: ExperimentDecisionConfig = Field(default_factory=ExperimentDecisionConfig)


class QuickstartConfig(StrictModel):
    """`jobs/configs/quickstart.yaml`."""

    build: BuildConfig = Field(description="the candidate version's build")
    candidate_description: str = Field(
        "the candidate", description="what the candidate is, shown in the output"
    )
    baseline: BaselineConfig
    examples: list[str] = Field(min_length=1, description="texts classified by the candidate and printed")
    serve: QuickstartServeConfig = Field(default_factory=QuickstartServeConfig)

    def baseline_build(self) -> BuildConfig:
        data = self.build.model_dump(mode="json")
        apply_overrides(data, self.baseline.overrides)
        return BuildConfig.model_validate(data)


def fit_cell(text: str, width: int) -> str:
    """`text` cut and padded to `width` terminal columns (Hangul and other wide characters count twice)."""
    from wcwidth import wcswidth, wcwidth

    out, used = [], 0
    for ch in text:
        w = max(wcwidth(ch), 0)
        if used + w > width - (1 if wcswidth(text) > width else 0):
            out.append("…")
            used += 1
            break
        out.append(ch)
        used += w
    return "".join(out) + " " * max(width - used, 0)


def format_examples(texts: list[str], rows: list[dict[str, Any]]) -> str:
    """One line per text, at most 100 columns: text, decision, emotion, the top harm category, stage."""
    lines = [f"  {fit_cell('text', 38)} {'decision':<9} {'emotion':<14} {'top harm':<16} stage"]
    for text, r in zip(texts, rows, strict=True):
        emotion = r.get("heads", {}).get("emotion")
        cats = (r.get("safety") or {}).get("categories") or {}
        top = max(cats, key=lambda c: cats[c]) if cats else None
        emo = f"{emotion['label']} {emotion['score']:.2f}" if emotion else "-"
        harm = f"{top} {cats[top]:.2f}" if top else "-"
        lines.append(f"  {fit_cell(text, 38)} {r['decision']:<9} {emo:<14} {harm:<16} {r['stage']}")
    return "\n".join(lines)


def version_name(result: BuildResult) -> str:
    """`v3` for a registered build, else its folder's version stamp."""
    return f"v{result.registered['version']}" if result.registered else result.version


def build_summary(result: BuildResult) -> str:
    """`emotion accuracy en 0.57 ko 0.52, macro-F1 0.42; harmful F1 0.78` from the dev report."""
    m = result.metrics
    parts = []
    en, ko = m.get("emotion.en.pipeline.accuracy"), m.get("emotion.ko.pipeline.accuracy")
    if en is not None and ko is not None:
        parts.append(
            f"emotion accuracy en {en:.2f} ko {ko:.2f}, macro-F1 {m.get('emotion.all.pipeline.macro_f1', 0):.2f}"
        )
    harm = next((v for k, v in m.items() if k.endswith("harm.f1")), None)
    if harm is not None:
        parts.append(f"harmful F1 {harm:.2f}")
    return "; ".join(parts)


def run_quickstart(cfg: QuickstartConfig, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Build, register, classify, serve, drive and decide. Returns the experiment status and decision."""
    from monovec.classify.service import load_pipeline
    from monovec.progress import StepBar

    results: dict[str, BuildResult] = {}
    for step, (role, bcfg, what) in enumerate(
        [
            ("baseline", cfg.baseline_build(), cfg.baseline.description),
            ("candidate", cfg.build, cfg.candidate_description),
        ],
        start=1,
    ):
        with StepBar(f"[{step}/4] build {role}") as progress:
            results[role] = build_classifier(bcfg, progress=progress)
        echo(
            f"[{step}/4] {role} {version_name(results[role])}: {what}\n      dev: {build_summary(results[role])}"
        )
    registered = [r.registered for r in results.values() if r.registered]
    if registered:
        echo(
            f"      registered in MLflow as {registered[0]['name']} "
            + ", ".join(f"v{r['version']}" for r in registered)
        )
    pipe = load_pipeline(str(results["candidate"].model_dir))
    rows = pipe.classify_batch(cfg.examples, escalate=False)
    echo(
        f"[3/4] {len(cfg.examples)} texts classified by the candidate:\n{format_examples(cfg.examples, rows)}"
    )
    out: dict[str, Any] = {"builds": {k: str(v.model_dir) for k, v in results.items()}, "examples": rows}
    if cfg.serve.enabled:
        out.update(drive_ab_app(cfg, results, echo))
    return out


def _ref(result: BuildResult) -> str:
    if result.registered:
        return f"models:/{result.registered['name']}/{result.registered['version']}"
    return str(result.model_dir)


def drive_ab_app(
    cfg: QuickstartConfig, results: dict[str, BuildResult], echo: Callable[[str], None]
) -> dict[str, Any]:
    """Serve baseline (control) vs candidate (treatment) in-process, send dev texts with feedback, evaluate."""
    from ray import serve

    from monovec.classify.data import load_examples
    from monovec.paths import state_dir
    from monovec.progress import bar
    from monovec.serving.app import build_app
    from monovec.serving.client import ServeClient, format_decision, format_experiment
    from monovec.serving.config import ClassifierAppArgs
    from monovec.serving.deploy import ensure_admin_token

    emotion = cfg.build.classifier.heads["emotion"]
    dev = load_examples(emotion.dev or emotion.train, emotion.labels)
    order = random.Random(cfg.build.classifier.seed).sample(
        range(len(dev)), k=min(cfg.serve.requests, len(dev))
    )
    w = cfg.serve.treatment_weight
    args = ClassifierAppArgs(
        experiment=f"quickstart-{results['candidate'].version}",
        control={"model": _ref(results["baseline"]), "weight": 1 - w, "num_cpus": 0.5},
        treatment={"model": _ref(results["candidate"]), "weight": w, "num_cpus": 0.5},
        guardrails=cfg.serve.guardrails,
        decision=cfg.serve.decision,
        auto_rollback=True,
        state_dir=str(
            state_dir()
        ),  # the replicas keep the experiment (and read the admin token) where this run does
    )
    ensure_admin_token()
    serve.start(http_options={"host": "127.0.0.1", "port": cfg.serve.port})
    try:
        serve.run(build_app(args), name="classifier", route_prefix="/")
        url = f"http://127.0.0.1:{cfg.serve.port}"
        names = {role: version_name(r) for role, r in results.items()}
        echo(
            f"[4/4] A/B test: control = baseline {names['baseline']}, treatment = candidate {names['candidate']} "
            f"({w:.0%} of users)\n      experiment page {url}/ (while this runs)"
        )
        client = ServeClient(url)

        def one(n: int) -> None:
            i = order[n]
            res = client.classify(dev.texts[i], user_id=f"user-{n % 400}")
            truth = dev.labels[i][0]
            client.feedback(
                res["request_id"],
                correct={"emotion": truth},
                satisfied=res["heads"]["emotion"]["label"] == truth,
            )

        t0 = time.perf_counter()
        with (
            bar(total=len(order), desc="      traffic", unit="req") as progress,
            cf.ThreadPoolExecutor(cfg.serve.clients) as pool,
        ):
            for f in cf.as_completed([pool.submit(one, n) for n in range(len(order))]):
                f.result()
                progress.update(1)
        seconds = time.perf_counter() - t0
        decision = client.admin("evaluate")
        status = client.experiment()
        echo(
            f"      {len(order)} dev texts sent with their true labels as feedback in {seconds:.0f}s\n{format_experiment(status)}"
        )
        echo(format_decision(decision, with_reason=decision.get("action") == "continue_experiment"))
        return {"status": status, "decision": decision, "url": url}
    finally:
        serve.delete("classifier")  # the replicas go; Serve itself ends with this process's Ray
