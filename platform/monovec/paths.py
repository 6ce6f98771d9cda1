"""Where monovec reads data and writes state.

Everything the platform writes (MLflow sqlite store, Chroma, review queue, caches) lives under one
state directory so that `rm -rf .monovec` is a full reset and nothing leaks into the source tree.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def state_dir() -> Path:
    """`$MONOVEC_HOME`, else `<cwd>/.monovec` (created on first use)."""
    path = Path(os.environ.get("MONOVEC_HOME") or Path.cwd() / ".monovec").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


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
