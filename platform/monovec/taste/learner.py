"""One online update of Taste2Vec from a window of feedback events, with replay.

Objective (what "learning from feedback" means here; the seed's `target = embedding * 1.1` is a no-op
once the vector is L2-normalised, so it is not used):
- logistic loss on liked / disliked: sigma(s * cos(query, record) + b_user + b) against the verdict,
  weighted by rating strength - this is what AUC measures;
- contrastive loss on liked events: softmax over the whole catalogue (every other lot is a negative,
  the BPR idea with all negatives at once), which shapes the ranking behind hit-rate@10.
Every update mixes `replay.ratio` x window events drawn from the reservoir into the batch.

With several Ray Train workers every worker reads the same events, makes the same vocabulary changes and
draws the same replay sample (same seeds), takes its shard of the batch, and gradients are averaged with
all_reduce - so all workers keep identical weights without wrapping the growing tables in DDP.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from monovec.taste.config import LearnConfig
from monovec.taste.encoders import CONTEXT_DIM, NumericScaler, context_features
from monovec.taste.feedback import FeedbackEvent
from monovec.taste.model import Taste2Vec
from monovec.taste.profiles import ProfileStore
from monovec.taste.records import ItemFeatures, Records
from monovec.taste.replay import ReservoirBuffer


class Scorer:
    """Read-only scores of a model with its verdict memory: per record (AUC) and over the catalogue (hit-rate)."""

    def __init__(self, model: Taste2Vec, features: ItemFeatures, profiles: ProfileStore) -> None:
        self.model, self.features, self.profiles = model, features, profiles

    @torch.no_grad()
    def predict(self, records: Records) -> np.ndarray:
        self.model.eval()
        return self.model.record_logits(self.features, records).numpy()

    @torch.no_grad()
    def catalogue_scores(self, records: Records) -> np.ndarray:
        """(B, N) pick-and-like score of every lot for each record's user in that record's context."""
        self.model.eval()
        catalogue = self.model.encode_catalogue(self.features)
        q, _ = self.model.query(records, catalogue[0])
        stats = torch.from_numpy(self.profiles.item_view(np.arange(len(self.features))))
        return self.model.catalogue_logits(q, catalogue, stats).numpy()


class OnlineLearner:
    def __init__(
        self, model: Taste2Vec, features: ItemFeatures, scaler: NumericScaler, config: LearnConfig
    ) -> None:
        self.model, self.features, self.scaler, self.config = model, features, scaler, config
        self.history_len = model.config.context.history
        self.opt = torch.optim.Adam(model.parameters(), lr=config.lr)
        model.users.attach_optimizer(self.opt)  # growth pads Adam's m/v; old rows keep theirs
        model.table.attach_optimizer(self.opt)
        if model.items is not None:
            model.items.attach_optimizer(self.opt)
        self.replay = ReservoirBuffer(config.replay.capacity, seed=config.seed + 11)
        self.histories: dict[str, list[list[float]]] = {}
        self.profiles = ProfileStore(model.config.profile_size)
        self.learned = 0
        self.updates = 0
        self.scorer = Scorer(model, features, self.profiles)

    # ---- events -> records --------------------------------------------------------------------------
    def prepare(self, events: list[FeedbackEvent], index: dict[str, int]) -> Records:
        """Records for validated events, in stream order: each sees its user's context history and profile
        as they were just before it (then both move on), and the vocabulary change they bring - new users
        and new terms get rows here, before any forward."""
        L, P, thr = self.history_len, max(self.profiles.size, 1), self.config.like_threshold
        ctx = np.zeros((len(events), L, CONTEXT_DIM), dtype=np.float32)
        hist = np.zeros((len(events), P), dtype=np.int64)
        sign = np.zeros((len(events), P), dtype=np.float32)
        prior = np.zeros(len(events), dtype=np.float32)
        items = np.array([index[e.item_id] for e in events], dtype=np.int64)
        item_stats = self.profiles.item_view(items)  # lots' counts move after the window is learned
        for i, ev in enumerate(events):
            past = self.histories.setdefault(ev.user_id, [])
            seq = (
                [*past[-(L - 1) :], context_features(ev.context.model_dump())]
                if L > 1
                else [context_features(ev.context.model_dump())]
            )
            ctx[i, L - len(seq) :] = seq
            past.append(seq[-1])
            del past[: max(0, len(past) - (L - 1))]
            hist[i], sign[i], prior[i] = self.profiles.view(ev.user_id)
            self.profiles.push(ev.user_id, index[ev.item_id], ev.label(thr) > 0.5)
        records = Records(
            event_ids=[e.event_id for e in events],
            users=[e.user_id for e in events],
            items=items,
            extra=[list(e.notes) for e in events],
            brew=np.array(
                [self.scaler.brew(e.brew.model_dump() if e.brew else None) for e in events], dtype=np.float32
            ).reshape(len(events), 4),
            ctx=ctx,
            label=np.array([e.label(thr) for e in events], dtype=np.float32),
            weight=np.array([e.weight() for e in events], dtype=np.float32),
            hist=hist,
            hist_sign=sign,
            prior=prior,
            item_stats=item_stats,
        )
        self.model.observe(records)
        return records

    # ---- learning -----------------------------------------------------------------------------------
    def learn(self, records: Records) -> float:
        """Optimizer steps on the window plus a replay sample; then the window joins the reservoir."""
        cfg = self.config
        replay = self.replay.sample(int(round(cfg.replay.ratio * len(records))))
        batch = Records.concat([records, replay]) if replay is not None else records
        counted = np.arange(len(batch)) >= len(records)  # replayed verdicts are in the lots' counts already
        rank, world = _rank_world()
        if world > 1:
            shard = np.arange(rank, len(batch), world)
            batch, counted = batch.take(shard), counted[shard]
        self.model.train()
        loss_value = 0.0
        for _ in range(cfg.steps_per_window):
            self.opt.zero_grad(set_to_none=True)
            loss = self._loss(batch, counted)
            loss.backward()
            if world > 1:
                _average_gradients(self.model, world)
            self.opt.step()
            loss_value = float(loss.detach())
        self.replay.add(records)
        for item, label in zip(records.items.tolist(), records.label.tolist(), strict=True):
            self.profiles.push_item(item, label > 0.5)
        self.model.refresh_user_prior()
        self.learned += len(records)
        self.updates += 1
        return loss_value

    def _loss(self, batch: Records, counted: np.ndarray) -> torch.Tensor:
        model, cfg = self.model, self.config
        if len(batch) == 0:  # a worker with an empty shard still joins the all_reduce
            return sum(p.sum() * 0.0 for p in model.parameters() if p.requires_grad)  # type: ignore[return-value]
        catalogue = model.encode_catalogue(self.features)
        q, b = model.query(batch, catalogue[0])
        y, w = torch.from_numpy(batch.label), torch.from_numpy(batch.weight)
        logit = model.like_logits(q, b, self.features, batch)
        loss = (
            cfg.bce_weight
            * (F.binary_cross_entropy_with_logits(logit, y, reduction="none") * w).sum()
            / w.sum()
        )
        liked = y > 0.5
        if cfg.softmax_weight > 0 and bool(liked.any()):
            pos = torch.from_numpy(batch.items)[liked]
            # lots' like counts now; a replayed positive's own like is taken out again (no self-leak)
            likes = torch.tensor(
                [self.profiles.item_counts.get(i, (0, 0))[0] for i in range(len(self.features))],
                dtype=torch.float32,
            )
            pop = torch.log1p(likes).expand(len(pos), -1).clone()
            own = torch.from_numpy(counted)[liked].float()
            pop[torch.arange(len(pos)), pos] = torch.log1p((likes[pos] - own).clamp(min=0))
            scores = model.catalogue_logits(q[liked], catalogue) + model.item_pop_weight * pop
            loss = loss + cfg.softmax_weight * F.cross_entropy(scores, pos)
        return loss

    # ---- checkpoint ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.opt.state_dict(),
            "replay": self.replay.state_dict(),
            "histories": self.histories,
            "profiles": self.profiles.state_dict(),
            "learned": self.learned,
            "updates": self.updates,
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.opt.load_state_dict(state["optimizer"])
        self.replay.load_state_dict(state["replay"])
        self.histories = {u: [list(map(float, c)) for c in h] for u, h in state["histories"].items()}
        self.profiles.load_state_dict(state["profiles"])
        self.learned, self.updates = int(state["learned"]), int(state["updates"])
        torch.set_rng_state(state["torch_rng"])


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _average_gradients(model: Taste2Vec, world: int) -> None:
    for p in model.parameters():
        if not p.requires_grad:
            continue
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
        p.grad /= world
