"""Scoring one classifier trial on the precomputed dev pool: prototypes (cached), context, decisions, metrics.

Runs inside Tune trial processes (and once on the driver for the baseline). Nothing here embeds or
fits a linear head; prototypes are refitted only for a (multi_k, trim_fraction, ...) combination
the sweep has not seen, and `PrototypeStore` shares those fits between trial processes.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import Field

from monovec import metrics
from monovec.classify.config import ClassifierConfig, ContextConfig
from monovec.classify.linear import LinearHead
from monovec.classify.prototypes import PrototypeConfig, PrototypeSet
from monovec.config import StrictModel
from monovec.embed.text import l2_normalise
from monovec.tuning.decide import CONFIDENT, UNKNOWN, HeadArrays, head_arrays, pipeline_decisions, sample_f1


class ClassifierTuneOptions(StrictModel):
    """How classifier trials are scored (the `classifier:` block of a tune job config)."""

    session_size: int = Field(
        4, ge=0, description="simulated session length for context alpha (0 = no context)"
    )
    head_weights: dict[str, float] = Field(
        default_factory=dict, description="weight of each head in pooled metrics (missing = 1)"
    )
    prototype_cache: int = Field(32, ge=1, description="fitted prototype sets kept per trial process (LRU)")


@dataclass
class HeadData:
    labels: list[str]
    train_x: np.ndarray
    train_y: np.ndarray
    linear: LinearHead
    base_prototypes: tuple[str, dict[str, np.ndarray]]  # (PrototypeConfig json, state) from the base fit
    idx: np.ndarray  # this head's dev items in the pool
    y: np.ndarray  # primary label index per dev item
    y_multi: np.ndarray  # (n, C) all true labels
    harm_w_emb: np.ndarray | None = None
    harm_z_lex: np.ndarray | None = None  # lexical part + bias of the harm logit, per pool item


@dataclass
class PrototypeCache:
    """Fitted prototype sets by (data id, head, prototype config), least recently used dropped first.

    Owned by the trial data (`ClassifierTrialData.cache`): every trial process that fetched the data
    from the object store has its own, so a combination is fitted at most once per process; `fits` and
    `hits` count what happened in this process."""

    capacity: int = 64
    entries: OrderedDict[tuple[str, str, str], PrototypeSet] = field(default_factory=OrderedDict)
    fits: int = 0
    hits: int = 0

    def get(self, key: tuple[str, str, str]) -> PrototypeSet | None:
        found = self.entries.get(key)
        if found is not None:
            self.hits += 1
            self.entries.move_to_end(key)
        return found

    def put(self, key: tuple[str, str, str], protos: PrototypeSet) -> None:
        self.entries[key] = protos
        while len(self.entries) > self.capacity:
            self.entries.popitem(last=False)


@dataclass
class ClassifierTrialData:
    data_id: str
    x: np.ndarray  # every head's dev items, stacked (the pool each trial scores)
    rule_action: np.ndarray  # 0 none, 1 block, 2 escalate
    sessions: np.ndarray  # session id per pool item (-1: none)
    ctx_k: int
    ctx_mean: np.ndarray  # mean of up to ctx_k previous raw embeddings in the session
    ctx_has: np.ndarray  # items that have such a history
    heads: dict[str, HeadData]
    options: ClassifierTuneOptions
    counts: dict[str, Any] = field(default_factory=dict)
    store: Any = None  # PrototypeStore actor handle when Ray is up
    cache: PrototypeCache = field(default_factory=PrototypeCache)  # this process's fitted prototypes


def session_context(x: np.ndarray, sessions: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean of the up-to-k previous raw embeddings of the item's session, has-context mask),
    exactly what the pipeline's per-session deque holds when the item arrives."""
    mean = np.zeros_like(x)
    has = np.zeros(len(x), bool)
    if k <= 0:
        return mean, has
    history: dict[int, list[int]] = {}
    for i, sid in enumerate(sessions.tolist()):
        if sid < 0:
            continue
        hist = history.setdefault(sid, [])
        if hist:
            mean[i] = np.mean(x[hist[-k:]], axis=0)
            has[i] = True
        hist.append(i)
    return mean, has


class PrototypeStore:
    """Ray actor shared by every trial process of a sweep: fitted prototype states by key, so a
    (head, multi_k, trim_fraction, ...) combination is fitted once per sweep, not once per process.
    `claim` hands the fit to the first asker; others wait for it (states are ~100 KB)."""

    def __init__(self) -> None:
        self.states: dict[str, dict[str, np.ndarray]] = {}
        self.pending: set[str] = set()

    def claim(self, key: str) -> tuple[str, dict[str, np.ndarray] | None]:
        if key in self.states:
            return "ready", self.states[key]
        if key in self.pending:
            return "wait", None
        self.pending.add(key)
        return "fit", None

    def put(self, key: str, state: dict[str, np.ndarray] | None) -> None:
        self.pending.discard(key)
        if state is not None:
            self.states[key] = state


def _shared_state(
    store: Any, key: str, fit: Callable[[], PrototypeSet]
) -> PrototypeSet | dict[str, np.ndarray]:
    import ray

    deadline = time.monotonic() + 300.0
    while True:
        status, state = ray.get(store.claim.remote(key))
        if status == "ready":
            return state
        if status == "fit" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    protos = None
    try:
        protos = fit()
    finally:
        store.put.remote(key, None if protos is None else protos.state())
    return protos


