"""`--model PATH` for every command: a model folder, a run folder, or the folder an `--out` named.

Builds and training runs write under the folder their `--out` names (`classifier build --out DIR`
writes `DIR/<version>/`, `textvib train --out DIR` writes `DIR/model/`), so a `--model` that only
took the innermost folder made users dig for it. `find_model_dir` accepts all three levels and, when
it has to choose, takes the newest model (by when its manifest was written) and says which.
"""

from __future__ import annotations

from pathlib import Path

MANIFEST = "model.json"


def _candidates(path: Path) -> list[Path]:
    """Model folders at `path`, `path/model` and one level below (each run's `model/` included)."""
    found = []
    for base in (path, path / "model"):
        if (base / MANIFEST).is_file():
            return [base]
    if path.is_dir():
        for child in path.iterdir():
            for base in (child, child / "model"):
                if (base / MANIFEST).is_file():
                    found.append(base)
                    break
    return found


def find_model_dir(path: str | Path, what: str = "model") -> tuple[Path, str | None]:
    """(model folder, note) for `path`; the note says which one was chosen when `path` held several.

    Raises:
        FileNotFoundError: nothing at `path`, or no `model.json` at, under or one level below it.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"no such {what} folder: {root}")
    found = _candidates(root)
    if not found:
        raise FileNotFoundError(
            f"not a monovec {what} (no {MANIFEST} in {root}, {root / 'model'} or any folder directly inside it)"
        )
    if len(found) == 1 and found[0] in (root, root / "model"):
        return found[0], None
    newest = max(found, key=lambda p: ((p / MANIFEST).stat().st_mtime_ns, str(p)))
    return newest, f"using the newest of {len(found)} {what}s in {root}: {newest}"
