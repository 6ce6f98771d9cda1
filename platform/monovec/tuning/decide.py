"""The classifier's decision logic on whole arrays: what `Head.predict` + `ClassifierPipeline.decide`
do row by row, vectorised so one Tune trial scores ~13k dev items in well under a second.

Kept deliberately literal (same order of checks, same float precision as `gate()`), and
`tests/unit/test_tune_objective.py` checks it against the row-by-row library on a real model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monovec.classify.gate import STATUSES, GateConfig

CONFIDENT, AMBIGUOUS, LOW, UNKNOWN = (
    STATUSES.index(s) for s in ("confident", "ambiguous", "low_confidence", "unknown")
)


def gate_arrays(scores: np.ndarray, cfg: GateConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(top class, status index into STATUSES, multi-label mask) for every row, as `gate()` decides.

    `gate()` compares python floats (float64 of the float32 scores) for the status and the float32
    scores themselves for the multi-label threshold; both precisions are kept here.
    """
    top = np.argmax(scores, axis=1)  # first maximum == the stable argsort's first entry
    ordered = -np.sort(-scores.astype(np.float64), axis=1)
    s1 = ordered[:, 0]
    s2 = ordered[:, 1] if scores.shape[1] > 1 else np.full(len(scores), -1.0)
    status = np.where(
        s1 < cfg.T_unknown,
        UNKNOWN,
        np.where(s1 - s2 < cfg.margin, AMBIGUOUS, np.where(s1 >= cfg.T_max, CONFIDENT, LOW)),
    )
    multi = (
        scores >= np.float32(cfg.multi_label_threshold)
        if scores.dtype == np.float32
        else scores >= cfg.multi_label_threshold
    )
    return top, status, multi


@dataclass
class HeadArrays:
    """One head's answer for every item: what `HeadOutput` holds, column-wise."""

    label: np.ndarray  # class index the head reports
    status: np.ndarray  # index into STATUSES
    resolved: np.ndarray  # prototype confident, or linear head above its threshold
    confidence: np.ndarray  # top linear-head probability (what evaluation ranks AURC by)
    labels_mask: np.ndarray  # (n, C) multi-label answer (always includes `label`)
    harm: np.ndarray | None  # P(harmful), the harm head only


def head_arrays(
    proto_scores: np.ndarray,
    proba: np.ndarray,
    gate_cfg: GateConfig,
    linear_threshold: float,
    harm: np.ndarray | None = None,
    overrides_prototype: bool = False,
) -> HeadArrays:
    """`overrides_prototype`: as `LinearHeadConfig.overrides_prototype` (a sure linear head beats a
    disagreeing confident prototype), so the tuner scores exactly what `Head.predict` answers."""
    top, status, multi = gate_arrays(proto_scores, gate_cfg)
    lin_top = np.argmax(proba, axis=1)
    lin_p = proba[np.arange(len(proba)), lin_top].astype(np.float64)
    confident = status == CONFIDENT
    if overrides_prototype:
        confident = confident & ~((lin_top != top) & (lin_p >= linear_threshold))
    label = np.where(confident, top, lin_top)
    resolved = confident | (lin_p >= linear_threshold)
    multi = multi.copy()
    multi[np.arange(len(label)), label] = True  # the reported label is always among the labels
    return HeadArrays(label, status, resolved, lin_p, multi, harm)


def pipeline_decisions(
    heads: dict[str, HeadArrays],
    escalate_uncertain: dict[str, bool],
    harm_thresholds: tuple[float, float] | None,
    rule_action: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(escalated, blocked) per item, as `ClassifierPipeline._decide_one` with escalate=False.

    rule_action: 0 no rule fired, 1 a block rule, 2 an escalate rule (rules run first and win).
    """
    n = len(rule_action)
    block = np.zeros(n, bool)
    to_escalate = np.zeros(n, bool)
    for h in heads.values():
        if h.harm is not None and harm_thresholds is not None:
            block_t, esc_t = harm_thresholds
            score = h.harm.astype(np.float64)
            block |= score >= block_t
            to_escalate |= (score < block_t) & (score >= esc_t)
    for name, h in heads.items():
        if escalate_uncertain[name]:
            to_escalate |= ~h.resolved
    no_rule = rule_action == 0
    escalated = (no_rule & to_escalate & ~block) | (rule_action == 2)
    blocked = (no_rule & block) | (rule_action == 1)
    return escalated, blocked


def sample_f1(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean per-item F1 between predicted and true label sets (multi-label quality)."""
    tp = (pred & truth).sum(1)
    denom = pred.sum(1) + truth.sum(1)
    return float(np.mean(np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0))) if len(pred) else 0.0
