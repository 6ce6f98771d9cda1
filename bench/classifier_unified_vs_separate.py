"""Unified pipeline vs the seed's "before": three separate models, three passes per text.

    python bench/classifier_unified_vs_separate.py [--model DIR|models:/…] [--n 300]

Unified: normalise -> rules -> ONE USE-m3 pass -> emotion + ethics heads (the vector is also what
memory stores). Separate (seed's "before"): a memory embedder (all-MiniLM-L6-v2, 384-d, the seed's
ChromaDB model), an emotion model (its own USE-m3 encoder + the emotion head) and an ethics model
(its own USE-m3 encoder + the ethics head); each text goes through all three.

Each arm runs in its own child process so peak RSS is clean. Both children import the same
libraries first; "model memory" is peak RSS minus RSS after those imports. Latency: single-text
calls (p50/p95) and batched throughput (batch 32), on the same real dev texts (English + Korean).
Threads: 1 BLAS/torch thread per arm, so the comparison is per core.

A third arm, `unified_no_safety`, runs the same model with the safety stage removed (what the
pipeline did before the harm taxonomy: rules, then the heads): the safety stage's cost (sentence
segments in the same encoder batch, the category scorers, the policy) is `p50 ratio` against it,
target <= 1.5x.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from benchlib import dev_texts, rss_mb

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")


def child(arm: str, model_ref: str, n: int) -> dict:
    import numpy as np
    import torch  # noqa: F401  - both arms pay the same import cost
    import transformers  # noqa: F401

    from monovec.classify.model import ClassifierModel
    from monovec.classify.pipeline import ClassifierPipeline
    from monovec.embed.text import EncoderConfig, build_encoder

    torch.set_num_threads(1)
    texts = dev_texts(n)
    base = rss_mb()
    model = ClassifierModel.load(model_ref)
    cfg = EncoderConfig(name="use-m3", threads=1)
    if arm == "unified_no_safety":
        bare = model.config.model_copy(update={"safety": None})
        model = ClassifierModel(bare, model.heads, model.manifest, model.reference, None)
    if arm in ("unified", "unified_no_safety"):
        pipe = ClassifierPipeline(model, encoder=build_encoder(cfg))

        def run(batch: list[str]) -> None:
            pipe.classify_batch(batch, escalate=False)
    else:
        memory_enc = build_encoder(EncoderConfig(name="minilm", threads=1))
        emotion_pipe = ClassifierPipeline(model, encoder=build_encoder(cfg))
        ethics_pipe = ClassifierPipeline(model, encoder=build_encoder(cfg))
        emotion, ethics = model.heads["emotion"], model.heads["ethics"]

        def run(batch: list[str]) -> None:
            norms = [emotion_pipe.validate(t) for t in batch]
            memory_enc.encode(norms)  # model 1: memory embedding
            emotion.predict(emotion_pipe.encoder.encode(norms), norms)  # model 2: emotion
            x = ethics_pipe.encoder.encode(norms)  # model 3: ethics
            ethics.predict(x, norms)
            for t in norms:
                ethics_pipe.rules.check(t)

    run(texts[:8])  # warm-up: lazy weights, tokenizers
    lat = []
    for t in texts:
        s = time.perf_counter()
        run([t])
        lat.append((time.perf_counter() - s) * 1000)
    s = time.perf_counter()
    for i in range(0, len(texts), 32):
        run(texts[i : i + 32])
    batch_s = time.perf_counter() - s
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "arm": arm,
        "p50_ms": float(np.percentile(lat, 50)),
        "p95_ms": float(np.percentile(lat, 95)),
        "throughput_per_s": len(texts) / batch_s,
        "rss_after_imports_mb": base,
        "peak_rss_mb": peak,
        "model_memory_mb": peak - base,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="model dir or models:/… (default: newest local build)")
    parser.add_argument("--n", type=int, default=300, help="texts (half English, half Korean)")
    parser.add_argument(
        "--child", choices=["unified", "unified_no_safety", "separate"], help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.model, args.n)))
        return 0
    from monovec.classify.service import resolve_model_ref

    try:
        model_dir = str(resolve_model_ref(args.model))
    except FileNotFoundError as exc:
        print(f"error: {exc}\n(run `make quickstart` first)", file=sys.stderr)
        return 2
    results = {}
    for arm in ("unified", "unified_no_safety", "separate"):
        out = subprocess.run(
            [sys.executable, __file__, "--child", arm, "--model", model_dir, "--n", str(args.n)],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
            return 1
        results[arm] = json.loads(out.stdout.strip().splitlines()[-1])
    u, s, b = results["unified"], results["separate"], results["unified_no_safety"]
    print(f"model: {model_dir}   texts: {args.n} (English + Korean GoEmotions dev)")
    print(
        f"{'arm':<18} {'p50 ms':>8} {'p95 ms':>8} {'texts/s (b32)':>14} {'peak RSS MB':>12} {'model MB':>9}"
    )
    for r in (u, b, s):
        print(
            f"{r['arm']:<18} {r['p50_ms']:>8.2f} {r['p95_ms']:>8.2f} {r['throughput_per_s']:>14.0f} {r['peak_rss_mb']:>12.0f} {r['model_memory_mb']:>9.0f}"
        )
    ratios = {
        "speedup_p50": s["p50_ms"] / u["p50_ms"],
        "speedup_throughput": u["throughput_per_s"] / s["throughput_per_s"],
        "memory_ratio_model": s["model_memory_mb"] / max(u["model_memory_mb"], 1e-9),
        "memory_ratio_peak_rss": s["peak_rss_mb"] / u["peak_rss_mb"],
        "safety_stage_p50_ratio": u["p50_ms"] / b["p50_ms"],
    }
    for k, v in ratios.items():
        print(f"{k:<24} {v:5.2f}x")
    print(
        f"target: >= 2.5x faster (p50: {'PASS' if ratios['speedup_p50'] >= 2.5 else 'FAIL'}), >= 2x less memory (model: {'PASS' if ratios['memory_ratio_model'] >= 2 else 'FAIL'}), "
        f"safety stage <= 1.5x p50 ({'PASS' if ratios['safety_stage_p50_ratio'] <= 1.5 else 'FAIL'})"
    )
    print(json.dumps({"results": results, "ratios": ratios}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
