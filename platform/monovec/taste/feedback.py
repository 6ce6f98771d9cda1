"""Feedback events: schema, validation, the dead-letter file and the watermark over JSONL event files.

An event is one tasting with a verdict (`liked` and/or a 1-5 `rating`) on (user, item, context). Every
line of an events file ends in exactly one place: learned, or the dead-letter file with a reason
(invalid JSON, missing field, unknown item, NaN or out-of-range value, duplicate event_id). Blank lines
are not events. A last line without its newline is a writer still appending: it is left for next time.

The watermark is {file: lines consumed}; it is saved inside the same checkpoint as the model, so after a
crash the model and the watermark roll back together and each event is learned exactly once.
"""

from __future__ import annotations

import json
import math
import time
import unicodedata
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)  # unknown keys: forward compatible


class Context(_Lenient):
    hour: int | None = Field(None, ge=0, le=23)
    weekday: int | None = Field(None, ge=0, le=6, description="0 = Monday")
    weather: Literal["sunny", "cloudy", "rainy", "snowy"] | None = None
    temp_c: float | None = Field(None, ge=-50, le=60)
    mood: float | None = Field(None, ge=1, le=10)
    energy: float | None = Field(None, ge=1, le=10)


class Brew(_Lenient):
    temp_c: float | None = Field(None, ge=50, le=100)
    ratio: float | None = Field(None, ge=3, le=40, description="water:coffee")
    time_s: float | None = Field(None, ge=5, le=3600)
    grind_um: float | None = Field(None, ge=50, le=3000)


class FeedbackEvent(_Lenient):
    event_id: str = Field(min_length=1, max_length=128)
    user_id: str = Field(min_length=1, max_length=128)
    item_id: str = Field(min_length=1, max_length=128)
    ts: float | None = Field(None, description="unix seconds")
    liked: StrictBool | None = None
    rating: float | None = Field(None, ge=1, le=5)
    context: Context = Field(default_factory=Context)
    notes: list[str] = Field(default_factory=list, max_length=32, description="terms the taster wrote")
    brew: Brew | None = None

    @field_validator("notes")
    @classmethod
    def _clean_notes(cls, notes: list[str]) -> list[str]:
        out = [unicodedata.normalize("NFC", n).strip().lower() for n in notes]
        if any(not n or len(n) > 64 for n in out):
            raise ValueError("each note must be 1-64 characters")
        return out

    @model_validator(mode="after")
    def _has_verdict(self) -> FeedbackEvent:
        if self.liked is None and self.rating is None:
            raise ValueError("needs `liked` (true/false) or `rating` (1-5)")
        return self

    def label(self, like_threshold: float) -> float:
        return float(self.liked if self.liked is not None else (self.rating or 0) >= like_threshold)

    def weight(self) -> float:
        """Strong ratings (1 or 5) weigh 1.5x, a lukewarm 3 half as much; no rating: 1."""
        return 1.0 if self.rating is None else 0.5 + abs(self.rating - 3.0) / 2.0


def validate_event(
    record: Mapping[str, Any], known_items: Mapping[str, int]
) -> tuple[FeedbackEvent | None, str | None]:
    """(event, None) or (None, reason). Reasons name the field, e.g. `rating: Input should be a finite number`."""
    bad = non_finite_path(record)
    if bad is not None:
        return None, f"{bad}: NaN or infinite number"
    try:
        event = FeedbackEvent.model_validate(record)
    except ValidationError as exc:
        reason = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'event'}: {e['msg']}" for e in exc.errors()
        )
        return None, reason
    if event.item_id not in known_items:
        return None, f"item_id: unknown item {event.item_id!r}"
    return event, None


@dataclass(frozen=True)
class RawLine:
    source: str
    line: int
    record: dict[str, Any] | None  # None when the line is not a JSON object
    error: str | None
    text: str


def event_files(path: str | Path) -> list[Path]:
    """A file, or every *.jsonl directly in a directory, in name order (append new files with later names)."""
    path = Path(path).resolve()
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.glob("*.jsonl") if p.is_file())
    raise FileNotFoundError(f"events not found: {path}")


