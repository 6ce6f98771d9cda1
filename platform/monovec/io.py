"""Line-oriented readers that never lose good data because of one bad line.

Every reader yields (line_number, record, error): a bad line (invalid UTF-8, invalid JSON, not an
object) produces an error that names the line and the problem, and reading goes on.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class LineError:
    line: int
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "error": {"code": "bad_input", "message": self.message}}


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any] | None, LineError | None]]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input file not found: {path}")
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield n, None, LineError(n, f"line {n}: invalid UTF-8 at byte {exc.start}")
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                yield n, None, LineError(n, f"line {n}: invalid JSON ({exc.msg} at column {exc.colno})")
                continue
            if not isinstance(record, dict):
                yield n, None, LineError(n, f"line {n}: expected a JSON object, got {type(record).__name__}")
                continue
            yield n, record, None


def iter_delimited(
    path: str | Path, delimiter: str
) -> Iterator[tuple[int, dict[str, Any] | None, LineError | None]]:
    """TSV/CSV with a header row; undecodable bytes are reported per line, not fatal."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input file not found: {path}")
    with path.open("rb") as fh:
        header_raw = fh.readline().decode("utf-8-sig")
        header = next(csv.reader([header_raw], delimiter=delimiter))
        for n, raw in enumerate(fh, start=2):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield n, None, LineError(n, f"line {n}: invalid UTF-8 at byte {exc.start}")
                continue
            row = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
            if len(row) != len(header):
                yield n, None, LineError(n, f"line {n}: {len(row)} fields, header has {len(header)}")
                continue
            yield n, dict(zip(header, row, strict=True)), None


def iter_records(
    path: str | Path, fmt: str = "auto"
) -> Iterator[tuple[int, dict[str, Any] | None, LineError | None]]:
    suffix = Path(path).suffix.lower()
    fmt = {".jsonl": "jsonl", ".tsv": "tsv", ".csv": "csv"}.get(suffix, "jsonl") if fmt == "auto" else fmt
    if fmt == "jsonl":
        return iter_jsonl(path)
    if fmt in ("tsv", "csv"):
        return iter_delimited(path, "\t" if fmt == "tsv" else ",")
    raise ValueError(f"unknown format {fmt!r} for {path}: use jsonl, tsv or csv")
