"""Labelled text for a head, from config: which files, which text fields, which label field.

Label sets are configuration, not code: a user can point a head at AI Hub's 7-emotion data with a
different label field and mapping. Each text field of a row becomes one example (GoEmotions ships
`text_en` and `text_ko` for the same comment), tagged with its language.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import Field

from monovec.config import StrictModel
from monovec.io import LineError, iter_records
from monovec.paths import resolve_data_path, resource_path

log = logging.getLogger(__name__)


class DataSource(StrictModel):
    path: str = Field(
        description="file path; `data:` prefix resolves under the shared data dir, `resource:` under the package's resources (a YAML of label -> {lang: [texts]})"
    )
    format: Literal["auto", "jsonl", "tsv", "csv"] = "auto"
    text_fields: dict[str, str] = Field(
        description="field name -> language tag, e.g. {text_en: en, text_ko: ko}"
    )
    label_field: str
    label_map: dict[str, str | None] = Field(
        default_factory=dict, description="raw label -> head label (null drops it)"
    )
    single_label_only: bool = Field(False, description="keep only rows with exactly one (mapped) label")
    max_rows: int | None = Field(
        None, ge=1, description="read at most this many rows (quick builds and tests)"
    )
    repeat: int = Field(
        1, ge=1, le=100, description="use every row this many times (weights a small hand-written source)"
    )


def _resource_records(name: str) -> Iterator[tuple[int, dict[str, Any] | None, LineError | None]]:
    """Rows of a packaged YAML: `label: {lang: [texts]}` (lists of one label aligned by position), or an
    example-group file (`groups:` of {kind, labels, en, ko}, e.g. safety/examples.yaml): one row per
    sentence with only its language's field, `category` = the group's first label ("none" for a hard
    negative, labels []) and `kind`."""
    data = yaml.safe_load(resource_path(name).read_text(encoding="utf-8")) or {}
    n = 0
    if isinstance(data.get("groups"), list):
        for group in data["groups"]:
            category = (group.get("labels") or ["none"])[0]
            for lang in ("en", "ko"):
                for text in group.get(lang) or []:
                    n += 1
                    yield n, {"category": category, "kind": group.get("kind"), lang: text}, None
        return
    for label, langs in data.items():
        if not isinstance(langs, dict):
            continue  # version and other metadata
        for texts in zip(*langs.values(), strict=True):
            n += 1
            yield n, {"label": label, **dict(zip(langs.keys(), texts, strict=True))}, None


@dataclass
class Examples:
    texts: list[str]
    labels: list[list[str]]
    langs: list[str]
    errors: list[LineError]

    def __len__(self) -> int:
        return len(self.texts)

    def primary(self, label_index: dict[str, int]) -> np.ndarray:
        return np.array([label_index[ls[0]] for ls in self.labels], dtype=np.int64)

    def subset(self, idx: np.ndarray | list[int]) -> Examples:
        return Examples(
            [self.texts[i] for i in idx],
            [self.labels[i] for i in idx],
            [self.langs[i] for i in idx],
            self.errors,
        )


def _labels_of(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def load_examples(
    sources: list[DataSource], labels: list[str], max_per_class: int | None = None, seed: int = 0
) -> Examples:
    """Read every source; rows with unknown labels or missing fields are reported, not fatal."""
    known = set(labels)
    texts, out_labels, langs, errors = [], [], [], []
    for src in sources:
        path = (
            resolve_data_path(src.path)
            if not src.path.startswith("resource:")
            else resource_path(src.path[len("resource:") :])
        )
        records = (
            _resource_records(src.path[len("resource:") :])
            if src.path.startswith("resource:")
            else iter_records(path, src.format)
        )
        rows = 0
        for n, rec, err in records:
            if err is not None:
                errors.append(err)
                continue
            assert rec is not None
            rows += 1
            if src.max_rows and rows > src.max_rows:
                break
            if src.label_field not in rec:
                errors.append(LineError(n, f"{path.name} line {n}: missing label field {src.label_field!r}"))
                continue
            raw = _labels_of(rec[src.label_field])
            mapped = [src.label_map.get(r, r) if src.label_map else r for r in raw]
            mapped = list(dict.fromkeys(m for m in mapped if m is not None))
            unknown = [m for m in mapped if m not in known]
            if unknown:
                errors.append(
                    LineError(n, f"{path.name} line {n}: labels {unknown} not in the head's label set")
                )
                continue
            if not mapped or (src.single_label_only and len(mapped) != 1):
                continue
            for field, lang in src.text_fields.items():
                text = rec.get(field)
                if text is None and src.path.startswith("resource:") and field not in rec:
                    continue  # an example-group sentence has one language's field only
                if not isinstance(text, str) or not text.strip():
                    errors.append(LineError(n, f"{path.name} line {n}: field {field!r} missing or empty"))
                    continue
                for _ in range(src.repeat):
                    texts.append(text)
                    out_labels.append(mapped)
                    langs.append(lang)
    if errors:
        log.warning("%d input rows skipped (first: %s)", len(errors), errors[0].message)
    ex = Examples(texts, out_labels, langs, errors)
    if max_per_class:
        ex = cap_per_class(ex, max_per_class, seed)
    return ex


def cap_per_class(ex: Examples, max_per_class: int, seed: int = 0) -> Examples:
    """Seeded subsample keeping at most `max_per_class` examples per (primary label, language)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(ex))
    seen: dict[tuple[str, str], int] = {}
    keep = []
    for i in order:
        key = (ex.labels[i][0], ex.langs[i])
        if seen.get(key, 0) < max_per_class:
            seen[key] = seen.get(key, 0) + 1
            keep.append(int(i))
    return ex.subset(sorted(keep))
