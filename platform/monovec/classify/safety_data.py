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

import numpy as np
from pydantic import Field, model_validator

from monovec.classify.targets import target_lexicon
from monovec.classify.taxonomy import SafetyConfig, SafetySource
from monovec.config import StrictModel, load_config
from monovec.io import iter_records
from monovec.paths import resolve_data_path, resource_path

log = logging.getLogger(__name__)
EXAMPLES = "safety/examples.yaml"
TEMPLATES = "safety/identity_templates.yaml"


class ExampleGroup(StrictModel):
    """Sentences of one kind: positives of `labels` (with `subtype`) or, with labels [], hard negatives."""

    kind: str = Field(
        min_length=1, description="what the group exercises, e.g. self_harm_method, idiom, counter_speech"
    )
    labels: list[str] = Field(
        default_factory=list, description="categories every sentence is positive for ([] = harmless)"
    )
    subtype: str | None = Field(
        None, description="subtype of the first label (hate target, crime kind, self-harm kind)"
    )
    context: bool | None = Field(
        None,
        description="harmless use of risky words (counter-speech, negation, quoting, reporting, support talk, idioms, neutral mentions): trains the context-of-use score; None = true exactly when labels is []",
    )
    en: list[str] = Field(default_factory=list)
    ko: list[str] = Field(default_factory=list)


class ExampleFile(StrictModel):
    version: str = Field(description="bumped on every edit; recorded in the model manifest")
    groups: list[ExampleGroup] = Field(min_length=1)


class FrameList(StrictModel):
    """One frame with a predicate slot {x} and its fillers: `{p} are {x}` x [our neighbours, welcome here]."""

    frame: str = Field(description="a frame using {x} besides the group slots")
    x: list[str] = Field(min_length=1, description="fillers of {x}")

    def frames(self) -> list[str]:
        return [self.frame.replace("{x}", v) for v in self.x]


class TemplateLanguage(StrictModel):
    """One language's identity groups and the frames they are filled into."""

    groups: list[dict[str, str]] = Field(
        min_length=1, description="slot values of each group ({p}, {a}, {me}) and its `subtype`"
    )
    neutral: list[str | FrameList] = Field(
        default_factory=list, description="frames that say nothing bad about the group (harmless rows)"
    )
    positive: list[str | FrameList] = Field(
        default_factory=list, description="frames that praise the group (harmless rows)"
    )
    hateful: list[str | FrameList] = Field(
        default_factory=list, description="frames that derogate, dehumanise or threaten the group (hate rows)"
    )

    @staticmethod
    def flat(frames: list[str | FrameList]) -> list[str]:
        return [f for item in frames for f in ([item] if isinstance(item, str) else item.frames())]

    @model_validator(mode="after")
    def _slots_exist(self) -> TemplateLanguage:
        for g in self.groups:
            if "subtype" not in g:
                raise ValueError(f"template group {g} has no subtype")
            for frame in self.flat(self.neutral) + self.flat(self.positive) + self.flat(self.hateful):
                missing = set(_SLOT.findall(frame)) - set(g)
                if missing:
                    raise ValueError(
                        f"template frame {frame!r} uses slots {sorted(missing)} that group {g} lacks"
                    )
        return self


class TemplateFile(StrictModel):
    version: str = Field(description="bumped on every edit; recorded in the model manifest")
    en: TemplateLanguage | None = None
    ko: TemplateLanguage | None = None


_SLOT = re.compile(r"\{(\w+)\}")


def load_template_file(path: str | Path | None = None) -> TemplateFile:
    """Read and validate the identity templates (None = the packaged file); ConfigError (a ValueError)
    names the file and the problem."""
    return load_config(TemplateFile, path or resource_path(TEMPLATES))


def expand_templates(templates: TemplateFile) -> list[tuple[str, str, bool, str]]:
    """(language, sentence, hateful, subtype) for every frame filled with every group of its language."""
    rows = []
    for lang in ("en", "ko"):
        spec: TemplateLanguage | None = getattr(templates, lang)
        if spec is None:
            continue
        for frames, hateful in ((spec.neutral, False), (spec.positive, False), (spec.hateful, True)):
            for frame in spec.flat(frames):
                for g in spec.groups:
                    rows.append((lang, _SLOT.sub(lambda m, g=g: g[m.group(1)], frame), hateful, g["subtype"]))
    return rows


