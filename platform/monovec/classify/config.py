"""The classifier's configuration: one model, its heads, and every stage's knobs.

A head is defined entirely here (labels, data, thresholds), so new label sets need no code.
Field paths are what Tune spaces name (e.g. `heads.emotion.gate.margin`).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from monovec.classify.data import DataSource
from monovec.classify.escalation import EscalationConfig
from monovec.classify.gate import GateConfig
from monovec.classify.harm import LexicalConfig
from monovec.classify.linear import LinearHeadConfig
from monovec.classify.normalize import NormalizeConfig
from monovec.classify.prototypes import PrototypeConfig
from monovec.classify.rules import RuleConfig
from monovec.classify.taxonomy import SafetyConfig
from monovec.config import StrictModel
from monovec.embed.text import EncoderConfig


class HarmConfig(StrictModel):
    """Derived harmful / not-harmful decision for a head (the ethics head's block/allow)."""

    safe_labels: list[str] = Field(
        default_factory=lambda: ["not_hate"], description="head labels that mean not harmful"
    )
    extra_train: list[DataSource] = Field(
        default_factory=list, description="binary sources whose labels map to 'harmful'/'safe'"
    )
    block_threshold: float = Field(
        0.5, ge=0, le=1, description="P(harmful) at or above which the text is blocked"
    )
    escalate_threshold: float = Field(
        0.35, ge=0, le=1, description="P(harmful) in [this, block) is ambiguous high risk: escalate"
    )
    lexical: LexicalConfig = Field(default_factory=LexicalConfig)

    @model_validator(mode="after")
    def _ordered(self) -> HarmConfig:
        if self.escalate_threshold > self.block_threshold:
            raise ValueError("escalate_threshold must not exceed block_threshold")
        return self


class HeadConfig(StrictModel):
    labels: list[str] = Field(min_length=2, description="the head's classes; order is the output order")
    train: list[DataSource] = Field(min_length=1)
    dev: list[DataSource] = Field(
        default_factory=list, description="held-out files for the build's evaluation"
    )
    max_per_class: int | None = Field(
        None, ge=1, description="cap training examples per (class, language): quick builds"
    )
    prototypes: PrototypeConfig = Field(default_factory=PrototypeConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    linear: LinearHeadConfig = Field(default_factory=LinearHeadConfig)
    escalate_uncertain: bool = Field(
        True, description="escalate when neither prototypes nor the linear head are sure"
    )
    harm: HarmConfig | None = Field(None, description="set on the head that decides block/allow")

    @model_validator(mode="after")
    def _labels(self) -> HeadConfig:
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"duplicate labels in {self.labels}")
        if self.harm is not None:
            unknown = set(self.harm.safe_labels) - set(self.labels)
            if unknown:
                raise ValueError(f"harm.safe_labels {sorted(unknown)} are not head labels")
        return self


class ContextConfig(StrictModel):
    alpha: float = Field(
        0.8, ge=0, le=1, description="weight of the current text vs the mean of the session's last k"
    )
    k: int = Field(5, ge=0, le=100, description="session embeddings remembered (0 disables context)")
    max_sessions: int = Field(10_000, ge=1, description="LRU bound on remembered sessions")


class ClassifierConfig(StrictModel):
    name: str = Field("monovec-classifier", description="registered model name")
    seed: int = 0
    max_text_chars: int = Field(20_000, ge=1, description="longer inputs are rejected with a clear error")
    encoder: EncoderConfig = Field(default_factory=EncoderConfig)
    normalize: NormalizeConfig = Field(default_factory=NormalizeConfig)
    rules: RuleConfig = Field(default_factory=RuleConfig)
    context: ContextConfig = Field(default_factory=ContextConfig)
    escalation: EscalationConfig = Field(default_factory=EscalationConfig)
    heads: dict[str, HeadConfig] = Field(min_length=1)
    safety: SafetyConfig | None = Field(
        None,
        description="harm taxonomy, its policy and its training data; None = rules and head harm decide (legacy)",
    )

    @model_validator(mode="after")
    def _one_harm(self) -> ClassifierConfig:
        if sum(h.harm is not None for h in self.heads.values()) > 1:
            raise ValueError("at most one head may define `harm` (the block/allow decision)")
        return self