def prototypes_for(data: ClassifierTrialData, name: str, cfg: PrototypeConfig) -> PrototypeSet:
    """Fitted prototypes for this (head, prototype config): per-process LRU, then the sweep's
    shared store, then a fit from the train embeddings."""
    h = data.heads[name]
    key = (data.data_id, name, cfg.model_dump_json())
    cached = data.cache.get(key)
    if cached is not None:
        return cached

    def fit() -> PrototypeSet:
        data.cache.fits += 1
        return PrototypeSet.fit(h.train_x, h.train_y, h.labels, cfg)

    if key[2] == h.base_prototypes[0]:
        protos = PrototypeSet.from_state(h.labels, h.base_prototypes[1])
    elif data.store is not None:
        got = _shared_state(data.store, "|".join(key), fit)
        protos = got if isinstance(got, PrototypeSet) else PrototypeSet.from_state(h.labels, got)
    else:
        protos = fit()
    data.cache.capacity = data.options.prototype_cache
    data.cache.put(key, protos)
    return protos


def mixed_embeddings(data: ClassifierTrialData, ctx: ContextConfig) -> np.ndarray:
    """The pool's vectors after session context, as `ClassifierPipeline._with_context` mixes them."""
    if ctx.k == 0 or data.options.session_size == 0:
        return data.x
    mean, has = (
        (data.ctx_mean, data.ctx_has)
        if ctx.k == data.ctx_k
        else session_context(data.x, data.sessions, ctx.k)
    )
    x = data.x.copy()
    x[has] = l2_normalise(ctx.alpha * data.x[has] + (1.0 - ctx.alpha) * mean[has])
    return x


def decide_pool(
    data: ClassifierTrialData, cfg: ClassifierConfig
) -> tuple[dict[str, HeadArrays], np.ndarray, np.ndarray]:
    """(every head's answers, escalated, blocked) for every pool item under `cfg`."""
    x = mixed_embeddings(data, cfg.context)
    arrays: dict[str, HeadArrays] = {}
    harm_t = None
    for name, h in data.heads.items():
        hcfg = cfg.heads[name]
        harm = None
        if h.harm_w_emb is not None and h.harm_z_lex is not None and hcfg.harm is not None:
            z = h.harm_z_lex + (x @ h.harm_w_emb).astype(np.float64)
            harm = (1.0 / (1.0 + np.exp(-z))).astype(np.float32)
            harm_t = (hcfg.harm.block_threshold, hcfg.harm.escalate_threshold)
        protos = prototypes_for(data, name, hcfg.prototypes)
        arrays[name] = head_arrays(
            protos.scores(x),
            h.linear.proba(x),
            hcfg.gate,
            hcfg.linear.threshold,
            harm,
            hcfg.linear.overrides_prototype,
        )
    escalated, blocked = pipeline_decisions(
        arrays, {n: cfg.heads[n].escalate_uncertain for n in arrays}, harm_t, data.rule_action
    )
    return arrays, escalated, blocked


def evaluate(data: ClassifierTrialData, cfg: ClassifierConfig) -> dict[str, float]:
    """Every metric of one threshold setting: per head `<head>.<metric>`, pooled `<metric>`.

    decided_* are measured on the items the pipeline answers itself (not escalated); coverage, aurc
    and escalation_rate per head are defined as in the build's evaluation report.
    """
    t0 = time.perf_counter()
    fits = data.cache.fits
    arrays, escalated, blocked = decide_pool(data, cfg)
    out: dict[str, float] = {
        "valid": 1.0,
        "escalation_rate": float(escalated.mean()),
        "block_rate": float(blocked.mean()),
    }
    weights = {n: float(data.options.head_weights.get(n, 1.0)) for n in data.heads}
    pooled: dict[str, float] = {}
    for name, h in data.heads.items():
        a = arrays[name]
        idx = h.idx
        labels = list(range(len(h.labels)))
        pred, y = a.label[idx], h.y
        sel = metrics.selective_metrics(y, pred, ~escalated[idx], labels)
        m = {
            "macro_f1": metrics.macro_f1(y, pred, labels),
            "decided_macro_f1": sel["macro_f1"],
            "decided_accuracy": sel["accuracy"],
            "decided_rate": sel["coverage"],
            "coverage": float(a.resolved[idx].mean()),
            "escalation_rate": float(escalated[idx].mean()),
            "aurc": metrics.risk_coverage(a.confidence[idx], pred == y)["aurc"],
            "confident_rate": float((a.status[idx] == CONFIDENT).mean()),
            "unknown_rate": float((a.status[idx] == UNKNOWN).mean()),
            "multilabel_f1": sample_f1(a.labels_mask[idx], h.y_multi),
        }
        harm_cfg = cfg.heads[name].harm
        if harm_cfg is not None:
            safe = np.array([label in harm_cfg.safe_labels for label in h.labels])
            m["harm_f1"] = metrics.binary_f1((h.y_multi & ~safe).any(1), blocked[idx])["f1"]
        for key, value in m.items():
            out[f"{name}.{key}"] = float(value)
            if key not in ("escalation_rate", "decided_rate", "harm_f1"):
                pooled[key] = pooled.get(key, 0.0) + weights[name] * float(value)
    total = sum(weights.values()) or 1.0
    out.update({k: v / total for k, v in pooled.items()})
    out["decided_rate"] = 1.0 - out["escalation_rate"]
    out["prototype_fits"] = float(data.cache.fits - fits)
    out["eval_seconds"] = time.perf_counter() - t0
    return out
