"""Training rows for the safety categories: labelled data sets mapped onto the taxonomy, plus the
project's own bilingual example set (resources/safety/examples.yaml).

Each row says, per category, whether it is positive and whether the source can say so at all
(`known`): GoEmotions comments are negatives for self-harm or crime but say nothing about
profanity, so they never train the profanity scorer.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import Field

from monovec.classify.taxonomy import SafetyConfig, SafetySource
from monovec.config import StrictModel
from monovec.io import iter_records
from monovec.paths import resolve_data_path, resource_path

log = logging.getLogger(__name__)
EXAMPLES = "safety/examples.yaml"


class ExampleGroup(StrictModel):
    """Sentences of one kind: positives of `labels` (with `subtype`) or, with labels [], hard negatives."""

    kind: str = Field(min_length=1, description="what the group exercises, e.g. self_harm_method, idiom, counter_speech")
    labels: list[str] = Field(default_factory=list, description="categories every sentence is positive for ([] = harmless)")
    subtype: str | None = Field(None, description="subtype of the first label (hate target, crime kind, self-harm kind)")
    context: bool | None = Field(None, description="harmless use of risky words (counter-speech, negation, quoting, reporting, support talk, idioms, neutral mentions): trains the context-of-use score; None = true exactly when labels is []")
    en: list[str] = Field(default_factory=list)
    ko: list[str] = Field(default_factory=list)


class ExampleFile(StrictModel):
    version: str = Field(description="bumped on every edit; recorded in the model manifest")
    groups: list[ExampleGroup] = Field(min_length=1)


def load_example_file(path: str | Path | None = None) -> ExampleFile:
    """Read and validate the example set (None = the packaged one); ValueError names the problem."""
    p = Path(path) if path else resource_path(EXAMPLES)
    try:
        data: Any = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"safety example file not found: {p}") from None
    return ExampleFile.model_validate(data)


@dataclass
class SafetyCorpus:
    """Rows x categories: y (positive), known (the row's source can label that category)."""

    categories: list[str]
    texts: list[str] = field(default_factory=list)
    langs: list[str] = field(default_factory=list)
    y: list[list[bool]] = field(default_factory=list)
    known: list[list[bool]] = field(default_factory=list)
    weight: list[float] = field(default_factory=list)
    group: list[int] = field(default_factory=list)  # source index; -1 = the example set (never held out)
    subtype: list[str | None] = field(default_factory=list)  # subtype of the row's first positive category
    context: list[int] = field(default_factory=list)  # example rows: 1 harmless use, 0 harmful, -1 not used

    def add(self, text: str, lang: str, positives: set[str], known: set[str], weight: float, group: int, subtype: str | None, context: int = -1) -> None:
        self.texts.append(text)
        self.langs.append(lang)
        self.y.append([c in positives for c in self.categories])
        self.known.append([c in known for c in self.categories])
        self.weight.append(weight)
        self.group.append(group)
        self.subtype.append(subtype)
        self.context.append(context)

    def __len__(self) -> int:
        return len(self.texts)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return np.array(self.y, bool), np.array(self.known, bool), np.array(self.weight, np.float32), np.array(self.group, np.int64)


def _labels(value: object) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _add_source(corpus: SafetyCorpus, src: SafetySource, group: int) -> int:
    path = resolve_data_path(src.path)
    named = {c for cats in src.categories.values() for c in cats}
    known = set(src.applies_to) if src.applies_to is not None else named
    skip = re.compile(src.exclude, re.IGNORECASE) if src.exclude else None
    rows = 0
    for _n, rec, err in iter_records(path, src.format):
        if err is not None or rec is None:
            continue
        rows += 1
        if src.max_rows and rows > src.max_rows:
            break
        raw = _labels(rec.get(src.label_field))
        if not raw or any(r not in src.categories for r in raw):
            continue
        positives = {c for r in raw for c in src.categories[r]} & known
        subtype = next((src.subtypes[r] for r in raw if r in src.subtypes), None)
        for fld, lang in src.text_fields.items():
            text = rec.get(fld)
            if isinstance(text, str) and text.strip() and not (skip and skip.search(text)):
                corpus.add(text, lang, positives, known, src.weight, group, subtype)
    return rows


def load_corpus(cfg: SafetyConfig) -> tuple[SafetyCorpus, ExampleFile]:
    """Every source's rows, then the example set's (which knows every category)."""
    corpus = SafetyCorpus(cfg.names)
    for i, src in enumerate(cfg.sources):
        n = _add_source(corpus, src, i)
        log.info("safety source %s: %d rows read", src.path, n)
    examples = load_example_file(cfg.examples_file)
    everything = set(cfg.names)
    for g in examples.groups:
        unknown = set(g.labels) - everything
        if unknown:
            raise ValueError(f"example group {g.kind!r}: labels {sorted(unknown)} are not in the taxonomy {cfg.names}")
        for lang, texts in (("en", g.en), ("ko", g.ko)):
            for text in texts:
                context = int(not g.labels) if g.context is None else int(g.context)
                corpus.add(text, lang, set(g.labels), everything, cfg.example_weight, -1, g.subtype, context)
    return corpus, examples
