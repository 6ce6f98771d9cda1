"""The harm taxonomy and its policy, as configuration (one taxonomy for Korean and English).

A category is scored in [0, 1] for every text; its `policy` says what a score at or above
`threshold` does (block / escalate / flag = allow-and-flag), and `subtype_policy` refines it
(self-harm ideation is escalated to a person, encouraging someone else to self-harm is blocked).
A high-risk category scoring in the ambiguous band [`ambiguous_threshold`, `threshold`) is
escalated (seed: "애매한 고위험은 무조건 LLM"); several high-risk categories at once are escalated
(seed: multiple risks). Scores are calibrated per language (see `classify/safety.py`), so one
threshold means the same in Korean and English.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from monovec.classify.harm import LexicalConfig
from monovec.config import StrictModel

Policy = Literal["block", "escalate", "flag"]
SEVERITY: dict[str, int] = {"allow": 0, "flag": 1, "escalate": 2, "block": 3}


class CategoryConfig(StrictModel):
    """One harm category: what it means, how it is scored, what its score does."""

    description: str = Field(
        "", description="what the category covers (documentation, shown in docs/classifier.md)"
    )
    policy: Policy = Field(
        description="action when the score is >= threshold: block, escalate, or flag (allow and flag)"
    )
    subtype_policy: dict[str, Policy] = Field(
        default_factory=dict,
        description="per-subtype override of `policy` (e.g. self_harm.encouragement: block)",
    )
    high_risk: bool = Field(
        False,
        description="seed's high-risk set: the ambiguous band escalates and it counts toward 'several risks at once'",
    )
    threshold: float = Field(
        0.5, gt=0, le=1, description="calibrated score at or above which `policy` applies"
    )
    ambiguous_threshold: float = Field(
        0.35, gt=0, le=1, description="scores in [this, threshold): escalate when high_risk, else flag"
    )
    lexical: bool = Field(
        True,
        description="score with hashed character n-grams next to the embedding (slurs, coinages); false = embedding only",
    )
    per_language: bool = Field(
        True,
        description="one model per language (the data sets label differently: Davidson's 'offensive' is not K-MHaS's 'profanity'); false = one shared model, for categories learned from the bilingual example set",
    )
    C: float = Field(2.0, gt=0, description="inverse L2 strength of the category's logistic regression")
    positive_weight: float = Field(1.0, gt=0, description="loss weight of positive rows (rare categories)")
    calibration_beta: float | dict[Literal["en", "ko"], float] = Field(
        1.0,
        description="per language, 0.5 is moved to the F-beta-optimal threshold of the held-out slice (beta > 1 "
        "favours recall); one number for every language or one per language ({en: 3.0, ko: 1.0}: a category "
        "that is rare in one language's data and common in the other's)",
    )

    def beta(self, lang: str) -> float:
        """The F-beta used to place `lang`'s operating point (1.0 for a language the mapping leaves out)."""
        if isinstance(self.calibration_beta, dict):
            return self.calibration_beta.get(lang, 1.0)
        return self.calibration_beta

    @model_validator(mode="after")
    def _positive_betas(self) -> CategoryConfig:
        betas = (
            self.calibration_beta.values()
            if isinstance(self.calibration_beta, dict)
            else [self.calibration_beta]
        )
        if any(b <= 0 for b in betas):
            raise ValueError(f"calibration_beta must be > 0, got {self.calibration_beta}")
        return self

    @model_validator(mode="after")
    def _ordered(self) -> CategoryConfig:
        if self.ambiguous_threshold > self.threshold:
            raise ValueError(
                f"ambiguous_threshold ({self.ambiguous_threshold}) must not exceed threshold ({self.threshold})"
            )
        return self


class SafetySource(StrictModel):
    """A labelled data set mapped onto the taxonomy: its raw labels become category sets."""

    path: str = Field(description="file path; `data:` prefix resolves under the shared data dir")
    format: Literal["auto", "jsonl", "tsv", "csv"] = "auto"
    text_fields: dict[str, str] = Field(description="field name -> language tag, e.g. {text: ko}")
    label_field: str = Field(description="field with the raw label (a string or a list of strings)")
    categories: dict[str, list[str]] = Field(
        description="raw label -> categories it means ([] = harmless); rows with other labels are skipped"
    )
    applies_to: list[str] | None = Field(
        None,
        description="categories this source can label (positives and negatives); None = every category its mapping names",
    )
    subtypes: dict[str, str] = Field(
        default_factory=dict, description="raw label -> subtype (e.g. K-MHaS gender -> hate target 'gender')"
    )
    max_rows: int | None = Field(
        None, ge=1, description="read at most this many rows (quick builds and tests)"
    )
    weight: float = Field(1.0, gt=0, description="loss weight of this source's rows")
    exclude: str | None = Field(
        None,
        description="regex (case-insensitive): rows whose text matches are skipped (e.g. keep only comments without swear words as profanity negatives)",
    )

    @field_validator("exclude")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"exclude regex {value!r} does not compile: {exc}") from None
        return value