def load_example_file(path: str | Path | None = None) -> ExampleFile:
    """Read and validate the example set (None = the packaged one); ConfigError (a ValueError) names the
    file and the problem."""
    return load_config(ExampleFile, path or resource_path(EXAMPLES))


@dataclass
class SafetyCorpus:
    """Rows x categories: y (positive), known (the row's source can label that category)."""

    categories: list[str]
    texts: list[str] = field(default_factory=list)
    langs: list[str] = field(default_factory=list)
    y: list[list[bool]] = field(default_factory=list)
    known: list[list[bool]] = field(default_factory=list)
    weight: list[float] = field(default_factory=list)
    group: list[int] = field(
        default_factory=list
    )  # source index; -1 the example set, -2 identity templates (never held out)
    subtype: list[str | None] = field(default_factory=list)  # subtype of the row's first positive category
    context: list[int] = field(default_factory=list)  # example rows: 1 harmless use, 0 harmful, -1 not used
    stance: list[int] = field(
        default_factory=list
    )  # rows naming a protected group: 1 hateful about it, 0 not, -1 not used
    example: list[int] = field(
        default_factory=list
    )  # the example set's group index (its sentences and their translations), -1 other rows

    def add(
        self,
        text: str,
        lang: str,
        positives: set[str],
        known: set[str],
        weight: float,
        group: int,
        subtype: str | None,
        context: int = -1,
        stance: int = -1,
        example: int = -1,
    ) -> None:
        self.texts.append(text)
        self.langs.append(lang)
        self.y.append([c in positives for c in self.categories])
        self.known.append([c in known for c in self.categories])
        self.weight.append(weight)
        self.group.append(group)
        self.subtype.append(subtype)
        self.context.append(context)
        self.stance.append(stance)
        self.example.append(example)

    def __len__(self) -> int:
        return len(self.texts)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return (
            np.array(self.y, bool),
            np.array(self.known, bool),
            np.array(self.weight, np.float32),
            np.array(self.group, np.int64),
        )


def _labels(value: object) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def add_source(corpus: SafetyCorpus, src: SafetySource, group: int) -> int:
    """Append the valid rows of one data source to `corpus`, labelled by `src.categories`.

    `group` tags the rows (the source's index: calibration holds out a share of every group).
    Unreadable records, unknown labels, empty texts and texts matching `src.exclude` are skipped,
    never fatal (the reader keeps the good rows). Reads at most `src.max_rows` records and returns
    how many it read (skipped ones included); each text field of a row adds one example.
    """
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
        n = add_source(corpus, src, i)
        log.info("safety source %s: %d rows read", src.path, n)
    examples = load_example_file(cfg.examples_file)
    everything = set(cfg.names)
    tc = cfg.identity_templates
    lexicon = target_lexicon(cfg.targets.file) if tc.enabled else None
    for gi, g in enumerate(examples.groups):
        unknown = set(g.labels) - everything
        if unknown:
            raise ValueError(
                f"example group {g.kind!r}: labels {sorted(unknown)} are not in the taxonomy {cfg.names}"
            )
        for lang, texts in (("en", g.en), ("ko", g.ko)):
            for text in texts:
                context = int(not g.labels) if g.context is None else int(g.context)
                # stance rows: hate examples, and harmless examples that name a protected group
                stance = (
                    1
                    if tc.category in g.labels
                    else (0 if not g.labels and lexicon and lexicon.find(text, lang) else -1)
                )
                corpus.add(
                    text,
                    lang,
                    set(g.labels),
                    everything,
                    cfg.example_weight,
                    -1,
                    g.subtype,
                    context,
                    stance,
                    gi,
                )
    if (
        lexicon is not None and tc.category in everything
    ):  # the data sets' rows that name a group: their label is the stance
        j = cfg.names.index(tc.category)
        for i in range(len(corpus)):
            if corpus.group[i] < 0 or not corpus.known[i][j]:
                continue
            clean = not any(
                corpus.y[i]
            )  # labelled harmless (K-MHaS not_hate, Davidson neither): a benign mention
            if (corpus.y[i][j] or clean) and lexicon.find(corpus.texts[i], corpus.langs[i]):
                corpus.stance[i] = 1 if corpus.y[i][j] else 0
    if tc.enabled:
        hate = {tc.category} & everything
        for lang, text, hateful, subtype in expand_templates(load_template_file(tc.file)):
            corpus.add(
                text,
                lang,
                hate if hateful else set(),
                hate,
                tc.weight,
                -2,
                subtype if hateful else None,
                int(not hateful),
                int(hateful),
            )
    return corpus, examples
