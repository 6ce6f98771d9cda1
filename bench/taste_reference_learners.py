"""How far can *any* learner get on the simulated Taste2Vec stream? A model-free reference for the issue's bars.

Replays `monovec taste simulate`'s stream (same simulator, same seed, same catalogue) and fits a plain
scikit-learn logistic regression, in batch, with everything Taste2Vec's online model is allowed to see:

- the lot: 15 profile features (scores, altitude, process, continent, species) and the log-frequencies of
  the flavour families of its catalogue notes (13);
- the moment: the model's own 12 context features, and their products with the lot features (context
  shifts every user's taste the same way), the brew z-scores and their absolute values;
- the memory: the lot's and the user's smoothed like-rate log-odds before the event;
- the person: one weight vector per user over the lot features (+ a user bias), regularised like the rest.

"online" is refitted from scratch on every event before each of 4 slices of the final 20 % and scores that
slice (recency-weighted, half-life 4,000 events, for the drift): a batch stand-in for an online learner,
which never gets to revisit the whole past at once. "frozen" is the same recipe fitted on the first 10 %
only, with its counts frozen there too (the simulate command's frozen baseline). "latent" replaces the lot
features by the simulator's hidden ones (true family affinities), which no learner sees: the ceiling of
better item features.

    .venv/bin/python bench/taste_reference_learners.py [--seeds 0 1 2] [--with-model] [--drift-half-life-days 45]

Prints AUC over the final 20 % for each seed; `--with-model` also runs `monovec taste simulate` on the
shipped config (jobs/configs/taste2vec.yaml) and prints Taste2Vec's online and frozen AUC and the issue's
bar (online >= frozen + 0.10) beside the reference. ~30 s per seed, ~2 min with the model, on 2 cores.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

from monovec.config import load_config
from monovec.paths import REPO_ROOT, data_dir
from monovec.taste.config import LearnConfig
from monovec.taste.data import load_catalogue
from monovec.taste.encoders import BREW_FIELDS, BREW_REFERENCE, context_features
from monovec.taste.evaluate import auc
from monovec.taste.simulate import SimConfig, Simulator
from monovec.taste.vocab import FAMILIES, TERM_FAMILY

HALF_LIFE_EVENTS = 4000.0
C = 0.3
LIKE_THRESHOLD = LearnConfig().like_threshold
REFITS = 4  # the final 20 % is scored in 4 slices, each by a fit on everything before it


def lot_features(catalogue) -> np.ndarray:
    """(N, 28): profile features + centred log-frequencies of the catalogue notes' flavour families."""
    counts = np.zeros((len(catalogue), len(FAMILIES)))
    for i, notes in enumerate(catalogue.notes):
        for term in notes:
            counts[i, FAMILIES.index(TERM_FAMILY[term])] += 1
    fam = np.log((counts + 0.3) / (counts.sum(1, keepdims=True) + 0.3 * len(FAMILIES)))
    return np.concatenate([catalogue.profile, fam - fam.mean(0)], axis=1)


def design(events, index, lots: np.ndarray, users: dict[str, int], freeze_at: int | None) -> sp.csr_matrix:
    """One row per event; like-rate memories stop counting at `freeze_at` (None: never)."""
    n_lots, d = len(lots), lots.shape[1]
    lot_likes, lot_total, user_counts = np.zeros(n_lots), np.zeros(n_lots), {}
    dense, inter_rows, inter_cols, inter_vals = [], [], [], []
    for k, (ev, _) in enumerate(events):
        i, u = index[ev["item_id"]], ev["user_id"]
        f = lots[i]
        ctx = np.array(context_features(ev["context"]))
        brew = np.array(
            [
                (ev["brew"][b] - BREW_REFERENCE[b][0]) / BREW_REFERENCE[b][1] if "brew" in ev else 0.0
                for b in BREW_FIELDS
            ]
        )
        likes, total = user_counts.get(u, (0, 0))
        memory = [
            math.log((lot_likes[i] + 1) / (lot_total[i] - lot_likes[i] + 1)),
            math.log((likes + 1) / (total - likes + 1)),
        ]
        dense.append(np.concatenate([f, np.outer(ctx, f).ravel(), ctx, brew, np.abs(brew), memory]))
        cols = users[u] * (d + 1) + np.arange(d + 1)
        inter_rows += [k] * (d + 1)
        inter_cols += cols.tolist()
        inter_vals += [*f.tolist(), 1.0]
        if freeze_at is None or k < freeze_at:
            liked = label(ev)
            lot_likes[i] += liked
            lot_total[i] += 1
            user_counts[u] = (likes + liked, total + 1)
    inter = sp.csr_matrix((inter_vals, (inter_rows, inter_cols)), shape=(len(events), len(users) * (d + 1)))
    return sp.hstack([sp.csr_matrix(np.array(dense)), inter]).tocsr()


