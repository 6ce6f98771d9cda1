"""Embedding cache and parallel embedding.

Building a classifier embeds ~100k texts; re-running a build (or a test, or a Tune sweep's setup)
must not pay for that again. The cache key is the encoder name plus the exact texts, so a changed
normaliser or encoder produces a new entry instead of stale vectors.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from monovec.embed.text import EncoderConfig, build_encoder

log = logging.getLogger(__name__)


def cache_key(encoder_name: str, texts: Sequence[str]) -> str:
    h = hashlib.sha256(encoder_name.encode())
    for t in texts:
        h.update(b"\x00")
        h.update(t.encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:32]


CHUNK = 512
"""Texts per unit of work: small enough for a smooth progress bar, large enough to batch well."""


class ShardEncoder:
    """One encoder per Ray actor (its weights load once), fed chunks by `ray.util.ActorPool`."""

    def __init__(self, config: EncoderConfig) -> None:
        self.encoder = build_encoder(config)

    def encode(self, index: int, texts: list[str]) -> tuple[int, np.ndarray]:
        return index, self.encoder.encode(texts)


def embed_texts(
    texts: Sequence[str],
    config: EncoderConfig,
    cache_dir: str | Path | None = None,
    num_shards: int = 1,
    progress: str = "",
) -> np.ndarray:
    """Embed `texts` with `config`, reading/writing the cache; with Ray up, shards run as Ray tasks."""
    texts = list(texts)
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"{config.name.replace('/', '_').replace(':', '_')}-{cache_key(config.name, texts)}.npy"
        if path.is_file():
            return np.load(path)
    t0 = time.perf_counter()
    out = _embed_uncached(texts, config, num_shards, progress)
    if progress:
        secs = time.perf_counter() - t0
        log.info("%s: embedded %d texts in %.1fs (%.0f/s)", progress, len(texts), secs, len(texts) / max(secs, 1e-9))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, out)
        tmp.replace(path)
    return out


def _embed_uncached(texts: list[str], config: EncoderConfig, num_shards: int, desc: str = "") -> np.ndarray:
    """Encode in chunks with a progress bar: in this process, or on `num_shards` Ray actors when Ray is up."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    from monovec.progress import bar

    chunks = [texts[i : i + CHUNK] for i in range(0, len(texts), CHUNK)]
    parts: list[np.ndarray | None] = [None] * len(chunks)
    import ray

    with bar(total=len(texts), desc=f"embed {desc}".strip(), unit="text") as progress:
        if num_shards <= 1 or not ray.is_initialized() or len(texts) < 4 * CHUNK:
            encoder = build_encoder(config)
            for i, chunk in enumerate(chunks):
                parts[i] = encoder.encode(chunk)
                progress.update(len(chunk))
        else:
            from ray.util import ActorPool

            # one CPU and one BLAS thread per actor: the actors are the parallelism
            actor = ray.remote(num_cpus=1)(ShardEncoder)
            actors = [actor.remote(config.model_copy(update={"threads": 1})) for _ in range(min(num_shards, len(chunks)))]
            try:
                pool = ActorPool(actors)
                for i, out in pool.map_unordered(lambda a, item: a.encode.remote(*item), list(enumerate(chunks))):
                    parts[i] = out
                    progress.update(len(chunks[i]))
            finally:
                for a in actors:
                    ray.kill(a)
    return np.concatenate(parts, axis=0)
