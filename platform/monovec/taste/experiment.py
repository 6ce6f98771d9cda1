"""`monovec taste simulate`: simulated users -> event lines -> validation / dead letter -> prequential online
learning, against a frozen copy and popularity. Writes summary.json, curves.json, prequential.png (and the
event lines, for the Ray job, with `write_events`)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monovec.taste.config import Taste2VecJobConfig
from monovec.taste.evaluate import Curve, plot_curves, sample_negatives, window_metrics
from monovec.taste.feedback import DeadLetter, FeedbackEvent, feedback_windows, parse_line
from monovec.taste.learner import OnlineLearner, Scorer
from monovec.taste.profiles import ProfileStore
from monovec.taste.runtime import TextFeaturizer, build_runtime, copy_model, new_model
from monovec.taste.simulate import SimConfig, Simulator, break_event
from monovec.taste.vocab import TREND_TERMS

log = logging.getLogger(__name__)


def simulated_lines(sim: SimConfig, simulator: Simulator) -> tuple[list[str], list[float]]:
    """The stream as JSONL lines (some deliberately broken) and each line's true like probability."""
    rng = np.random.default_rng(sim.seed + 7)
    lines, truth = [], []
    for event, p_like in simulator.events():
        broken = sim.malformed_rate > 0 and rng.uniform() < sim.malformed_rate
        lines.append(break_event(event, rng) if broken else json.dumps(event, ensure_ascii=False))
        truth.append(p_like)
    return lines, truth


@dataclass
class Prequential:
    """The simulation's scoreboard: each window is scored by every contender before the online model learns it.

    Contenders: the online model, a frozen copy taken after the warm-up, the frozen weights with the live
    verdict memory, popularity (likes so far) and the oracle (the simulator's true like probabilities)."""

    learner: OnlineLearner
    features: Any
    n_items: int
    index: dict[str, int]
    warmup: int
    rng: np.random.Generator
    curves: dict[str, Curve] = field(
        default_factory=lambda: {
            n: Curve() for n in ("online", "frozen", "popularity", "oracle", "frozen_weights_live_profile")
        }
    )
    frozen: Scorer | None = None
    frozen_profiles: ProfileStore | None = None
    likes: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.likes = np.zeros(self.n_items)  # likes so far per item: the popularity contender

    def window(self, events: list[FeedbackEvent], p_like: list[float]) -> None:
        """Score the window with every contender, then learn it; take the frozen copy once warm."""
        learner, curves, rng, likes = self.learner, self.curves, self.rng, self.likes
        recs = learner.prepare(events, self.index)
        liked = np.flatnonzero(recs.label > 0.5)
        negatives = sample_negatives(recs.items[liked], self.n_items, 99, rng)
        seen = recs.take(liked)
        curves["online"].add(
            *window_metrics(
                recs.label,
                recs.items,
                learner.scorer.predict(recs),
                learner.scorer.catalogue_scores(seen),
                negatives,
                rng,
            )
        )
        # until the copy is taken the frozen model *is* the online one
        fro, fro_recs = (
            (self.frozen, self.frozen_profiles.apply(recs))
            if self.frozen and self.frozen_profiles
            else (learner.scorer, recs)
        )
        fro_seen = fro_recs.take(liked)
        curves["frozen"].add(
            *window_metrics(
                recs.label, recs.items, fro.predict(fro_recs), fro.catalogue_scores(fro_seen), negatives, rng
            )
        )
        # frozen weights, but the verdict memory keeps filling
        live = Scorer(self.frozen.model, self.features, learner.profiles) if self.frozen else learner.scorer
        curves["frozen_weights_live_profile"].add(
            *window_metrics(
                recs.label, recs.items, live.predict(recs), live.catalogue_scores(seen), negatives, rng
            )
        )
        pop = np.broadcast_to(likes, (len(liked), self.n_items))
        curves["popularity"].add(
            *window_metrics(recs.label, recs.items, likes[recs.items], pop, negatives, rng)
        )
        curves["oracle"].add(recs.label, np.array(p_like), np.zeros(0), np.zeros(0))
        learner.learn(recs)
        np.add.at(likes, recs.items[liked], 1)
        if self.frozen is None and learner.learned >= self.warmup:
            self.frozen_profiles = learner.profiles.copy()
            self.frozen = Scorer(copy_model(learner.model), self.features, self.frozen_profiles)