class MultiRiskConfig(StrictModel):
    """Seed: several high-risk categories at once -> escalate."""

    min_score: float = Field(
        0.35, gt=0, le=1, description="a high-risk category counts when its score is at least this"
    )
    count: int = Field(2, ge=2, description="this many counting categories escalate")


class SegmentConfig(StrictModel):
    """Segment-level harm: score sentences too and keep the worst (friendly padding cannot dilute)."""

    enabled: bool = Field(
        True,
        description="encode the sentences of multi-sentence texts in the same batch and take the max score",
    )
    max_segments: int = Field(
        8, ge=2, le=64, description="at most this many sentences per text (the longest) are encoded"
    )
    min_chars: int = Field(6, ge=1, description="shorter pieces are merged into the previous sentence")
    min_text_chars: int = Field(
        24,
        ge=0,
        description="shorter texts are scored whole only (little room to hide a sentence; keeps the encoder batch small)",
    )
    high_risk_only: bool = Field(
        True,
        description="take the sentence max for high-risk categories only (hate, violence, self-harm, crime); profanity stays a whole-text score (measured: sentence max on profanity costs K-MHaS precision)",
    )


class ContextConfig(StrictModel):
    """Context of use: counter-speech, negation, quoting, reporting and support talk are allowed."""

    enabled: bool = Field(
        True,
        description="learn a context-of-use score and damp the category scores by it (`context` rules damp them whatever this says)",
    )
    C: float = Field(
        16.0, gt=0, description="inverse L2 strength of the context logistic regression (embedding only)"
    )
    positive_head: str | None = Field(
        "emotion",
        description="head whose linear probabilities on the text's own vector tell a positive stance (None disables)",
    )
    positive_labels: list[str] = Field(
        default_factory=lambda: ["joy"], description="labels of positive_head that mean a positive stance"
    )
    positive_threshold: float = Field(
        0.5,
        gt=0,
        le=1,
        description="P(positive labels) at or above which the model's hate score is damped by rule_damping: praise of a group is not hate",
    )
    rule_damping: float = Field(
        0.3,
        ge=0,
        le=1,
        description="factor on the model scores of `categories` when a `context` rule (counter-speech, negated slander) fires",
    )
    data_rows: bool = Field(
        True,
        description="besides the example set, train on the data sets' rows: their hate as harmful, their unharmful rows as harmless",
    )
    categories: list[str] = Field(
        default_factory=lambda: ["hate", "profanity"],
        description="categories whose model scores are damped (identity mentions, negation and counter-speech are what trip hate)",
    )
    onset: float = Field(
        0.6,
        ge=0,
        lt=1,
        description="context scores above this damp the model's category scores linearly, to zero at 1.0 (rule hits carry their own `unless` idioms and are not damped)",
    )


class TargetConfig(StrictModel):
    """Hate needs a protected-group target (resources/safety/targets.yaml)."""

    enabled: bool = Field(
        True,
        description="multiply the hate score of texts naming no protected group by no_target_factor; the named group is the hate subtype",
    )
    category: str = Field("hate", description="the category that needs a target")
    file: str | None = Field(
        None, description="target lexicon YAML; None = packaged resources/safety/targets.yaml"
    )
    no_target_factor: float = Field(
        0.4,
        ge=0,
        le=1,
        description="factor on the model's hate score when no group is named (rule hits are not affected)",
    )


class TemplateConfig(StrictModel):
    """Identity-term templates (resources/safety/identity_templates.yaml): every protected group filled
    into neutral, positive and hateful frames, so naming a group is not, by itself, evidence of hate."""

    enabled: bool = Field(True, description="add the expanded templates to the training rows of `category`")
    file: str | None = Field(
        None, description="template YAML; None = packaged resources/safety/identity_templates.yaml"
    )
    category: str = Field(
        "hate",
        description="the category the rows train (positive for hateful frames, negative otherwise); other categories never see them",
    )
    weight: float = Field(
        2.0, gt=0, description="loss weight of each expanded row (each frame appears once per group)"
    )


class StanceConfig(StrictModel):
    """Stance toward a named group: does the text say something bad about it? (learned from the identity
    templates and the example set; consulted only when a protected group is named)."""

    enabled: bool = Field(
        True,
        description="learn the stance score and damp the hate score of clean texts that name a group in a benign way",
    )
    C: float = Field(
        4.0,
        gt=0,
        description="inverse L2 strength of the stance logistic regression (embedding only, both languages)",
    )
    threshold: float = Field(
        0.1,
        gt=0,
        lt=1,
        description="stance scores below this (worst sentence) count as a benign mention of the group",
    )
    factor: float = Field(
        0.4,
        ge=0,
        le=1,
        description="factor on the model's hate score of a benign mention (rule hits are not affected)",
    )
    max_profanity: float = Field(
        0.5,
        gt=0,
        le=1,
        description="only texts whose `profanity_category` score is below this are damped: abusive language keeps the data-trained judgement",
    )
    profanity_category: str = Field(
        "profanity", description="the category whose score marks abusive language"
    )
    praise_max: float = Field(
        0.5,
        gt=0,
        le=1,
        description="praise (context.positive_head) damps hate only where the stance score is below this: a joyful "
        "tone ('I love how <group> are too dumb to drive lol') does not excuse a hateful statement",
    )


