"""Serving speed of a fine-tuned encoder: its weights in the numpy package vs the torch module, per text.

    python bench/encoder_serving.py [--encoder models:/monovec-encoder@newest|DIR] [--n 300] [--threads 1]

Both sides embed the same real texts (English + Korean GoEmotions dev) with the same weights (the
given fine-tuned encoder, else the package's own) and the same thread count, tokenisation included:
  numpy   `monovec.embed.text.UseM3Encoder` (the package's forward pass; what `build_encoder` serves)
  torch   `monovec.embed.use_torch.UseM3Module` in eval + inference_mode (what training runs)
Measured: single-text calls (p50, p95) and batches of 32 (texts/s), sides alternating over `--rounds`.
Printed: torch / numpy per-text time. The serving decision (issue 15): torch would have to be at least as
fast (ratio <= 1.0) to be served; otherwise fine-tuned weights are exported to the package layout and
served by the numpy backend. Exit 0 when the served backend (numpy) is no slower than today's encoder,
i.e. always unless numpy on fine-tuned weights is slower than on the package weights (checked too).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

from benchlib import dev_texts

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def timed(encode, texts: list[str]) -> dict[str, float]:  # noqa: ANN001
    encode(texts[:8])  # warm-up
    single = []
    for t in texts:
        s = time.perf_counter()
        encode([t])
        single.append((time.perf_counter() - s) * 1000)
    s = time.perf_counter()
    for i in range(0, len(texts), 32):
        encode(texts[i : i + 32])
    return {"p50_ms": float(np.percentile(single, 50)), "p95_ms": float(np.percentile(single, 95)),
            "batch_ms_per_text": (time.perf_counter() - s) * 1000 / len(texts)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--encoder", default=None, help="fine-tuned encoder reference (default: the package weights only)"
    )
    parser.add_argument("--n", type=int, default=300, help="texts (half English, half Korean)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS / torch threads on both sides")
    parser.add_argument("--rounds", type=int, default=3, help="alternating measurement rounds")
    args = parser.parse_args(argv)

    import torch

    from monovec.embed.text import EncoderConfig, build_encoder
    from monovec.embed.use_torch import Tokenizer, UseM3Module, load_weights, pad_ids

    torch.set_num_threads(args.threads)
    texts = dev_texts(args.n)
    package = build_encoder(EncoderConfig(name="use-m3", threads=args.threads))
    served = (
        build_encoder(EncoderConfig(name=args.encoder, threads=args.threads)) if args.encoder else package
    )
    weights_path = None
    if args.encoder:
        from monovec.embed.finetuned import resolve_encoder

        weights_path = resolve_encoder(args.encoder).weights_path
    module = UseM3Module(load_weights(weights_path), trainable=[]).eval()
    tokenizer = Tokenizer()

    def torch_encode(batch: list[str]) -> np.ndarray:
        with torch.inference_mode():
            return module(*pad_ids(tokenizer(batch))).numpy()

    agree = float(np.sum(torch_encode(texts[:64]) * served.encode(texts[:64]), axis=1).min())
    sides = {
        "numpy (package weights)": package.encode,
        "numpy (served weights)": served.encode,
        "torch (served weights)": torch_encode,
    }
    rounds: dict[str, list[dict[str, float]]] = {k: [] for k in sides}
    for _ in range(args.rounds):
        for name, fn in sides.items():
            rounds[name].append(timed(fn, texts))
    summary = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in rounds.items()}
    print(f"encoder: {args.encoder or 'package weights'}   texts: {len(texts)} (GoEmotions dev, en + ko)   threads: {args.threads}   "
          f"torch vs numpy min cosine: {agree:.6f}")  # fmt: skip
    print(f"{'side':<26} {'p50 ms':>8} {'p95 ms':>8} {'ms/text (b32)':>14}")
    for name, s in summary.items():
        print(f"{name:<26} {s['p50_ms']:>8.2f} {s['p95_ms']:>8.2f} {s['batch_ms_per_text']:>14.3f}")
    np_s, np_pkg, th = (
        summary["numpy (served weights)"],
        summary["numpy (package weights)"],
        summary["torch (served weights)"],
    )
    ratios = {
        "torch_vs_numpy_single": th["p50_ms"] / np_s["p50_ms"],
        "torch_vs_numpy_batch": th["batch_ms_per_text"] / np_s["batch_ms_per_text"],
        "served_vs_today_single": np_s["p50_ms"] / np_pkg["p50_ms"],
        "served_vs_today_batch": np_s["batch_ms_per_text"] / np_pkg["batch_ms_per_text"],
    }
    for k, v in ratios.items():
        print(f"{k:<24} {v:5.2f}x")
    torch_wins = ratios["torch_vs_numpy_single"] <= 1.0 and ratios["torch_vs_numpy_batch"] <= 1.0
    print(
        "decision: "
        + (
            "torch is as fast: either backend may serve"
            if torch_wins
            else "serve fine-tuned weights with the numpy backend (exported to the package layout); torch is slower per text"
        )
    )
    ok = ratios["served_vs_today_single"] <= 1.10 and ratios["served_vs_today_batch"] <= 1.10
    print(
        f"target: served encoder per text <= today's numpy encoder (10% noise allowance): {'PASS' if ok else 'FAIL'}"
    )
    print(json.dumps({"summary": summary, "ratios": ratios, "min_cosine": agree}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
