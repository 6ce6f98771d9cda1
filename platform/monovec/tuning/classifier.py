"""The classifier as a Tune target: embed and fit once on the driver, score thresholds per trial.

`prepare` does everything a trial's parameters cannot change, once: load + normalise train/dev,
embed them through the project's encoder and per-text cache (a re-run reads its vectors), fit the linear
and harm heads with the build's own `fit_head`, run the rules on dev, precompute the harm scorer's
lexical part and the simulated session context. A trial then applies its overrides to the build
config, fits prototypes only if (multi_k, trim_fraction, ...) changed (once per sweep, see
`monovec.tuning.scoring`), and scores every dev item in one vectorised pass.

Context weight `alpha` needs sessions, which the dev sets do not have: `session_size` groups
consecutive dev texts of one head and language (file order, i.e. unrelated comments) into
simulated sessions, the pessimistic case where context is noise. Set it to 0 to score without
context (alpha then has no effect).
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from monovec.classify.build import BuildConfig, fit_head, fit_safety
from monovec.classify.config import ClassifierConfig
from monovec.classify.data import Examples, load_examples
from monovec.classify.evaluate import normalise_examples
from monovec.classify.head import Head
from monovec.classify.normalize import KoreanNormalizer
from monovec.classify.policy import SafetyStage, positive_stance
from monovec.classify.rules import RuleEngine
from monovec.classify.safety import SafetyModel
from monovec.config import set_path
from monovec.embed.cache import embed_texts
from monovec.paths import embedding_cache_dir
from monovec.tuning.scoring import (
    ClassifierTrialData,
    ClassifierTuneOptions,
    HeadData,
    PrototypeStore,
    evaluate,
    session_context,
)
from monovec.tuning.targets import Report, Target

__all__ = ["TARGET", "ClassifierTarget", "ClassifierTuneOptions", "HeadInputs", "assemble", "session_ids"]


def session_ids(langs: list[str], size: int, offset: int) -> np.ndarray:
    """Consecutive items of one language in file order, `size` at a time, share a session id."""
    out = np.full(len(langs), -1, dtype=np.int64)
    if size <= 0:
        return out
    order = {lang: j for j, lang in enumerate(sorted(set(langs)))}
    seen: dict[str, int] = {}
    for i, lang in enumerate(langs):
        pos = seen.get(lang, 0)
        seen[lang] = pos + 1
        out[i] = offset + (pos // size) * len(order) + order[lang]
    return out


@dataclass
class HeadInputs:
    """A fitted head with its train embeddings (for prototype refits) and its embedded dev set."""

    head: Head
    train_x: np.ndarray
    train_y: np.ndarray
    dev: Examples
    dev_norms: list[str]
    dev_x: np.ndarray


def assemble(
    cfg: ClassifierConfig,
    inputs: dict[str, HeadInputs],
    options: ClassifierTuneOptions,
    safety: SafetyModel | None = None,
) -> ClassifierTrialData:
    """Stack every head's dev set into one pool and precompute what no tuned parameter changes:
    rule outcomes, the harm scorer's lexical logit, the simulated sessions' context means."""
    heads: dict[str, HeadData] = {}
    pool_x, pool_norms, pool_sessions = [], [], []
    offset = start = 0
    for name, inp in inputs.items():
        hcfg = cfg.heads[name]
        index = {label: i for i, label in enumerate(hcfg.labels)}
        y_multi = np.zeros((len(inp.dev), len(hcfg.labels)), bool)
        for i, ls in enumerate(inp.dev.labels):
            y_multi[i, [index[label] for label in ls]] = True
        sess = session_ids(inp.dev.langs, options.session_size, offset)
        offset = int(sess.max()) + 1 if (sess >= 0).any() else offset
        heads[name] = HeadData(
            labels=list(hcfg.labels),
            train_x=inp.train_x,
            train_y=inp.train_y,
            linear=inp.head.linear,
            base_prototypes=(inp.head.config.prototypes.model_dump_json(), inp.head.prototypes.state()),
            idx=np.arange(start, start + len(inp.dev)),
            y=inp.dev.primary(index),
            y_multi=y_multi,
        )
        start += len(inp.dev)
        pool_x.append(inp.dev_x)
        pool_norms += inp.dev_norms
        pool_sessions.append(sess)
    if not heads:
        raise ValueError("no head has dev data to tune on (set classifier.heads.<name>.dev)")
    for name, inp in inputs.items():  # harm logit = lexical part (fixed) + embedding part (context-dependent)
        scorer = inp.head.harm
        if scorer is not None:
            lex = scorer._features(pool_norms, np.zeros((len(pool_norms), 0), np.float32))
            n_lex = lex.shape[1]
            heads[name].harm_z_lex = (np.asarray(lex @ scorer.weight[:n_lex]).ravel() + scorer.bias).astype(
                np.float64
            )
            heads[name].harm_w_emb = scorer.weight[n_lex:]
    rules = RuleEngine(cfg.rules)
    codes = {None: 0, "allow": 0, "block": 1, "escalate": 2}
    x = np.concatenate(pool_x)
    if safety is not None:  # the safety verdict reads each text's own vector: no tuned parameter changes it
        positive = positive_stance(safety.config, {name: inp.head for name, inp in inputs.items()})
        rule_action = np.array(
            [codes[v.decision] for v in SafetyStage(safety, rules, positive).assess(pool_norms, x)],
            dtype=np.int8,
        )
    else:
        rule_action = np.array(
            [codes[(r.action or "escalate") if (r := rules.check(n)) else None] for n in pool_norms],
            dtype=np.int8,
        )
    sessions = np.concatenate(pool_sessions)
    ctx_mean, ctx_has = session_context(x, sessions, cfg.context.k)
    return ClassifierTrialData(
        data_id=uuid.uuid4().hex,
        x=x,
        rule_action=rule_action,
        sessions=sessions,
        ctx_k=cfg.context.k,
        ctx_mean=ctx_mean,
        ctx_has=ctx_has,
        heads=heads,
        options=options,
        counts={name: {"train": len(h.train_y), "dev": len(h.idx)} for name, h in heads.items()},
    )


class ClassifierTarget(Target):
    """`monovec.tuning.targets.Target` for the unified classifier (BuildConfig keys)."""

    def prepare(
        self, base: BuildConfig, options: ClassifierTuneOptions, progress: Callable[[str], None] = print
    ) -> ClassifierTrialData:
        cfg = base.classifier
        cache = Path(base.cache_dir) if base.cache_dir else embedding_cache_dir()
        normalizer = KoreanNormalizer(cfg.normalize)

        def embed(texts: list[str], what: str) -> np.ndarray:
            t0 = time.perf_counter()
            x = embed_texts(texts, cfg.encoder, cache, num_shards=base.scaling.num_workers, progress=what)
            progress(f"[{what}] {len(texts)} texts embedded/loaded in {time.perf_counter() - t0:.1f}s")
            return x

        inputs: dict[str, HeadInputs] = {}
        for name, hcfg in cfg.heads.items():
            dev, dnorms = (
                normalise_examples(normalizer, load_examples(hcfg.dev, hcfg.labels))
                if hcfg.dev
                else (None, [])
            )
            if dev is None or len(dev) == 0:
                continue
            ex, norms = normalise_examples(
                normalizer, load_examples(hcfg.train, hcfg.labels, hcfg.max_per_class, cfg.seed)
            )
            x = embed(norms, f"{name} train")
            extra = None
            if hcfg.harm is not None and hcfg.harm.extra_train:
                ex2, n2 = normalise_examples(
                    normalizer, load_examples(hcfg.harm.extra_train, ["harmful", "safe"], None, cfg.seed)
                )
                extra = (
                    n2,
                    embed(n2, f"{name} harm extra"),
                    np.array([ls[0] == "harmful" for ls in ex2.labels]),
                )
            t0 = time.perf_counter()
            head = fit_head(name, hcfg, ex, norms, x, extra, cfg.seed)  # the build's own factory
            progress(
                f"[{name}] fitted prototypes + linear head{' + harm scorer' if head.harm else ''} once in {time.perf_counter() - t0:.1f}s"
            )
            index = {label: i for i, label in enumerate(hcfg.labels)}
            inputs[name] = HeadInputs(head, x, ex.primary(index), dev, dnorms, embed(dnorms, f"{name} dev"))
        safety = None
        if cfg.safety is not None and cfg.safety.enabled:
            safety, _ = fit_safety(cfg, normalizer, embed, progress)  # the build's own factory
        data = assemble(cfg, inputs, options, safety)
        import ray

        if ray.is_initialized():
            data.store = ray.remote(num_cpus=0)(PrototypeStore).remote()
        progress(
            f"dev pool: {len(data.x)} items, rules fire on {int((data.rule_action > 0).sum())}, "
            f"{int(data.ctx_has.sum())} with session context (simulated sessions of {options.session_size})"
        )
        return data

    def run_trial(
        self, data: ClassifierTrialData, base: dict[str, Any], params: Mapping[str, Any], report: Report
    ) -> None:
        cfg_dict = copy.deepcopy(base)
        for key, value in params.items():
            set_path(cfg_dict, key.split("."), value)
        try:
            cfg = BuildConfig.model_validate(cfg_dict).classifier
        except ValidationError:
            report({"valid": 0.0})
            return
        report(evaluate(data, cfg))

    def close(self, data: ClassifierTrialData) -> None:
        """End of sweep: drop the shared prototype store."""
        if data.store is not None:
            import ray

            ray.kill(data.store)
            data.store = None


TARGET = ClassifierTarget()
