"""Embedding cache and parallel embedding.

Building a classifier embeds ~100k texts; re-running a build (or a test, or a Tune sweep's setup)
must not pay for that again. The cache key is the encoder's identity (its name, or for a fine-tuned
encoder the digest of its weights) plus the exact texts, so a changed normaliser or encoder, or an alias
that moved to other weights, produces a new entry instead of stale vectors.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from monovec.embed.text import EncoderConfig, build_encoder, encoder_identity

log = logging.getLogger(__name__)


def cache_key(encoder_name: str, texts: Sequence[str]) -> str:
    h = hashlib.sha256(encoder_name.encode())
    for t in texts:
        h.update(b"\x00")
        h.update(t.encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:32]


def _encode_shard(config: EncoderConfig, texts: list[str]) -> np.ndarray:
    return build_encoder(config).encode(texts)


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
        name = encoder_identity(config)
        path = Path(cache_dir) / f"{name.replace('/', '_').replace(':', '_')}-{cache_key(name, texts)}.npy"
        if path.is_file():
            return np.load(path)
    t0 = time.perf_counter()
    out = _embed_uncached(texts, config, num_shards)
    if progress:
        secs = time.perf_counter() - t0
        log.info("%s: embedded %d texts in %.1fs (%.0f/s)", progress, len(texts), secs, len(texts) / max(secs, 1e-9))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, out)
        tmp.replace(path)
    return out


def _embed_uncached(texts: list[str], config: EncoderConfig, num_shards: int) -> np.ndarray:
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    import ray

    if num_shards <= 1 or not ray.is_initialized() or len(texts) < 256:
        return _encode_shard(config, texts)
    # one CPU per shard, one BLAS thread per shard: the shards are the parallelism
    shard_cfg = config.model_copy(update={"threads": 1})
    task = ray.remote(num_cpus=1)(_encode_shard)
    bounds = np.linspace(0, len(texts), num_shards + 1).astype(int)
    refs = [task.remote(shard_cfg, texts[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
    return np.concatenate(ray.get(refs), axis=0)