def run_simulation(
    sim: SimConfig,
    job: Taste2VecJobConfig,
    out_dir: str | Path,
    warmup_fraction: float = 0.1,
    final_fraction: float = 0.2,
    segments: int = 20,
    write_events: bool = False,
    featurizer: TextFeaturizer | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Simulated users -> event lines (`sim.malformed_rate` of them broken) -> the update job's own
    read/validate/dead-letter/window loop -> prequential learning against the frozen, popularity and
    oracle contenders.

    Writes summary.json, curves.json (`segments` spans), prequential.png and dead_letter.jsonl under
    `out_dir` (and events/events-000.jsonl with `write_events`). Returns the summary: AUCs and hit rates
    at 10 over the last `final_fraction` of the windows, `after_warmup` spans (the frozen copy is taken
    after `warmup_fraction` of the events), counts, and seconds / events_per_second."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    torch.set_num_threads(job.learn.threads)
    rt = build_runtime(job.catalogue, job.model, featurizer=featurizer)
    simulator = Simulator(rt.catalogue, sim)
    lines, truth = simulated_lines(sim, simulator)
    if write_events:
        (out / "events").mkdir(exist_ok=True)
        (out / "events" / "events-000.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    t_setup = time.perf_counter() - t0

    learner = OnlineLearner(new_model(rt, job.model, job.learn.seed), rt.features, rt.scaler, job.learn)
    dead = DeadLetter(out / "dead_letter.jsonl")
    board = Prequential(
        learner,
        rt.features,
        len(rt.catalogue),
        rt.catalogue.index,
        int(warmup_fraction * sim.events),
        np.random.default_rng(sim.seed + 99),
    )
    raws = (parse_line("simulated", n, (line + "\n").encode()) for n, line in enumerate(lines, start=1))
    reject = lambda raw, reason, event_id: dead.write(raw.source, raw.line, reason, raw.text)  # noqa: E731
    for window in feedback_windows(raws, rt.catalogue.index, job.learn.window, reject):
        board.window([e for e, _ in window], [truth[raw.line - 1] for _, raw in window])
        if progress and learner.updates % 20 == 0:
            progress(f"{window[-1][1].line}/{len(lines)} events, {learner.learned} learned")
    seconds = time.perf_counter() - t0
    summary, segs, bounds = summarise(board, sim, len(lines), len(dead), final_fraction, segments)
    summary.update(
        {
            "seconds": round(seconds, 1),
            "setup_seconds": round(t_setup, 1),
            "events_per_second": round(len(lines) / max(seconds - t_setup, 1e-9), 1),
            "sim": sim.model_dump(),
        }
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    (out / "curves.json").write_text(json.dumps(segs, indent=1))
    plot_curves(
        board.curves,
        bounds,
        out / "prequential.png",
        f"Taste2Vec prequential: {sim.users} users, {len(lines)} events",
    )
    return summary


def summarise(
    board: Prequential, sim: SimConfig, events: int, dead_letters: int, final_fraction: float, segments: int
) -> tuple[dict[str, Any], list[dict[str, Any]], list[tuple[int, int, int]]]:
    """(summary fields, the curves in `segments` spans, the spans' (first window, end window, events seen))."""
    curves, learner = board.curves, board.learner
    n_windows = len(curves["online"].labels)
    final_start = int(n_windows * (1 - final_fraction))
    warm_windows = (
        next(
            (
                i
                for i in range(n_windows)
                if sum(len(x) for x in curves["online"].labels[: i + 1]) >= board.warmup
            ),
            0,
        )
        + 1
    )
    bounds, per = [], max(1, n_windows // segments)
    seen_events = np.cumsum([len(x) for x in curves["online"].labels])
    for a in range(0, n_windows, per):
        b = min(n_windows, a + per)
        bounds.append((a, b, int(seen_events[b - 1])))
    final = {k: c.span(final_start, n_windows) for k, c in curves.items()}
    after = {k: c.span(warm_windows, n_windows) for k, c in curves.items()}
    trend = [t for pairs in TREND_TERMS.values() for pair in pairs for t in pair]
    table = learner.model.table
    summary = {
        "final_auc": final["online"]["auc"],
        "frozen_auc": final["frozen"]["auc"],
        "popularity_auc": final["popularity"]["auc"],
        "oracle_auc": final["oracle"]["auc"],
        "hit_rate_at_10": final["online"]["hit_at_10"],
        "frozen_hit_rate_at_10": final["frozen"]["hit_at_10"],
        "frozen_weights_live_profile_auc": final["frozen_weights_live_profile"]["auc"],
        "frozen_weights_live_profile_hit_rate_at_10": final["frozen_weights_live_profile"]["hit_at_10"],
        "popularity_hit_rate_at_10": final["popularity"]["hit_at_10"],
        "hit_rate_at_10_full_catalogue": final["online"]["hit_at_10_full"],
        "popularity_hit_rate_at_10_full_catalogue": final["popularity"]["hit_at_10_full"],
        "after_warmup": {k: v for k, v in after.items()},
        "final_fraction": final_fraction,
        "warmup_events": board.warmup,
        "events": events,
        "learned_events": learner.learned,
        "dead_letters": dead_letters,
        "users": sim.users,
        "items": board.n_items,
        "sensory_rows": len(table),
        "trend_terms_with_rows": sorted(t for t in trend if t in table),
    }
    segs = [{"events": e, **{k: c.span(a, b) for k, c in curves.items()}} for a, b, e in bounds]
    return summary, segs, bounds
