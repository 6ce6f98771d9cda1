"""Seed 002's trade-off, measured: one fine-tuned shared encoder vs one fine-tuned encoder per head vs frozen.

    python bench/encoder_tradeoff.py [--unified models:/monovec-encoder@newest]
        [--separate emotion=models:/monovec-encoder-emotion@newest,kmhas=models:/monovec-encoder-kmhas@newest,davidson=models:/monovec-encoder-davidson@newest]
        [--n 300]
    python bench/encoder_tradeoff.py --train-rows 3000 --epochs 2      # trains the four encoders itself, matched budget

With `--train-rows N` the bench first fine-tunes, on the same budget, the unified encoder (all three tasks) and
one encoder per task (the same config with the other tasks disabled): N seeded training rows per task, `--epochs`
epochs, 0 workers, texts cut to 64 tokens for training, no registration (under `--work`). Every arm's heads are then fitted on the same seeded sample of
`--head-rows` training texts per head (default 2 N), so the arms differ only in the encoder: shared or one per task.

Arms (every head = the classifier's linear head, `monovec.classify.linear.LinearHead` with its default
config, fitted on the head's full training set embedded by that arm's encoder):
  unified    one fine-tuned encoder (jobs/configs/encoder_finetune.yaml) -> emotion, K-MHaS and Davidson heads
  separate   three fine-tuned encoders, each trained on its own task only (the same job with the other tasks
             disabled, see docs/encoder.md) -> one head each: three forward passes per text
  frozen     the package's USE-m3 -> the three heads
Heads and data are the tasks of jobs/configs/encoder_finetune.yaml (train to fit, dev to score); embeddings
go through the shared cache. Printed per arm: dev macro-F1 per head and language and harmful-vs-not F1,
single-text p50/p95 latency (normalise + every encoder the arm needs + heads, 1 thread) and memory (each
arm in its own child process: RSS after loading and timing minus RSS after the shared imports), then the ratios behind the
bars: unified within 0.02 macro-F1 of separate, >= 2.5x faster per text, >= 2x less memory.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchlib import rss_mb

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
HEADS = ("emotion", "kmhas", "davidson")


def load_task(name: str, split: str) -> tuple[list[str], list[str], list[str], list[str], list[str]]:
    """(normalised texts, primary labels, languages, head labels, safe labels) as the classifier build reads them."""
    from monovec.classify.data import load_examples
    from monovec.classify.evaluate import normalise_examples
    from monovec.classify.normalize import KoreanNormalizer
    from monovec.config import load_config
    from monovec.finetune.config import FinetuneConfig

    task = load_config(FinetuneConfig, REPO / "jobs/configs/encoder_finetune.yaml").tasks[name]
    ex, norms = normalise_examples(
        KoreanNormalizer(), load_examples(task.train if split == "train" else task.dev, task.labels)
    )
    return norms, [ls[0] for ls in ex.labels], list(ex.langs), task.labels, task.safe_labels


def sample(rows: tuple[list, ...], n: int | None, seed: int = 0) -> tuple[list, ...]:
    """A seeded subset of `n` aligned rows (all rows when n is None or larger)."""
    if n is None or n >= len(rows[0]):
        return rows
    keep = sorted(np.random.default_rng(seed).choice(len(rows[0]), size=n, replace=False).tolist())
    return tuple([r[i] for i in keep] for r in rows)


def train_arms(rows: int, epochs: int, work: Path) -> tuple[str, dict[str, str]]:
    """(unified encoder dir, {head: its own encoder dir}) fine-tuned on `rows` rows per task for `epochs` epochs."""
    from monovec.config import load_config
    from monovec.finetune.config import FinetuneConfig
    from monovec.finetune.train import run_finetune

    common = [f"train.epochs={epochs}", "train.warmup_steps=20", "encoder.max_tokens=64", "train.geometry_sample=300", "scaling.num_workers=0",
              "tracking.enabled=false", *[f"tasks.{h}.max_rows={rows}" for h in HEADS],
              *[f"tasks.{h}.max_dev_rows=300" for h in HEADS]]  # fmt: skip
    # a separate arm trains its own head's task only (every other enabled task of the shipped config is off,
    # e.g. the safety example-set task, which the unified encoder also learns)
    tasks = list(load_config(FinetuneConfig, REPO / "jobs/configs/encoder_finetune.yaml").active_tasks())
    runs = {
        "unified": common,
        **{
            h: [*common, f"objective_task={h}", *[f"tasks.{o}.enabled=false" for o in tasks if o != h]]
            for h in HEADS
        },
    }
    dirs = {}
    for arm, overrides in runs.items():
        cfg = load_config(
            FinetuneConfig, REPO / "jobs/configs/encoder_finetune.yaml", [*overrides, f"out_dir={work / arm}"]
        )
        t0 = time.perf_counter()
        result = run_finetune(cfg, progress=lambda m: print(f"  {m}", flush=True))
        print(
            f"[train] {arm}: {epochs} epoch(s) on {rows} rows per task in {time.perf_counter() - t0:.0f}s -> {result.model_dir}",
            flush=True,
        )
        dirs[arm] = str(result.model_dir)
    return dirs["unified"], {h: dirs[h] for h in HEADS}


def quality(encoders: dict[str, str], heads_out: Path, head_rows: int | None = None) -> dict[str, float]:
    """Fit each head on its encoder's train embeddings, score dev; heads saved to `heads_out` for the timing child."""
    from monovec import metrics
    from monovec.classify.linear import LinearHead, LinearHeadConfig
    from monovec.embed.cache import embed_texts
    from monovec.embed.text import EncoderConfig
    from monovec.paths import embedding_cache_dir

    cache = embedding_cache_dir()
    out: dict[str, float] = {}
    arrays = {}
    for head in HEADS:
        cfg = EncoderConfig(name=encoders[head], threads=2)  # embedding for the fit: 2 BLAS threads, cached
        tr_x, tr_y, _, labels, safe = load_task(head, "train")
        tr_x, tr_y = sample((tr_x, tr_y), head_rows)
        dv_x, dv_y, dv_lang, _, _ = load_task(head, "dev")
        index = {lab: i for i, lab in enumerate(labels)}
        xtr = embed_texts(tr_x, cfg, cache, progress=f"{head} train")
        xdv = embed_texts(dv_x, cfg, cache, progress=f"{head} dev")
        lin = LinearHead.fit(xtr, np.array([index[y] for y in tr_y]), labels, LinearHeadConfig())
        arrays[f"{head}.weight"], arrays[f"{head}.bias"] = lin.weight, lin.bias
        pred = [labels[i] for i in lin.proba(xdv).argmax(1)]
        langs = np.array(dv_lang)
        for lang in sorted(set(dv_lang)):
            m = langs == lang
            out[f"{head}.{lang}.macro_f1"] = metrics.macro_f1(
                [y for y, k in zip(dv_y, m, strict=True) if k],
                [p for p, k in zip(pred, m, strict=True) if k],
                labels,
            )
        if safe:
            out[f"{head}.harm_f1"] = metrics.binary_f1(
                [y not in safe for y in dv_y], [p not in safe for p in pred]
            )["f1"]
    np.savez(heads_out, **arrays)
    return out


