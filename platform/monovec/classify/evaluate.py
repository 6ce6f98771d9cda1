"""Evaluate a classifier on labelled files: every head, every language, every stage.

Reports what the seed's trade-off table asks for, measured: the full pipeline next to
prototype-only and linear-head-only answers, coverage (share of items a head resolved without
escalation), escalation rate, risk-coverage/AURC, and the derived harmful/not-harmful F1.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from monovec import metrics
from monovec.classify.data import Examples, load_examples
from monovec.classify.pipeline import ClassifierPipeline


def normalise_examples(normalizer: Callable[[str], str], ex: Examples) -> tuple[Examples, list[str]]:
    """Drop examples that normalise to nothing (they could never be classified) and return norms."""
    norms = [normalizer(t) for t in ex.texts]
    keep = [i for i, n in enumerate(norms) if n]
    return ex.subset(keep), [norms[i] for i in keep]


def evaluate_head(
    pipe: ClassifierPipeline, head_name: str, ex: Examples, norms: list[str], x: np.ndarray
) -> dict[str, Any]:
    """Metrics for one head on examples whose embeddings are `x` (primary label = first label)."""
    head = pipe.model.heads[head_name]
    labels = head.labels
    outs = head.predict(x, norms)
    results = pipe.decide(x, norms, escalate=False)
    y_true = [ls[0] for ls in ex.labels]
    langs = np.array(ex.langs)
    variants = {
        "pipeline": [o.label for o in outs],
        "prototype_only": [o.proto_label for o in outs],
        "linear_only": [o.linear_label for o in outs],
    }
    report: dict[str, Any] = {"n": len(y_true), "labels": labels}
    for lang in ["all", *sorted(set(ex.langs))]:
        mask = np.ones(len(y_true), bool) if lang == "all" else langs == lang
        yt = [y for y, m in zip(y_true, mask, strict=True) if m]
        block = {}
        for name, pred in variants.items():
            yp = [p for p, m in zip(pred, mask, strict=True) if m]
            block[name] = {
                "macro_f1": metrics.macro_f1(yt, yp, labels),
                "accuracy": float(np.mean(np.array(yt) == np.array(yp))) if yt else 0.0,
            }
        report[lang] = block
    resolved = np.array([o.resolved for o in outs])
    correct = np.array([o.label == y for o, y in zip(outs, y_true, strict=True)])
    conf = np.array([o.confidence for o in outs])
    rc = metrics.risk_coverage(conf, correct)
    report["coverage"] = float(resolved.mean())
    report["status_mix"] = {
        s: float(np.mean([o.status == s for o in outs]))
        for s in ("confident", "ambiguous", "low_confidence", "unknown")
    }
    report["selective"] = metrics.selective_metrics(y_true, variants["pipeline"], resolved, labels)
    report["aurc"] = rc["aurc"]
    report["risk_coverage"] = rc
    report["escalation_rate"] = float(np.mean([r["decision"] == "escalate" for r in results]))
    report["decision_mix"] = {
        d: float(np.mean([r["decision"] == d for r in results])) for d in ("allow", "block", "escalate")
    }
    report["confusion"] = metrics.confusion_matrix(y_true, variants["pipeline"], labels).tolist()
    if head.harm is not None and head.config.harm is not None:
        safe = set(head.config.harm.safe_labels)
        truth = [any(label not in safe for label in ls) for ls in ex.labels]
        blocked = [r["decision"] == "block" for r in results]
        at_half = [(o.harm_score or 0.0) >= 0.5 for o in outs]
        report["harm"] = {
            "decision_block": metrics.binary_f1(truth, blocked),
            "p_at_0.5": metrics.binary_f1(truth, at_half),
        }
    return report


def evaluate_model(
    pipe: ClassifierPipeline,
    embed: Callable[[list[str]], np.ndarray],
    out_dir: str | Path | None = None,
    sources: dict[str, list] | None = None,
) -> dict[str, Any]:
    """Evaluate every head that has dev sources (or `sources[head]`), writing plots under out_dir."""
    report: dict[str, Any] = {}
    curves = {}
    for name, head in pipe.model.heads.items():
        srcs = (sources or {}).get(name, head.config.dev)
        if not srcs:
            continue
        ex, norms = normalise_examples(pipe.normalizer, load_examples(srcs, head.labels))
        if len(ex) == 0:
            continue
        x = embed(norms)
        report[name] = evaluate_head(pipe, name, ex, norms, x)
        curves[name] = report[name]["risk_coverage"]
        if out_dir is not None:
            from monovec import plots

            cm = np.array(report[name]["confusion"])
            plots.plot_confusion_matrix(
                cm,
                head.labels,
                metrics.confusion_matrix_columns(head.labels),
                Path(out_dir) / f"confusion_{name}.png",
                title=f"{name} (dev)",
            )
    if out_dir is not None and curves:
        from monovec import plots

        plots.plot_risk_coverage(curves, Path(out_dir) / "risk_coverage.png", title="risk-coverage (dev)")
    return report


def headline(report: dict[str, Any]) -> dict[str, float]:
    """Flat metrics for MLflow and summaries: head.lang.variant.metric."""
    flat: dict[str, float] = {}
    for head, r in report.items():
        for lang in [k for k in r if k == "all" or (isinstance(r[k], dict) and "pipeline" in r[k])]:
            for variant, m in r[lang].items():
                for key, value in m.items():
                    flat[f"{head}.{lang}.{variant}.{key}"] = float(value)
        for key in ("coverage", "aurc", "escalation_rate"):
            flat[f"{head}.{key}"] = float(r[key])
        if "harm" in r:
            flat[f"{head}.harm.f1"] = float(r["harm"]["decision_block"]["f1"])
            flat[f"{head}.harm.f1_at_0.5"] = float(r["harm"]["p_at_0.5"]["f1"])
    return flat


def _source_name(path: str) -> str:
    stem = path.split(":", 1)[-1].strip("/")
    return stem.rsplit(".", 1)[0].replace("/", "_")


def _prf(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.binary_f1(truth.tolist(), pred.tolist()).items()}


def evaluate_safety(
    pipe: ClassifierPipeline, embed: Callable[[list[str]], np.ndarray], sources: list | None = None
) -> dict[str, Any]:
    """The safety stage on labelled dev files, through the pipeline's own decision (segments included).

    Per source and language: harmful-vs-not F1 of `decision != allow` and of `decision == block`,
    per category precision/recall/F1 of `score >= threshold`, and the decision mix.
    """
    from monovec.classify.safety_data import SafetyCorpus, add_source

    cfg = pipe.model.config.safety
    if cfg is None or pipe.safety is None:
        return {}
    report: dict[str, Any] = {}
    for k, src in enumerate(sources if sources is not None else cfg.dev):
        corpus = SafetyCorpus(cfg.names)
        add_source(corpus, src, k)
        norms = [pipe.normalizer(t) for t in corpus.texts]
        keep = [i for i, n in enumerate(norms) if n]
        if not keep:
            continue
        norms = [norms[i] for i in keep]
        y, known, _, _ = corpus.arrays()
        y, known, langs = y[keep], known[keep], np.array([corpus.langs[i] for i in keep])
        segments = pipe.segments(norms)
        flat = [s for segs in segments for s in segs]
        x = embed(norms)
        seg_x = pipe._split_rows(embed(flat) if flat else np.zeros((0, x.shape[1]), np.float32), segments)
        results = pipe.decide(x, norms, escalate=False, raw_x=x, segments=segments, segment_x=seg_x)
        decision = np.array([r["decision"] for r in results])
        scores = np.array([[r["safety"]["categories"][c] for c in cfg.names] for r in results])
        applicable = known.any(axis=0)
        harmful = (y & known).any(axis=1)
        block: dict[str, Any] = {"n": len(norms)}
        for lang in ["all", *sorted(set(langs))]:
            m = np.ones(len(norms), bool) if lang == "all" else langs == lang
            entry: dict[str, Any] = {
                "n": int(m.sum()),
                "harmful_rate": float(harmful[m].mean()),
                "decision_mix": {d: float((decision[m] == d).mean()) for d in ("allow", "block", "escalate")},
            }
            if harmful[m].any():
                entry["harmful_not_allow"] = _prf(decision[m] != "allow", harmful[m])
                entry["harmful_block"] = _prf(decision[m] == "block", harmful[m])
                entry["harmful_any_category"] = _prf(
                    (scores[m] >= [cfg.categories[c].threshold for c in cfg.names]).any(axis=1), harmful[m]
                )
            for j, c in enumerate(cfg.names):
                if applicable[j] and y[m, j].any():
                    entry[c] = _prf(scores[m, j] >= cfg.categories[c].threshold, y[m, j])
                elif applicable[j]:
                    entry[c] = {
                        "false_positive_rate": float((scores[m, j] >= cfg.categories[c].threshold).mean())
                    }
            block[lang] = entry
        report[_source_name(src.path)] = block
    return report


def safety_headline(report: dict[str, Any]) -> dict[str, float]:
    """Flat safety metrics: safety.<source>.<lang>.<what>.<metric>."""
    flat: dict[str, float] = {}
    for src, r in report.items():
        for lang, entry in r.items():
            if not isinstance(entry, dict):
                continue
            for what, m in entry.items():
                if isinstance(m, dict):
                    for key, value in m.items():
                        flat[f"safety.{src}.{lang}.{what}.{key}"] = float(value)
    return flat
