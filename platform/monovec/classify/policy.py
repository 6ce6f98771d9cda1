"""The safety decision: taxonomy scores + rule hits -> allow / block / escalate, with reasons.

Order of evidence for one text:
1. Rules (resources/rules.yaml) name a category (and subtype); a hit raises that category's score
   to `rule_score`. They are the auditable floor for explicit high risk.
2. The safety model scores every category on the whole text and on each sentence; the worst
   (max) counts, so friendly padding cannot dilute a harmful sentence.
3. Per category: score >= threshold -> its policy (block / escalate / flag, subtype overrides);
   a high-risk category in the ambiguous band -> escalate; others in the band -> flag.
4. Several high-risk categories at once -> at least escalate (seed's multiple-risk rule).
The decision is the most severe action; `flag` is an allow that names the category.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from monovec.classify.head import Head
from monovec.classify.linear import LinearHead
from monovec.classify.rules import RuleEngine, RuleResult
from monovec.classify.safety import SafetyModel
from monovec.classify.segment import language_of
from monovec.classify.targets import target_lexicon
from monovec.classify.taxonomy import SEVERITY, SafetyConfig

CONTEXT = "context"  # rule category that damps scores instead of raising one
RECLAIMED = "reclaimed"  # context subtype: a member of the group speaking (honoured only when no other group is named)


@dataclass
class SafetyVerdict:
    """What the safety stage says about one text (the answer's `safety` object)."""

    decision: str  # allow | block | escalate
    categories: dict[str, float]
    reasons: list[str] = field(default_factory=list)
    subtypes: dict[str, str] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    by_rule: bool = False  # a rule hit decided (stage "rules")

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "decision": self.decision,
            "categories": {k: round(v, 4) for k, v in self.categories.items()},
            "reasons": list(self.reasons),
        }
        if self.subtypes:
            out["subtypes"] = dict(self.subtypes)
        if self.flags:
            out["flags"] = list(self.flags)
        return out


def decide(
    config: SafetyConfig,
    scores: dict[str, float],
    hits: Sequence[RuleResult],
    subtypes: dict[str, str],
    context: float = 0.0,
    settled: set[str] | frozenset[str] = frozenset(),
) -> SafetyVerdict:
    """Apply the policy to one text's calibrated category scores (already damped by `context`, the
    context-of-use score) and its rule hits.

    `settled`: categories whose model score was damped on specific evidence (no protected group named,
    a benign mention of one, a counter-speech or negation rule). Their damped score still decides at
    or above the threshold, but it is not "ambiguous": it neither escalates from the ambiguous band nor
    counts toward several risks at once (otherwise damping a confident 0.9 to 0.36 would escalate)."""
    scores = dict(scores)
    rule_cats: dict[str, RuleResult] = {}
    for hit in hits:  # per category, the hit whose subtype has the most severe action
        if hit.category not in scores:
            continue
        prev = rule_cats.get(hit.category)
        if (
            prev is None
            or SEVERITY[config.action(hit.category, hit.subtype)]
            > SEVERITY[config.action(hit.category, prev.subtype)]
        ):
            rule_cats[hit.category] = hit
            scores[hit.category] = max(scores[hit.category], config.rule_score)
            if hit.subtype:
                subtypes[hit.category] = hit.subtype
    reasons: list[str] = []
    actions: dict[str, str] = {}
    for name, cat in config.categories.items():
        s = scores[name]
        sub = subtypes.get(name)
        label = name + (f" ({sub})" if sub else "")
        if s >= cat.threshold:
            action = config.action(name, sub)
            why = (
                f"rule {rule_cats[name].rule_id} matched '{rule_cats[name].matched}'"
                if name in rule_cats
                else f"score {s:.2f} >= {cat.threshold}"
            )
        elif s >= cat.ambiguous_threshold and name not in settled:
            action = "escalate" if cat.high_risk else "flag"
            why = f"{'ambiguous high risk' if cat.high_risk else 'borderline'}, score {s:.2f}"
        else:
            continue
        actions[name] = action
        reasons.append(f"{label}: {why} -> {'allow and flag' if action == 'flag' else action}")
    decision = max((a for a in actions.values() if a != "flag"), key=SEVERITY.__getitem__, default="allow")
    by_rule = any(a == decision and n in rule_cats for n, a in actions.items())
    risky = [
        n
        for n, c in config.categories.items()
        if c.high_risk
        and scores[n] >= config.multi_risk.min_score
        and (n not in settled or scores[n] >= c.threshold)
    ]
    if len(risky) >= config.multi_risk.count:
        if SEVERITY[decision] < SEVERITY["escalate"]:
            decision, by_rule = "escalate", False
            reasons.append(
                "several risks at once: " + ", ".join(f"{n} {scores[n]:.2f}" for n in risky) + " -> escalate"
            )
    flags = [n for n, a in actions.items() if a == "flag"]
    if context >= config.context.onset and config.context.enabled:
        reasons.append(
            f"context of use: counter-speech, negation, quoting, reporting or support talk ({context:.2f}); model scores damped"
        )
    return SafetyVerdict(
        decision,
        scores,
        reasons,
        {k: v for k, v in subtypes.items() if v},
        flags,
        by_rule and decision != "allow",
    )


