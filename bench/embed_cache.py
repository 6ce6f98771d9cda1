"""Per-text embedding cache: cold vs warm vs one-changed-text rebuild, against no cache, same run.

    python bench/embed_cache.py [--n 1000] [--threads 1]

Baseline: embedding the texts without a cache, which is what the old whole-list cache key paid
after any change (one edited text, one more example sentence, a normaliser fix). Then, into an
empty cache directory: cold (embed + store every vector), warm (the same texts again: all read
back), one changed text (one miss), and an overlapping build (half of the texts plus 20 new ones,
like a capped test build after the full build). Texts: GoEmotions dev, half English, half Korean.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1000, help="texts per build (half English, half Korean)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads of the encoder")
    args = parser.parse_args()
    import numpy as np

    from monovec.embed.cache import EmbeddingCache, embed_texts, embed_uncached
    from monovec.embed.text import EncoderConfig
    from monovec.paths import data_dir

    rows = [
        json.loads(line)
        for line in (data_dir() / "goemotions" / "dev.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()[: args.n // 2]
    ]
    texts = [r["text_en"] for r in rows] + [r["text_ko"] for r in rows]
    cfg = EncoderConfig(threads=args.threads)
    embed_uncached(texts[:8], cfg, 1)  # load the encoder once, outside every timing

    def timed(fn):  # noqa: ANN001, ANN202
        t0 = time.perf_counter()
        out = fn()
        return time.perf_counter() - t0, out

    with tempfile.TemporaryDirectory() as tmp:
        t_none, ref = timed(lambda: embed_uncached(texts, cfg, 1))
        t_cold, cold = timed(lambda: embed_texts(texts, cfg, tmp))
        t_warm, warm = timed(lambda: embed_texts(texts, cfg, tmp))
        changed = [texts[0] + " (edited)"] + texts[1:]
        t_one, one = timed(lambda: embed_texts(changed, cfg, tmp))
        overlap = texts[: len(texts) // 2] + [
            f"a sentence the cache has not seen, number {i}" for i in range(20)
        ]
        t_overlap, _ = timed(lambda: embed_texts(overlap, cfg, tmp))
        size = (Path(tmp) / "embeddings.sqlite").stat().st_size
        stored = len(EmbeddingCache(tmp))
    assert np.array_equal(cold, warm), "a warm read must be bit-exact"
    assert np.array_equal(one[1:], cold[1:])
    drift = float(np.abs(cold - ref).max())
    print(f"texts: {len(texts)} (GoEmotions dev, en + ko), encoder use-m3, {args.threads} thread(s)")
    print(f"{'build':<44} {'seconds':>8} {'vs no cache':>12}")
    for name, secs in [
        ("no cache (= old key after any change)", t_none),
        ("cold (embed + store all)", t_cold),
        ("warm (same texts)", t_warm),
        ("one changed text", t_one),
        ("overlap (half seen + 20 new)", t_overlap),
    ]:
        print(f"{name:<44} {secs:>8.3f} {t_none / max(secs, 1e-9):>11.1f}x")
    print(
        f"store: {stored} vectors, {size / 1e6:.1f} MB; cold vs uncached max |diff| {drift:.1e} (batch padding)"
    )
    print(
        f"warm speed-up {t_none / t_warm:.0f}x, one-changed speed-up {t_none / t_one:.0f}x, cold overhead {t_cold / t_none:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
