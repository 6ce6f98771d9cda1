"""The unified pipeline: normalise -> ONE encoder batch -> every head + the safety stage -> decision -> escalation.

One forward pass of the encoder serves every head (and the vector memory): that is the point of
the design, and what `bench/classifier_unified_vs_separate.py` measures. A text with two or more
sentences adds its sentences to the same batch, for segment-level harm only.

The decision has one source of truth: the safety stage (rules + taxonomy scores -> policy, see
`policy.py`). When it allows, a head configured with `escalate_uncertain` may still escalate an
item it cannot resolve (and a legacy head `harm` config may block), as before the taxonomy.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from monovec.classify.escalation import EscalationRequest, Escalator, build_escalator
from monovec.classify.head import HeadOutput
from monovec.classify.model import ClassifierModel
from monovec.classify.normalize import KoreanNormalizer
from monovec.classify.policy import SafetyStage, SafetyVerdict, positive_stance
from monovec.classify.rules import RuleEngine
from monovec.classify.segment import split_segments
from monovec.embed.text import TextEncoder, build_encoder, l2_normalise


class InputError(ValueError):
    """Bad input from a caller: the message names the problem; `code` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    def as_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": str(self)}}


class ClassifierPipeline:
    """A built classifier answering texts: normalise, embed once, run every head and the safety stage,
    decide, escalate what is unsure.

    Args:
        model: a loaded model directory (`ClassifierModel.load`).
        encoder: the text encoder (default: built from the model's encoder config; its name must be the
            one the model was built with).
        escalator: where unsure items go (default: the model's escalation config, created lazily).

    Raises:
        ValueError: when `encoder` is not the encoder the model was built with.

    `classify` / `classify_batch` return the documented answer (docs/classifier.md "Answer"):
    request_id, model_version, decision (allow / block / escalate), stage, reason, per-head label,
    score (cosine or probability in [0, 1]), status and source, the safety verdict, latency_ms.
    """

    def __init__(
        self,
        model: ClassifierModel,
        encoder: TextEncoder | None = None,
        escalator: Escalator | None = None,
    ) -> None:
        cfg = model.config
        self.model = model
        self.encoder = encoder or build_encoder(cfg.encoder)
        expected = model.manifest.get("encoder", {}).get("name")
        if expected and expected != self.encoder.name:
            raise ValueError(f"model was built with encoder {expected!r}, got {self.encoder.name!r}")
        self.normalizer = KoreanNormalizer(cfg.normalize)
        self.rules = RuleEngine(cfg.rules)
        self.safety = (
            SafetyStage(model.safety, self.rules, positive_stance(model.safety.config, model.heads))
            if model.safety is not None
            else None
        )
        self._escalator = escalator
        self._sessions: OrderedDict[str, deque[np.ndarray]] = OrderedDict()

    @property
    def escalator(self) -> Escalator:
        if self._escalator is None:  # lazy: evaluation never escalates and should not create a queue file
            self._escalator = build_escalator(self.model.config.escalation)
        return self._escalator

    def warm_up(self) -> None:
        """Pay the one-time set-up (the encoder's first graph run, lazy imports, the harm scorer's
        hasher) now, so the first real text's `latency_ms` measures classification, not loading."""
        self.classify_batch(["warm up"], escalate=False)

    def validate(self, text: object) -> str:
        """Normalised text, or InputError naming what is wrong with it."""
        if not isinstance(text, str):
            raise InputError("invalid_type", f"text must be a string, got {type(text).__name__}")
        limit = self.model.config.max_text_chars
        if len(text) > limit:
            raise InputError("text_too_long", f"text has {len(text)} characters; the limit is {limit}")
        norm = self.normalizer(text)
        if not norm:
            raise InputError("empty_text", "text is empty or only whitespace")
        return norm

    def classify(
        self, text: str, session_id: str | None = None, request_id: str | None = None, escalate: bool = True
    ) -> dict[str, Any]:
        result = self.classify_batch([text], [session_id], [request_id], escalate=escalate)[0]
        if "error" in result:
            raise InputError(result["error"]["code"], result["error"]["message"])
        return result

    def classify_batch(
        self,
        texts: Sequence[object],
        session_ids: Sequence[str | None] | None = None,
        request_ids: Sequence[str | None] | None = None,
        escalate: bool = True,
        with_embeddings: bool = False,
    ) -> list[dict[str, Any]]:
        """One answer per input, in order; a bad input gets an error entry and the rest are classified.

        A bad input (not a string, longer than `classifier.max_text_chars` characters, empty after
        normalisation) gets `{"error": {"code", "message"}}` instead of raising. `with_embeddings` adds
        each text's vector (the encoder's dimension, float32, unit length) under "embedding" (for
        Chroma / drift), so the caller never re-encodes. `latency_ms` is each answer's share of the
        batch's wall time in milliseconds.
        """
        t0 = time.perf_counter()
        n = len(texts)
        session_ids = list(session_ids or [None] * n)
        request_ids = list(request_ids or [None] * n)
        results: list[dict[str, Any] | None] = [None] * n
        good: list[int] = []
        norms: list[str] = []
        for i, text in enumerate(texts):
            try:
                norms.append(self.validate(text))
                good.append(i)
            except InputError as exc:
                results[i] = exc.as_dict()
        if good:
            segments = self.segments(norms)
            flat = [s for segs in segments for s in segs]
            both = self.encoder.encode(norms + flat)  # one batch: whole texts, then their sentences
            raw, seg_x = both[: len(norms)], self._split_rows(both[len(norms) :], segments)
            x = self._with_context(raw, [session_ids[i] for i in good])
            decided = self.decide(
                x,
                norms,
                [request_ids[i] for i in good],
                escalate=escalate,
                texts=[texts[i] for i in good],
                raw_x=raw,
                segments=segments,
                segment_x=seg_x,
            )
            for row, (i, r) in enumerate(zip(good, decided, strict=True)):
                if with_embeddings:
                    r["embedding"] = x[row]
                results[i] = r
        latency = (time.perf_counter() - t0) * 1000.0
        for r in results:
            if r is not None and "error" not in r:
                r["latency_ms"] = round(latency, 3)
        return [r for r in results if r is not None]

    def segments(self, norms: Sequence[str]) -> list[list[str]]:
        """Per normalised text, the sentences the safety stage scores alone ([] for one sentence)."""
        cfg = self.model.config.safety
        if self.safety is None or cfg is None or not cfg.segments.enabled:
            return [[] for _ in norms]
        seg = cfg.segments
        return [
            split_segments(t, seg.max_segments, seg.min_chars) if len(t) >= seg.min_text_chars else []
            for t in norms
        ]

    @staticmethod
    def _split_rows(x: np.ndarray, segments: list[list[str]]) -> list[np.ndarray]:
        out, pos = [], 0
        for segs in segments:
            out.append(x[pos : pos + len(segs)])
            pos += len(segs)
        return out

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """The one vector per text the heads see (also what goes to Chroma and the drift monitor)."""
        return self.encoder.encode([self.validate(t) for t in texts])

    def _with_context(self, x: np.ndarray, session_ids: list[str | None]) -> np.ndarray:
        ctx = self.model.config.context
        if ctx.k == 0:
            return x
        out = x.copy()
        for row, sid in enumerate(session_ids):
            if sid is None:
                continue
            hist = self._sessions.get(sid)
            if hist:
                mean = np.mean(np.stack(hist), axis=0)
                out[row] = l2_normalise(ctx.alpha * x[row] + (1.0 - ctx.alpha) * mean)
            else:
                hist = deque(maxlen=ctx.k)
            hist.append(x[row])
            self._sessions[sid] = hist
            self._sessions.move_to_end(sid)
            while len(self._sessions) > ctx.max_sessions:
                self._sessions.popitem(last=False)
        return out

    def decide(
        self,
        x: np.ndarray,
        norms: Sequence[str],
        request_ids: Sequence[str | None] | None = None,
        escalate: bool = True,
        texts: Sequence[object] | None = None,
        raw_x: np.ndarray | None = None,
        segments: Sequence[Sequence[str]] | None = None,
        segment_x: Sequence[np.ndarray] | None = None,
    ) -> list[dict[str, Any]]:
        """Everything after the embedding; Tune and evaluation call this on cached vectors.

        x: what the heads see (session context mixed in); raw_x: each text's own vector, which the
        safety stage scores (default x); segments / segment_x: sentences and their vectors.
        """
        heads = {name: head.predict(x, list(norms)) for name, head in self.model.heads.items()}
        verdicts = self.assess(norms, x if raw_x is None else raw_x, segments, segment_x)
        out = []
        for i, norm in enumerate(norms):
            rid = (request_ids[i] if request_ids else None) or uuid.uuid4().hex
            per_head = {name: outs[i] for name, outs in heads.items()}
            verdict = verdicts[i] if verdicts is not None else None
            out.append(
                self._decide_one(rid, norm, per_head, escalate, str(texts[i]) if texts else norm, verdict)
            )
        return out

    def assess(
        self,
        norms: Sequence[str],
        x: np.ndarray,
        segments: Sequence[Sequence[str]] | None = None,
        segment_x: Sequence[np.ndarray] | None = None,
    ) -> list[SafetyVerdict] | None:
        """The safety verdict per text (None when the model has no safety stage)."""
        if self.safety is None:
            return None
        return self.safety.assess(norms, x, segments, segment_x)

    def _decide_one(
        self,
        rid: str,
        norm: str,
        heads: dict[str, HeadOutput],
        escalate: bool,
        raw: str,
        verdict: SafetyVerdict | None = None,
    ) -> dict[str, Any]:
        reasons: list[str] = []
        decision, stage = "allow", "prototype"
        if any(h.source == "linear_head" for h in heads.values()):
            stage = "linear_head"
        to_escalate = False
        rule = self.rules.check(norm) if verdict is None else None
        if verdict is not None and verdict.decision != "allow":
            decision, stage = verdict.decision, "rules" if verdict.by_rule else "linear_head"
            reasons.extend(verdict.reasons)
            to_escalate = decision == "escalate"
        elif rule is not None:
            decision, stage = rule.action or "escalate", "rules"
            reasons.append(f"rule {rule.rule_id} ({rule.category}): {rule.reason}")
            to_escalate = decision == "escalate"
        else:
            if verdict is not None:
                reasons.extend(verdict.reasons)  # flags: allowed, named
            for name, h in heads.items():
                harm = self.model.heads[name].config.harm
                if harm is not None and h.harm_score is not None:
                    if h.harm_score >= harm.block_threshold:
                        decision = "block"
                        reasons.append(f"{name}: P(harmful)={h.harm_score:.2f} >= {harm.block_threshold}")
                    elif h.harm_score >= harm.escalate_threshold:
                        to_escalate = True
                        reasons.append(f"{name}: ambiguous high risk, P(harmful)={h.harm_score:.2f}")
            if decision != "block":
                for name, h in heads.items():
                    if not h.resolved and self.model.heads[name].config.escalate_uncertain:
                        to_escalate = True
                        reasons.append(f"{name}: {h.status}, linear head p={h.confidence:.2f}")
            if to_escalate and decision != "block":
                # `llm` only when the item really goes to the escalation backend (not with escalate=False)
                decision, stage = "escalate", "llm" if escalate else stage
        if to_escalate and escalate:
            decision, stage = self._escalate(rid, raw, heads, reasons, decision, stage)
        if not reasons:
            reasons.append("all heads confident" if stage == "prototype" else "linear head confident")
        out = {
            "request_id": rid,
            "model_version": self.model.version,
            "decision": decision,
            "stage": stage,
            "reason": "; ".join(reasons),
            "heads": {name: h.public() for name, h in heads.items()},
        }
        if verdict is not None:
            out["safety"] = verdict.public()
        return out

    def _escalate(
        self, rid: str, raw: str, heads: dict[str, HeadOutput], reasons: list[str], decision: str, stage: str
    ) -> tuple[str, str]:
        req = EscalationRequest(
            request_id=rid,
            text=raw,
            reason="; ".join(reasons),
            heads={name: self.model.heads[name].labels for name in heads},
            candidates={name: h.scores for name, h in heads.items()},
            model_version=self.model.version,
        )
        res = self.escalator.escalate(req)
        if res.status == "answered":
            for name, label in res.labels.items():
                if name in heads:
                    heads[name].label, heads[name].source, heads[name].resolved = label, "llm", True
            reasons.append(f"answered by {res.backend}")
            return (
                res.decision or "allow"
            ) if decision != "block" else decision, "llm" if stage != "rules" else stage
        reasons.append(f"queued for review #{res.queue_id}" + (f" ({res.error})" if res.error else ""))
        return decision if decision == "block" else "escalate", stage
