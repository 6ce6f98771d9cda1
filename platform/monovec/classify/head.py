"""One head at inference: prototypes -> confidence gate -> linear head -> (maybe) escalate.

The head never re-embeds: it takes the one vector the pipeline computed and answers from it. The
prototype answer is used when the gate says `confident`; otherwise the linear head is consulted and
trusted above its threshold; otherwise the head is unresolved and, if configured, escalated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from monovec.classify.config import HeadConfig
from monovec.classify.gate import gate
from monovec.classify.harm import HarmScorer
from monovec.classify.linear import LinearHead
from monovec.classify.prototypes import PrototypeSet

Source = Literal["prototype", "linear_head", "llm", "none"]


@dataclass
class HeadOutput:
    label: str
    score: float
    status: str
    labels: list[str]
    source: Source
    resolved: bool
    confidence: float
    proto_label: str
    linear_label: str
    harm_score: float | None = None
    scores: dict[str, float] = field(default_factory=dict)

    def public(self) -> dict:
        out = {
            "label": self.label,
            "score": round(self.score, 4),
            "status": self.status,
            "labels": self.labels,
            "source": self.source,
        }
        if self.harm_score is not None:
            out["harm_score"] = round(self.harm_score, 4)
        return out


class Head:
    def __init__(
        self,
        name: str,
        config: HeadConfig,
        prototypes: PrototypeSet,
        linear: LinearHead,
        harm: HarmScorer | None = None,
    ) -> None:
        if prototypes.labels != config.labels or linear.labels != config.labels:
            raise ValueError(f"head {name!r}: prototype/linear labels do not match the config labels")
        if (config.harm is None) != (harm is None):
            raise ValueError(f"head {name!r}: harm config and harm model must come together")
        self.name, self.config, self.prototypes, self.linear, self.harm = (
            name,
            config,
            prototypes,
            linear,
            harm,
        )

    @property
    def labels(self) -> list[str]:
        return self.config.labels

    def predict(self, x: np.ndarray, texts: list[str] | None = None) -> list[HeadOutput]:
        """x: (n, d) embeddings (+ the normalised texts, which the harm scorer's lexical channel reads)."""
        proto = self.prototypes.scores(x)
        proba = self.linear.proba(x)
        harm = (
            self.harm.proba(texts if texts is not None else [""] * len(x), x)
            if self.harm is not None
            else None
        )
        out = []
        for i in range(len(x)):
            g = gate(proto[i], self.config.gate)
            lin_top = int(np.argmax(proba[i]))
            lin_p = float(proba[i, lin_top])
            overridden = (
                self.config.linear.overrides_prototype
                and lin_top != g.top
                and lin_p >= self.config.linear.threshold
            )
            if g.status == "confident" and not overridden:
                label, score, source, resolved = self.labels[g.top], g.score, "prototype", True
            else:
                resolved = lin_p >= self.config.linear.threshold
                label, score, source = self.labels[lin_top], lin_p, "linear_head"
            out.append(
                HeadOutput(
                    label=label,
                    score=float(score),
                    status=g.status,
                    labels=[label]
                    + [
                        self.labels[j] for j in g.labels if self.labels[j] != label
                    ],  # label is always in labels
                    source=source,
                    resolved=resolved,
                    confidence=lin_p,
                    proto_label=self.labels[g.top],
                    linear_label=self.labels[lin_top],
                    harm_score=None if harm is None else float(harm[i]),
                    scores={lab: float(proba[i, j]) for j, lab in enumerate(self.labels)},
                )
            )
        return out