def label(ev: dict) -> float:
    """The learner's rule (`FeedbackEvent.label`): `liked` if given, else rating >= learn.like_threshold."""
    return float(ev["liked"] if "liked" in ev else ev["rating"] >= LIKE_THRESHOLD)


def fit_score(x: sp.csr_matrix, y: np.ndarray, starts: list[int], test_start: int) -> float:
    """AUC over [test_start, end): each slice [starts[k], starts[k+1]) scored by a fit on every event before
    starts[k] (one start = one fit, a frozen model)."""
    scores, bounds = [], [*starts, len(y)]
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        weights = np.exp((np.arange(start) - start) / HALF_LIFE_EVENTS * math.log(2))
        model = LogisticRegression(C=C, max_iter=3000).fit(x[:start], y[:start], sample_weight=weights)
        scores.append(model.decision_function(x[max(start, test_start) : stop]))
    return auc(y[test_start:], np.concatenate(scores))


def run_seed(sim_config: SimConfig, catalogue) -> dict[str, float]:
    sim = Simulator(catalogue, sim_config)
    events = sim.events()
    y = np.array([label(ev) for ev, _ in events])
    users = {u: k for k, u in enumerate(sorted({ev["user_id"] for ev, _ in events}))}
    n = len(events)
    warm, final = int(0.1 * n), int(0.8 * n)
    out = {"oracle": auc(y[final:], np.array([p for _, p in events[final:]]))}
    for name, lots in (("observable", lot_features(catalogue)), ("latent", sim.x)):
        refits = [final + k * (n - final) // REFITS for k in range(REFITS)]
        out[f"{name}_online"] = fit_score(
            design(events, catalogue.index, lots, users, None), y, refits, final
        )
        out[f"{name}_frozen"] = fit_score(
            design(events, catalogue.index, lots, users, warm), y, [warm], final
        )
    return out


def run_model(sim_config: SimConfig) -> dict[str, float]:
    """Taste2Vec on the same stream: `monovec taste simulate --seed S` with the shipped config."""
    from monovec.taste.config import Taste2VecJobConfig
    from monovec.taste.experiment import run_simulation

    job = load_config(Taste2VecJobConfig, REPO_ROOT / "jobs" / "configs" / "taste2vec.yaml", None)
    with tempfile.TemporaryDirectory() as out:
        return run_simulation(sim_config, job, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--with-model", action="store_true", help="also run Taste2Vec on each seed (~90 s each)"
    )
    parser.add_argument(
        "--drift-half-life-days",
        type=float,
        default=SimConfig().drift_half_life_days,
        help="simulator: half-life of a user's taste",
    )
    args = parser.parse_args()
    catalogue = load_catalogue(data_dir() / "coffee", include_robusta=True, seed=0)
    head = "seed | reference online | reference frozen | gap | latent online | latent frozen | oracle"
    print(
        head
        + (" | Taste2Vec online | Taste2Vec frozen | gap | bar: online >=" if args.with_model else "")
        + " | s"
    )
    for seed in args.seeds:
        t0 = time.perf_counter()
        sim_config = SimConfig(seed=seed, drift_half_life_days=args.drift_half_life_days)
        r = run_seed(sim_config, catalogue)
        row = (
            f"{seed} | {r['observable_online']:.3f} | {r['observable_frozen']:.3f} | "
            f"{r['observable_online'] - r['observable_frozen']:+.3f} | {r['latent_online']:.3f} | "
            f"{r['latent_frozen']:.3f} | {r['oracle']:.3f}"
        )
        if args.with_model:
            m = run_model(sim_config)
            row += (
                f" | {m['final_auc']:.3f} | {m['frozen_auc']:.3f} | {m['final_auc'] - m['frozen_auc']:+.3f} | "
                f"{m['frozen_auc'] + 0.10:.3f}"
            )
        print(f"{row} | {time.perf_counter() - t0:.0f}", flush=True)


if __name__ == "__main__":
    main()
