"""Where monovec reads data and writes state.

Everything the platform writes (MLflow sqlite store, Chroma, review queue, models, logs) lives under one
state directory so that `rm -rf .monovec` is a full reset and nothing leaks into the source tree. The one
exception is the embedding cache (`cache_dir`): it is content-addressed (a vector is stored under the
hash of the encoder's identity and the exact text), so it is safe to share between checkouts, Ray job
working directories and test runs, the way Hugging Face shares its model cache.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def state_dir() -> Path:
    """`$MONOVEC_HOME`, else `<cwd>/.monovec`, as an absolute path. Reading it creates nothing: the code that
    writes a file under it creates the folders it writes to. A Ray worker runs in its own working
    directory, so jobs resolve every path on the driver and hand workers absolute paths in their config
    (`textvib.train.portable`, `taste.update.portable`), never through environment variables."""
    return Path(os.environ.get("MONOVEC_HOME") or Path.cwd() / ".monovec").resolve()


def cache_dir() -> Path:
    """`$MONOVEC_CACHE_DIR`, else `$XDG_CACHE_HOME/monovec`, else `~/.cache/monovec` (not created here).

    Shared by every monovec process of the user: a job submitted with `--working-dir` runs in a fresh
    copy of the checkout, and without a shared cache it would embed every text again.
    """
    env = os.environ.get("MONOVEC_CACHE_DIR")
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache").resolve() / "monovec"


def embedding_cache_dir() -> Path:
    """Where `monovec.embed.cache` keeps vectors: `cache_dir() / "embeddings"`."""
    return cache_dir() / "embeddings"


def data_dir() -> Path:
    """`$MONOVEC_DATA`, else `../shared/data` next to the repository (read-only input)."""
    env = os.environ.get("MONOVEC_DATA")
    return Path(env).resolve() if env else (REPO_ROOT.parent / "shared" / "data").resolve()


def resolve_data_path(path: str | os.PathLike[str]) -> Path:
    """Resolve a config path: absolute stays, `data:/x` is under data_dir(), else relative to cwd."""
    text = str(path)
    if text.startswith("data:"):
        return data_dir() / text[len("data:") :].lstrip("/")
    return Path(text).expanduser().resolve()


def resource_path(name: str) -> Path:
    """A file shipped inside the package (rules, slang dictionary, defaults)."""
    return Path(__file__).resolve().parent / "resources" / name