def positive_stance(config: SafetyConfig, heads: Mapping[str, Head]) -> tuple[LinearHead, list[int]] | None:
    """The linear head and label indices the safety stage reads a positive stance from (safety.context)."""
    name = config.context.positive_head
    if not name or name not in heads:
        return None
    head = heads[name]
    idx = [head.labels.index(label) for label in config.context.positive_labels if label in head.labels]
    return (head.linear, idx) if idx else None


class SafetyStage:
    """Scores a batch (whole texts and their sentences) and applies the policy to each text."""

    def __init__(
        self, model: SafetyModel, rules: RuleEngine, positive: tuple[LinearHead, list[int]] | None = None
    ) -> None:
        self.model = model
        self.config = model.config
        self.rules = rules
        self.positive = positive  # (a head's linear head, indices of its positive labels)
        tc = self.config.targets
        self.targets = (
            target_lexicon(tc.file) if tc.enabled and tc.category in self.model.categories else None
        )

    def _other_group(self, hit: RuleResult, norm: str, lang: str) -> bool:
        """An in-group hit ("as a gay man ...") speaks for its own group only: True when the rest of the
        text names a protected group, whose hate the speaker's membership does not excuse."""
        return (
            hit.subtype == RECLAIMED
            and self.targets is not None
            and self.targets.find(norm.replace(hit.matched, " "), lang) is not None
        )

    def _context(self, x: np.ndarray) -> np.ndarray:
        return self.model.context(x) if self.config.context.enabled else np.zeros(len(x), np.float32)

    def _positive(self, x: np.ndarray) -> np.ndarray:
        """Per row: does the positive-stance head read praise (P(positive labels) >= threshold)?"""
        if self.positive is None or not self.config.context.positive_head or not len(x):
            return np.zeros(len(x), bool)
        linear, idx = self.positive
        return linear.proba(x)[:, idx].sum(axis=1) >= self.config.context.positive_threshold

    def _praise(self, scores: np.ndarray, positive: np.ndarray, stance: np.ndarray | None) -> np.ndarray:
        """Praise of a group is not hate: damp the hate column of positive rows, unless the stance model
        reads the row as hateful (a joyful tone or "lol" must not excuse a hateful statement)."""
        if stance is not None:
            positive = positive & (stance < self.config.stance.praise_max)
        if self.config.targets.category in self.model.categories and positive.any():
            scores = scores.copy()
            scores[positive, self.model.categories.index(self.config.targets.category)] *= (
                self.config.context.rule_damping
            )
        return scores

    def _apply(self, scores: np.ndarray, ctx: np.ndarray, damped: np.ndarray) -> np.ndarray:
        """Damp the `damped` columns: factor 1 below the onset, falling linearly to 0 at context 1.0."""
        onset = self.config.context.onset
        factor = np.clip((1.0 - ctx) / (1.0 - onset), 0.0, 1.0)
        out = scores.copy()
        out[:, damped] *= factor[:, None]
        return out

    def assess(
        self,
        norms: Sequence[str],
        x: np.ndarray,
        segments: Sequence[Sequence[str]] | None = None,
        seg_x: Sequence[np.ndarray] | None = None,
    ) -> list[SafetyVerdict]:
        """norms: normalised texts; x: their own embeddings (no session context); segments[i] the
        sentences of text i (may be empty) with embeddings seg_x[i]."""
        langs = [language_of(t) for t in norms]
        names = self.model.categories
        flat = (
            [(i, s) for i, segs in enumerate(segments) for s in segs]
            if segments is not None and seg_x is not None
            else []
        )
        sx = np.concatenate([np.atleast_2d(v) for v in seg_x if len(v)]) if flat else x[:0]
        # one scoring call for the texts and their sentences (one lexical transform, not two)
        both = self.model.scores(
            list(norms) + [s for _, s in flat], np.concatenate([x, sx]), langs + [langs[i] for i, _ in flat]
        )
        ctx_whole = self._context(x)
        damped = np.array([n in self.config.context.categories for n in self.model.categories])
        positive = self._positive(x)
        stance = self.model.stance(x) if self.config.stance.enabled else None  # becomes the worst sentence's
        whole = self._praise(self._apply(both[: len(norms)], ctx_whole, damped), positive, stance)
        worst = whole.copy()
        best_row: list[np.ndarray] = [x[i] for i in range(len(norms))]
        if flat:
            # each sentence is damped by its own context: friendly padding must not excuse it
            ss = self._apply(both[len(norms) :], self._context(sx), damped)
            seg_stance = self.model.stance(sx) if stance is not None else None
            # each sentence's own praise and stance: padding cannot excuse the hateful one
            ss = self._praise(ss, self._positive(sx), seg_stance)
            if self.config.segments.high_risk_only:
                ss[:, ~np.array([self.config.categories[n].high_risk for n in self.model.categories])] = 0.0
            for k, (i, _s) in enumerate(flat):
                if ss[k].max() > worst[i].max():
                    best_row[i] = sx[k]
                worst[i] = np.maximum(worst[i], ss[k])
                if seg_stance is not None:
                    stance[i] = max(stance[i], seg_stance[k])
        out = []
        names = self.model.categories
        for i, norm in enumerate(norms):
            hits = self.rules.check_all(norm)
            context_hits = [
                h for h in hits if h.category == CONTEXT and not self._other_group(h, norm, langs[i])
            ]
            settled: set[str] = set()
            if context_hits:  # talking ABOUT harm (condemning, denying, reporting it) or an idiom: damp the
                # model scores, never the rules; each hit damps its own categories or the config's
                cats = {c for h in context_hits for c in (h.damps or self.config.context.categories)}
                cols = np.array([n in cats for n in names])
                worst[i, cols] *= self.config.context.rule_damping
                settled.update(c for c in cats if c in names)
            target = None
            tj = names.index(self.config.targets.category) if self.targets is not None else -1
            sc = self.config.stance
            pj = names.index(sc.profanity_category) if sc.profanity_category in names else -1
            matters = (
                min(
                    self.config.categories[self.config.targets.category].ambiguous_threshold,
                    self.config.multi_risk.min_score,
                )
                if tj >= 0
                else 1.0
            )
            benign = False
            if (
                tj >= 0 and worst[i, tj] >= matters
            ):  # hate is aimed at a protected group: no group named, little hate
                target = self.targets.find(norm, langs[i])
                if target is None:
                    worst[i, tj] *= self.config.targets.no_target_factor
                    settled.add(names[tj])
                elif (
                    stance is not None
                    and stance[i] < sc.threshold
                    and (pj < 0 or worst[i, pj] < sc.max_profanity)
                ):
                    worst[i, tj] *= (
                        sc.factor
                    )  # a clean text that names the group without saying anything bad about it
                    benign = True
                    settled.add(names[tj])
            scores = {n: float(worst[i, j]) for j, n in enumerate(names)}
            subtypes = {}
            for j, n in enumerate(names):
                if worst[i, j] >= self.config.categories[n].ambiguous_threshold:
                    st = self.model.subtype(n, best_row[i])
                    if st:
                        subtypes[n] = st
            if target is not None:
                subtypes[self.config.targets.category] = target
            verdict = decide(self.config, scores, hits, subtypes, float(ctx_whole[i]), settled)
            if benign:
                verdict.reasons.append(
                    f"stance: a benign mention of {target} ({stance[i]:.2f} < {sc.threshold}); hate score damped"
                )
            if positive[i]:
                verdict.reasons.append(
                    f"context of use: positive stance ({self.config.context.positive_head}); hate score damped"
                )
            if context_hits:
                verdict.reasons.append(
                    f"context of use: rule {context_hits[0].rule_id} ({context_hits[0].subtype}) matched '{context_hits[0].matched}'; model scores damped"
                )
            out.append(verdict)
        return out
