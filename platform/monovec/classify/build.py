"""Build a classifier version: load data -> normalise -> embed once (Ray tasks) -> fit -> evaluate -> save.

Every head is fitted from the same cached embeddings, so adding a head costs one small fit, not
another pass of the encoder. The returned directory is self-contained; `register` puts it in MLflow.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from monovec.classify.config import ClassifierConfig, HeadConfig
from monovec.classify.data import Examples, load_examples
from monovec.classify.evaluate import (
    evaluate_model,
    evaluate_safety,
    headline,
    normalise_examples,
    safety_headline,
)
from monovec.classify.harm import HarmScorer
from monovec.classify.head import Head
from monovec.classify.linear import LinearHead
from monovec.classify.model import ClassifierModel
from monovec.classify.normalize import KoreanNormalizer
from monovec.classify.pipeline import ClassifierPipeline
from monovec.classify.prototypes import PrototypeSet
from monovec.classify.rules import RuleEngine
from monovec.classify.safety import SafetyModel
from monovec.classify.safety_data import load_corpus
from monovec.config import StrictModel
from monovec.embed.cache import embed_texts
from monovec.embed.text import build_encoder, encoder_pin, pin_encoder
from monovec.infra import RayConfig, ScalingConfig, TrackingConfig
from monovec.paths import embedding_cache_dir, state_dir

log = logging.getLogger(__name__)


class BuildConfig(StrictModel):
    """`jobs/build_classifier.py` / `monovec classifier build` configuration."""

    classifier: ClassifierConfig
    out_dir: str | None = Field(
        None,
        description="versions are written under out_dir/<version>; None = <state dir>/models/<classifier name>",
    )
    evaluate: bool = Field(True, description="evaluate every head on its dev sources and store the report")
    reference_sample: int = Field(2000, ge=0, description="training embeddings kept as the drift reference")
    cache_dir: str | None = Field(
        None,
        description="per-text embedding cache (None = ~/.cache/monovec/embeddings, see monovec.paths.cache_dir)",
    )
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    scaling: ScalingConfig = Field(
        default_factory=lambda: ScalingConfig(num_workers=2),
        description="num_workers = Ray actors embedding the corpus in parallel (1 CPU each; 0 or 1 = in the driver)",
    )


@dataclass
class BuildResult:
    model_dir: Path
    version: str
    metrics: dict[str, float]
    report: dict[str, Any]
    registered: dict[str, Any] | None


def fit_head(
    name: str,
    cfg: HeadConfig,
    ex: Examples,
    norms: list[str],
    x: np.ndarray,
    extra: tuple[list[str], np.ndarray, np.ndarray] | None,
    seed: int,
) -> Head:
    """Fit one head (prototypes, linear head, optional harm scorer) on its training embeddings.

    `x` is (len(norms), dim) float32 rows of the normalised texts `norms`; `extra` optional extra harm
    examples (texts, vectors, 0/1 labels). Used by the build and by the Tune classifier target."""
    index = {label: i for i, label in enumerate(cfg.labels)}
    y = ex.primary(index)
    protos = PrototypeSet.fit(x, y, cfg.labels, cfg.prototypes)
    linear = LinearHead.fit(x, y, cfg.labels, cfg.linear, seed=seed, texts=norms)
    harm = None
    if cfg.harm is not None:
        safe = set(cfg.harm.safe_labels)
        harmful = np.array([any(label not in safe for label in ls) for ls in ex.labels])
        texts, xs = list(norms), x
        if extra is not None:
            texts, xs, harmful = (
                texts + extra[0],
                np.concatenate([x, extra[1]]),
                np.concatenate([harmful, extra[2]]),
            )
        harm = HarmScorer.fit(texts, xs, harmful, cfg.harm.lexical, seed=seed)
    return Head(name, cfg, protos, linear, harm)


def fit_safety(
    cfg: ClassifierConfig,
    normalizer: Callable[[str], str],
    embed: Callable[[list[str], str], np.ndarray],
    progress: Callable[[str], None],
) -> tuple[SafetyModel, dict[str, Any]]:
    """Load the safety sources and the example set, embed them (cached), fit the category scorers."""
    assert cfg.safety is not None
    corpus, examples = load_corpus(cfg.safety)
    norms = [normalizer(t) for t in corpus.texts]
    keep = [i for i, n in enumerate(norms) if n]
    if len(keep) < len(norms):
        corpus = _subset_corpus(corpus, keep)
        norms = [norms[i] for i in keep]
    corpus.texts = norms
    per_lang = {lang: corpus.langs.count(lang) for lang in sorted(set(corpus.langs))}
    progress(
        f"[safety] {len(corpus)} training texts {per_lang} ({sum(g < 0 for g in corpus.group)} from the example set {examples.version})"
    )
    x = embed(norms, "safety train")
    t0 = time.perf_counter()
    model, report = SafetyModel.fit(corpus, x, cfg.safety, seed=cfg.seed)
    progress(
        f"[safety] fitted {len(model.categories)} categories + {len(model.proto_names)} subtype prototypes in {time.perf_counter() - t0:.1f}s"
    )
    return model, {"examples": examples.version, "train": len(corpus), "languages": per_lang, "fit": report}


def _subset_corpus(corpus, keep: list[int]):  # noqa: ANN001, ANN202 - SafetyCorpus, internal
    from dataclasses import fields

    from monovec.classify.safety_data import SafetyCorpus

    out = SafetyCorpus(corpus.categories)
    for f in fields(corpus):  # every per-row list
        if f.name != "categories":
            setattr(out, f.name, [getattr(corpus, f.name)[i] for i in keep])
    return out


def build_classifier(config: BuildConfig, progress: Callable[[str], None] = print) -> BuildResult:
    """Build one classifier version: load and normalise the heads' data, embed every text once (on
    `scaling.num_workers` Ray actors when Ray is up; cached per text), fit each head and the safety
    stage, evaluate on the dev sources, save under `out_dir/<version>` and register it in MLflow.

    Returns the model dir, version (UTC timestamp), headline metrics, the evaluation report and the
    registration (None when tracking is off). Raises FileNotFoundError / ValueError for missing or
    malformed data sources (the message names the file)."""
    t_start = time.perf_counter()
    # a fine-tuned encoder reference (alias, path) is pinned to its exact version + weights digest: the saved
    # config and manifest name those, so a moving alias never changes what this build embeds with
    cfg = config.classifier.model_copy(update={"encoder": pin_encoder(config.classifier.encoder)})
    cache = Path(config.cache_dir) if config.cache_dir else embedding_cache_dir()
    normalizer = KoreanNormalizer(cfg.normalize)
    shards = config.scaling.num_workers

    def embed(texts: list[str], what: str = "") -> np.ndarray:
        return embed_texts(texts, cfg.encoder, cache, num_shards=shards, progress=what)

    heads: dict[str, Head] = {}
    counts: dict[str, Any] = {}
    reference: list[np.ndarray] = []
    for name, hcfg in cfg.heads.items():
        ex, norms = normalise_examples(
            normalizer, load_examples(hcfg.train, hcfg.labels, hcfg.max_per_class, cfg.seed)
        )
        if len(ex) == 0:
            raise ValueError(
                f"head {name!r}: no training examples were loaded from {[s.path for s in hcfg.train]}"
            )
        progress(
            f"[{name}] {len(ex)} training texts ({', '.join(f'{k}={ex.langs.count(k)}' for k in sorted(set(ex.langs)))}), {len(ex.errors)} rows skipped"
        )
        t0 = time.perf_counter()
        x = embed(norms, f"{name} train")
        progress(f"[{name}] embedded in {time.perf_counter() - t0:.1f}s (cached: {cache})")
        extra = None
        if hcfg.harm is not None and hcfg.harm.extra_train:
            ex2, n2 = normalise_examples(
                normalizer, load_examples(hcfg.harm.extra_train, ["harmful", "safe"], None, cfg.seed)
            )
            extra = (n2, embed(n2, f"{name} harm extra"), np.array([ls[0] == "harmful" for ls in ex2.labels]))
            progress(f"[{name}] +{len(n2)} extra harm texts")
        t0 = time.perf_counter()
        heads[name] = fit_head(name, hcfg, ex, norms, x, extra, cfg.seed)
        progress(
            f"[{name}] fitted prototypes {heads[name].prototypes.counts()} + linear head in {time.perf_counter() - t0:.1f}s"
        )
        counts[name] = {"train": len(ex), "skipped_rows": len(ex.errors)}
        reference.append(x)
    safety, safety_info = None, None
    if cfg.safety is not None and cfg.safety.enabled:
        safety, safety_info = fit_safety(cfg, normalizer, embed, progress)
    rng = np.random.default_rng(cfg.seed)
    ref = np.concatenate(reference)
    ref = (
        ref[rng.choice(len(ref), size=min(config.reference_sample, len(ref)), replace=False)]
        if config.reference_sample
        else None
    )
    version = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    encoder = build_encoder(cfg.encoder.model_copy(update={"threads": 1}))
    manifest = {
        "version": version,
        "encoder": {"name": encoder.name, "dim": encoder.dim}
        | encoder_pin(config.classifier.encoder, cfg.encoder),
        "normalizer": KoreanNormalizer.VERSION,
        "rules": RuleEngine(cfg.rules).version,
        "data": counts,
    }
    if safety_info is not None:
        manifest["safety"] = safety_info
    model = ClassifierModel(cfg, heads, manifest, ref, safety)
    out = Path(config.out_dir or state_dir() / "models" / cfg.name) / version
    report: dict[str, Any] = {}
    flat: dict[str, float] = {}
    if config.evaluate:
        pipe = ClassifierPipeline(model, encoder=encoder)
        report = evaluate_model(pipe, lambda texts: embed(texts, "dev"), out_dir=out)
        flat = headline(report)
        if safety is not None:
            report["safety"] = evaluate_safety(pipe, lambda texts: embed(texts, "safety dev"))
            flat.update(safety_headline(report["safety"]))
        shown = (
            ".pipeline.macro_f1",
            "harm.f1",
            ".harmful_not_allow.f1",
            ".harmful_block.f1",
            ".hate.recall",
            ".hate.f1",
            "false_positive_rate",
        )
        for key in sorted(k for k in flat if any(s in k for s in shown)):
            progress(f"  {key} = {flat[key]:.4f}")
    model.manifest["metrics"] = flat
    model.manifest["build_seconds"] = round(time.perf_counter() - t_start, 1)
    model.save(out)
    if report:
        import json

        (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    progress(f"saved {out}")
    registered = None
    if config.tracking.enabled:
        from monovec.tracking.mlflow_store import log_and_register

        registered = log_and_register(out, config, flat, config.tracking)
        progress(
            f"registered {registered['name']} version {registered['version']} (run {registered['run_id']}) in {registered['tracking_uri']}"
        )
    return BuildResult(out, version, flat, report, registered)