def read_pending(files: list[Path], watermark: Mapping[str, int]) -> Iterator[RawLine]:
    """Lines after each file's watermark, complete lines only. Blank lines come back with record None, error None."""
    for path in files:
        done = int(watermark.get(str(path), 0))
        with path.open("rb") as fh:
            for n, raw in enumerate(fh, start=1):
                if not raw.endswith(b"\n"):
                    break  # partial tail: the writer is still appending
                if n <= done:
                    continue
                yield parse_line(str(path), n, raw)


def parse_line(source: str, n: int, raw: bytes) -> RawLine:
    """One line (bytes, newline included or not) as a RawLine: a JSON object, or the reason it is none."""
    try:
        text = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        return RawLine(
            source, n, None, f"invalid UTF-8 at byte {exc.start}", raw.decode("utf-8", "replace").rstrip()
        )
    if not text.strip():
        return RawLine(source, n, None, None, text)
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return RawLine(source, n, None, f"invalid JSON ({exc.msg} at column {exc.colno})", text)
    if not isinstance(record, dict):
        return RawLine(source, n, None, f"expected a JSON object, got {type(record).__name__}", text)
    return RawLine(source, n, record, None, text)


def feedback_windows(
    lines: Iterable[RawLine],
    index: Mapping[str, int],
    size: int,
    reject: Callable[[RawLine, str, str | None], None],
    learned: Container[str] = frozenset(),
    on_line: Callable[[RawLine], None] | None = None,
) -> Iterator[list[tuple[FeedbackEvent, RawLine]]]:
    """The read -> validate -> dead-letter -> window loop the update job and the simulation share.

    Yields windows of `size` valid events (each with its line), and a last shorter one. Blank lines are
    skipped; a line that is no valid event, or an event_id already in `learned` or in the open window, goes
    to `reject(line, reason, event_id)`. `on_line` sees every line first (the update job's watermark).
    `learned` is read as the stream goes, so ids the consumer learns from one window count for the next."""
    window: list[tuple[FeedbackEvent, RawLine]] = []
    in_window: set[str] = set()
    for raw in lines:
        if on_line is not None:
            on_line(raw)
        if raw.record is None and raw.error is None:
            continue  # a blank line is not an event
        event, reason = (None, raw.error) if raw.record is None else validate_event(raw.record, index)
        if event is not None and (event.event_id in learned or event.event_id in in_window):
            event, reason = None, f"event_id: duplicate {event.event_id!r} (already learned)"
        if event is None:
            reject(raw, reason or "invalid", (raw.record or {}).get("event_id"))
            continue
        window.append((event, raw))
        in_window.add(event.event_id)
        if len(window) == size:
            yield window
            window, in_window = [], set()
    if window:
        yield window


class DeadLetter:
    """Append-only JSONL of rejected lines with their reason. Idempotent per (source, line): a rerun after a
    crash re-reads uncommitted lines and must not file the same rejection twice."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._seen: set[tuple[str, int]] = set()
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    self._seen.add((entry["source"], int(entry["line"])))
                except (ValueError, KeyError, TypeError):
                    continue
        self.written = 0

    def __len__(self) -> int:
        return len(self._seen)

    def write(self, source: str, line: int, reason: str, raw: str, event_id: str | None = None) -> bool:
        key = (source, line)
        if key in self._seen:
            return False
        entry = {
            "source": source,
            "line": line,
            "event_id": event_id,
            "reason": reason,
            "raw": raw[:4000],
            "at": time.time(),
        }
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, ensure_ascii=False, allow_nan=True) + "\n")
        self._seen.add(key)
        self.written += 1
        return True


def non_finite_path(value: Any, path: str = "") -> str | None:
    """Dotted path of the first NaN/inf float anywhere in a JSON value (also in fields the schema ignores,
    such as an extra score a client sends), else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return path or "event"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, sub in items:
        found = non_finite_path(sub, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None