def child(encoders: dict[str, str], heads_path: str, n: int) -> dict[str, float]:
    """Time single-text classification with the arm's encoders (one per distinct reference) and heads."""
    import torch  # noqa: F401  - every arm pays the same imports

    from monovec.classify.normalize import KoreanNormalizer
    from monovec.embed.text import EncoderConfig, build_encoder

    texts = []
    with (REPO.parent / "shared/data/goemotions/dev.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            texts += [rec["text_en"], rec["text_ko"]]
            if len(texts) >= n:
                break
    normalizer = KoreanNormalizer()
    base = rss_mb()
    models = {
        ref: build_encoder(EncoderConfig(name=ref, threads=1)) for ref in dict.fromkeys(encoders.values())
    }
    with np.load(heads_path) as z:
        heads = {h: (z[f"{h}.weight"], z[f"{h}.bias"]) for h in HEADS}

    def run(text: str) -> None:
        norm = normalizer(text)
        vectors = {
            ref: enc.encode([norm]) for ref, enc in models.items()
        }  # one forward pass per distinct encoder
        for h, (w, b) in heads.items():
            np.argmax(vectors[encoders[h]] @ w.T + b, axis=1)

    for t in texts[:8]:
        run(t)
    lat = []
    for t in texts:
        s = time.perf_counter()
        run(t)
        lat.append((time.perf_counter() - s) * 1000)
    # current RSS, not ru_maxrss: a child forked from the (large) bench driver inherits its high-water mark
    now = rss_mb()
    return {"p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)), "encoders": len(models),
            "rss_mb": now, "model_memory_mb": now - base}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--unified", default="models:/monovec-encoder@newest", help="the shared fine-tuned encoder"
    )
    parser.add_argument("--separate", default=",".join(f"{h}=models:/monovec-encoder-{h}@newest" for h in HEADS),
                        help="head=reference for each head's own fine-tuned encoder")  # fmt: skip
    parser.add_argument("--n", type=int, default=300, help="texts timed (GoEmotions dev, en + ko)")
    parser.add_argument(
        "--train-rows",
        type=int,
        help="fine-tune the arms here on this many rows per task (and fit heads on them)",
    )
    parser.add_argument(
        "--head-rows",
        type=int,
        help="fit each head on a seeded sample of this many training texts (default: all; 2 N with --train-rows)",
    )
    parser.add_argument(
        "--epochs", type=int, default=2, help="with --train-rows: epochs of every fine-tuning run"
    )
    parser.add_argument(
        "--work", default=".monovec/bench/encoder_tradeoff", help="with --train-rows: where the runs go"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --train-rows: reuse the encoders already trained under --work",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(child(spec["encoders"], spec["heads"], args.n)))
        return 0

    separate = dict(item.split("=", 1) for item in args.separate.split(","))
    if args.train_rows:
        work = (REPO / args.work).resolve()
        if args.reuse and all(
            (work / arm / "model" / "encoder.json").is_file() for arm in ("unified", *HEADS)
        ):
            args.unified, separate = (
                str(work / "unified" / "model"),
                {h: str(work / h / "model") for h in HEADS},
            )
        else:
            shutil.rmtree(work, ignore_errors=True)
            args.unified, separate = train_arms(args.train_rows, args.epochs, work)
    arms = {
        "unified": dict.fromkeys(HEADS, args.unified),
        "separate": {h: separate[h] for h in HEADS},
        "frozen": dict.fromkeys(HEADS, "use-m3"),
    }
    tmp = Path(tempfile.mkdtemp(prefix="encoder-tradeoff-"))
    results: dict[str, dict[str, float]] = {}
    from monovec.embed.finetuned import resolve_encoder
    from monovec.embed.text import EncoderConfig, encoder_identity

    for arm, encoders in arms.items():
        pinned = {h: encoder_identity(EncoderConfig(name=ref)) for h, ref in encoders.items()}
        print(
            f"[{arm}] encoders: " + ", ".join(f"{h}={ref} ({pinned[h]})" for h, ref in encoders.items()),
            flush=True,
        )
        results[arm] = quality(
            encoders, tmp / f"{arm}.npz", args.head_rows or (2 * args.train_rows if args.train_rows else None)
        )
        # the child loads local directories: resolving a models:/ reference imports MLflow (~170 MB resident),
        # which would be charged to the arm's model memory (once per arm, whatever its number of encoders)
        local = {
            h: str(resolve_encoder(ref).path) if ref.startswith("models:/") else ref
            for h, ref in encoders.items()
        }
        spec = json.dumps({"encoders": local, "heads": str(tmp / f"{arm}.npz")})
        proc = subprocess.run(
            [sys.executable, __file__, "--child", spec, "--n", str(args.n)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        results[arm].update(json.loads(proc.stdout.strip().splitlines()[-1]))

    keys = [k for k in results["unified"] if k.endswith("macro_f1") or k.endswith("harm_f1")]
    print(f"\n{'metric (dev)':<28}" + "".join(f"{a:>11}" for a in arms) + f"{'uni-sep':>9}")
    for k in keys:
        print(
            f"{k:<28}"
            + "".join(f"{results[a][k]:>11.4f}" for a in arms)
            + f"{results['unified'][k] - results['separate'][k]:>+9.4f}"
        )
    for k, unit in (("p50_ms", "ms"), ("p95_ms", "ms"), ("model_memory_mb", "MB"), ("rss_mb", "MB")):
        print(f"{k + ' (' + unit + ')':<28}" + "".join(f"{results[a][k]:>11.1f}" for a in arms))
    gap = max(results["separate"][k] - results["unified"][k] for k in keys)
    speed = results["separate"]["p50_ms"] / results["unified"]["p50_ms"]
    memory = results["separate"]["model_memory_mb"] / max(results["unified"]["model_memory_mb"], 1e-9)
    print(
        f"\nunified vs separate: worst macro-F1 / harm-F1 shortfall {gap:+.4f} (bar <= 0.02): {'PASS' if gap <= 0.02 else 'FAIL'}"
    )
    print(
        f"separate / unified p50 per text: {speed:.2f}x (bar >= 2.5x): {'PASS' if speed >= 2.5 else 'FAIL'}"
    )
    print(f"separate / unified model memory: {memory:.2f}x (bar >= 2x): {'PASS' if memory >= 2 else 'FAIL'}")
    print(
        json.dumps(
            {
                "results": results,
                "ratios": {"worst_f1_gap": gap, "speedup_p50": speed, "memory_ratio": memory},
            }
        )
    )
    return 0 if gap <= 0.02 and speed >= 2.5 and memory >= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