class SafetyConfig(StrictModel):
    """The safety stage: taxonomy + policy, its training data and how it is fitted."""

    enabled: bool = Field(
        True,
        description="score the taxonomy and decide by its policy (false: rules and heads decide, as before)",
    )
    categories: dict[str, CategoryConfig] = Field(
        min_length=1, description="category name -> definition and policy; order is the output order"
    )
    sources: list[SafetySource] = Field(
        default_factory=list, description="labelled data sets mapped onto the categories (training)"
    )
    dev: list[SafetySource] = Field(
        default_factory=list,
        description="labelled data sets the build's evaluation measures the safety stage on",
    )
    examples_file: str | None = Field(
        None,
        description="the project's bilingual example set (YAML); None = packaged resources/safety/examples.yaml",
    )
    example_weight: float = Field(
        8.0,
        gt=0,
        description="loss weight of the example set's rows (few, hand-written, covering what the data sets lack)",
    )
    rule_score: float = Field(
        0.97, gt=0, le=1, description="score a category gets when one of its rules fires"
    )
    lexical: LexicalConfig = Field(
        default_factory=LexicalConfig,
        description="hashed character n-gram channel shared by the categories (C and max_iter unused)",
    )
    blend: Literal["stacked", "joint"] = Field(
        "stacked",
        description="how a lexical category combines its two channels: `stacked` fits a lexical and an embedding "
        "model on the training rows and weighs their logits on the calibration holdout (stacked generalisation); "
        "`joint` fits one model on [lexical ; embedding]",
    )
    calibration_fraction: float = Field(
        0.15,
        gt=0,
        lt=0.5,
        description="share of the data sources' texts held out to calibrate the scores (monovec.holdout: by a hash "
        "of the text, so an encoder fine-tuned with calibration_holdout >= this never saw them)",
    )
    min_calibration_positives: int = Field(
        15,
        ge=1,
        description="a (category, language) with fewer held-out positives keeps the raw score (see calibration_folds)",
    )
    calibration_folds: int = Field(
        5,
        ge=0,
        description="an embedding-only category without enough held-out positives (scored from the example set "
        "alone: violence, self-harm, crime) is measured on out-of-fold scores of the example set, its groups dealt "
        "into this many folds (a group's sentences and translations stay together), plus the held-out data rows: "
        "the build's fit report shows how it does on sentences it never saw; 0 or 1 skips it",
    )
    out_of_fold_calibration: bool = Field(
        False,
        description="also calibrate those categories on the out-of-fold scores (operating point by F-beta); off: "
        "measured on the frozen encoder, the functional suite fell 343 -> 331 and K-MHaS harmful F1 0.817 -> 0.797",
    )
    identity_templates: TemplateConfig = Field(
        default_factory=TemplateConfig,
        description="protected groups filled into neutral, positive and hateful frames (training rows of the hate category)",
    )
    stance: StanceConfig = Field(
        default_factory=StanceConfig,
        description="learned stance toward a named group: damps the hate score of benign mentions",
    )
    context: ContextConfig = Field(
        default_factory=ContextConfig,
        description="context of use: counter-speech, negation, quoting, reporting, praise",
    )
    targets: TargetConfig = Field(
        default_factory=TargetConfig, description="hate needs a named protected group (the target lexicon)"
    )
    multi_risk: MultiRiskConfig = Field(
        default_factory=MultiRiskConfig, description="several high-risk categories at once escalate"
    )
    segments: SegmentConfig = Field(
        default_factory=SegmentConfig, description="segment-level harm: the worst sentence counts"
    )

    @model_validator(mode="after")
    def _known(self) -> SafetyConfig:
        known = set(self.categories)
        if self.identity_templates.enabled and self.identity_templates.category not in known:
            raise ValueError(
                f"identity_templates.category {self.identity_templates.category!r} is not in the taxonomy {sorted(known)}"
            )
        if set(self.context.categories) - known:
            raise ValueError(
                f"context.categories {sorted(set(self.context.categories) - known)} are not in the taxonomy {sorted(known)}"
            )
        for src in [*self.sources, *self.dev]:
            named = {c for cats in src.categories.values() for c in cats} | set(src.applies_to or [])
            if named - known:
                raise ValueError(
                    f"source {src.path}: categories {sorted(named - known)} are not in the taxonomy {sorted(known)}"
                )
        return self

    @property
    def names(self) -> list[str]:
        return list(self.categories)

    def action(self, category: str, subtype: str | None) -> Policy:
        cfg = self.categories[category]
        return cfg.subtype_policy.get(subtype or "", cfg.policy)
