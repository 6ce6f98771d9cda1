"""The continual training loop itself, free of Ray: phases, epochs, losses, domain-end evaluation, state.

A run is a fixed plan of epochs: on the first domain `first_domain_stage1_epochs` of stage 1 (encoders
frozen, prototype CE leads) then `epochs_per_domain` of stage 2, then `epochs_per_domain` on every
later domain. Each epoch's shuffling, text choice, replay draw and dropout are seeded by (seed, global
epoch), and all other state is in `state_dict()`, so a run restored from the checkpoint of epoch g
continues exactly as if it had never stopped. `jobs/` and the Ray Train loop only drive this class;
`bench/train_overhead.py` runs the same epochs in plain torch.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from monovec.textvib import losses
from monovec.textvib.config import TextVibConfig
from monovec.textvib.data import DomainData
from monovec.textvib.evaluate import embed_windows, evaluate_domain, text_class_means
from monovec.textvib.model import TextVibModel
from monovec.textvib.procrustes import procrustes_init
from monovec.textvib.prototypes import class_means, ema_update
from monovec.textvib.replay import ReplayBuffer
from monovec.textvib.text import TextTable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Phase:
    domain: int
    stage: int  # 1 = encoders frozen (first domain only), 2 = everything trains
    epochs: int
    first_epoch: int  # global epoch number (1-based) of this phase's first epoch


def plan(cfg: TextVibConfig) -> list[Phase]:
    phases, g = [], 1
    for d in range(len(cfg.data.domains)):
        if d == 0 and cfg.train.first_domain_stage1_epochs > 0:
            phases.append(Phase(0, 1, cfg.train.first_domain_stage1_epochs, g))
            g += cfg.train.first_domain_stage1_epochs
        phases.append(Phase(d, 2, cfg.train.epochs_per_domain, g))
        g += cfg.train.epochs_per_domain
    return phases


class ContinualLearner:
    def __init__(
        self,
        cfg: TextVibConfig,
        domains: list[DomainData],
        texts: TextTable,
        rank: int = 0,
        world_size: int = 1,
        wrap: Callable[[nn.Module], nn.Module] | None = None,
    ) -> None:
        torch.manual_seed(cfg.train.seed)
        self.cfg, self.domains, self.texts = cfg, domains, texts
        self.rank, self.world = rank, world_size
        self.classes = cfg.data.classes
        self.text_emb = torch.tensor(texts.emb)  # a copy: arrays from Ray's object store are read-only
        self.text_rows = [texts.class_rows(d.name, self.classes) for d in domains]
        self.net = TextVibModel(cfg.model, texts.emb.shape[1], len(self.classes))
        self.net.set_text_center(self.text_emb)
        self.model = wrap(self.net) if wrap else self.net
        rc = cfg.continual.replay
        self.replay = (
            ReplayBuffer(rc.capacity, rc.strategy, len(self.classes), cfg.train.seed) if rc.enabled else None
        )
        self.phases = plan(cfg)
        self.total_epochs = sum(p.epochs for p in self.phases)
        self.epoch_done = 0
        self.restarts = 0  # how many times this run was restored from a checkpoint
        self.acc_matrix: list[list[float]] = []
        self.evals: list[list[dict[str, Any]]] = []
        self.history: list[dict[str, Any]] = []
        self.teacher: TextVibModel | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self._phase: Phase | None = None

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch_done": self.epoch_done,
            "restarts": self.restarts,
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict() if self.optimizer else None,
            "replay": self.replay.state_dict() if self.replay else None,
            "acc_matrix": self.acc_matrix,
            "evals": self.evals,
            "history": self.history,
            "teacher": self.teacher.state_dict() if self.teacher is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch_done = int(state["epoch_done"])
        self.restarts = int(state.get("restarts", 0)) + 1
        self.net.load_state_dict(state["model"])
        if self.replay is not None and state["replay"] is not None:
            self.replay.load_state_dict(state["replay"])
        self.acc_matrix, self.evals, self.history = state["acc_matrix"], state["evals"], state["history"]
        if state.get("teacher") is not None:
            self.teacher = self._frozen_copy()
            self.teacher.load_state_dict(state["teacher"])
        phase = self._phase_of(self.epoch_done + 1) if self.epoch_done < self.total_epochs else None
        if phase is not None and phase.first_epoch <= self.epoch_done:  # resumed in the middle of a phase
            self._enter_phase(phase, fresh=False)
            if state["optimizer"] is not None:
                self.optimizer.load_state_dict(state["optimizer"])

    # ---------------------------------------------------------------- phases
    def _phase_of(self, g: int) -> Phase:
        return next(p for p in self.phases if p.first_epoch <= g < p.first_epoch + p.epochs)

    def _frozen_copy(self) -> TextVibModel:
        teacher = copy.deepcopy(self.net).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        return teacher

    def _enter_phase(self, phase: Phase, fresh: bool) -> None:
        self._phase = phase
        if fresh and phase.domain == 0 and phase.first_epoch == 1:
            self._initialise_space()
        frozen = phase.stage == 1
        for module in self.net.encoders():
            for p in module.parameters():
                p.requires_grad_(not frozen)
        params = [p for p in self.net.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            params, lr=self._lr(phase, 0), weight_decay=self.cfg.train.weight_decay
        )

    @torch.no_grad()
    def _initialise_space(self) -> None:
        """First domain only: Procrustes-rotate the vibration head onto the text class centres, seed prototypes."""
        mcfg, d0 = self.cfg.model, self.domains[0]
        calibrate_batchnorm(self.net.vib_encoder, d0.train.x)
        t_means = text_class_means(self.net, self.text_emb, self.text_rows[0])
        if mcfg.procrustes_init:
            self.net.eval()
            h = torch.cat(
                [
                    self.net.vib_hidden(torch.from_numpy(d0.train.x[i : i + 256]))
                    for i in range(0, len(d0.train), 256)
                ]
            )
            y = torch.from_numpy(d0.train.y)
            sums = torch.zeros(len(self.classes), h.shape[1]).index_add_(0, y, h)
            v_means = sums / torch.bincount(y, minlength=len(self.classes)).clamp(min=1)[:, None].float()
            procrustes_init(self.net.vib_proj.out, v_means, t_means)
        if mcfg.prototypes.enabled:
            if mcfg.prototypes.init_from_text:
                self.net.prototypes.copy_(t_means)
            else:
                z = embed_windows(self.net, d0.train.x)
                self.net.prototypes.copy_(class_means(z, torch.from_numpy(d0.train.y), len(self.classes)))

    def _lr(self, phase: Phase, e: int) -> float:
        base = self.cfg.train.lr * (self.cfg.train.later_domain_lr_scale if phase.domain > 0 else 1.0)
        return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * e / max(phase.epochs, 1))))

    # ---------------------------------------------------------------- training
    def run(
        self,
        on_epoch: Callable[[dict[str, Any]], None] | None = None,
        before_epoch: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        """Train the remaining epochs; `on_epoch(metrics)` runs after each (checkpointing lives there)."""
        for g in range(self.epoch_done + 1, self.total_epochs + 1):
            if before_epoch is not None:
                before_epoch(g)
            metrics = self.train_epoch(g)
            if on_epoch is not None:
                on_epoch(metrics)
        return self.state_dict()

    def train_epoch(self, g: int) -> dict[str, Any]:
        phase = self._phase_of(g)
        if self._phase != phase or self.optimizer is None:
            self._enter_phase(phase, fresh=g == phase.first_epoch)
        e = g - phase.first_epoch
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr(phase, e)
        rng = np.random.default_rng([self.cfg.train.seed, g])
        torch.manual_seed(self.cfg.train.seed * 100_003 + g)
        self.model.train()  # stage 1 freezes encoder weights; batch-norm statistics still follow the data
        dom = self.domains[phase.domain]
        order = rng.permutation(len(dom.train))[self.rank :: self.world]
        b = self.cfg.train.batch_size
        n_steps = max(1, len(dom.train) // self.world // b)
        totals: dict[str, float] = {}
        for s in range(n_steps):
            parts = self._step(phase, order[s * b : (s + 1) * b], rng)
            for k, v in parts.items():
                totals[k] = totals.get(k, 0.0) + v / n_steps
        self.epoch_done = g
        metrics: dict[str, Any] = {
            "epoch": g,
            "domain": dom.name,
            "domain_index": phase.domain,
            "stage": phase.stage,
            "restarts": self.restarts,
            "lr": self.optimizer.param_groups[0]["lr"],
            **totals,
        }
        self._calibrate(phase.domain)
        metrics["val_acc"] = evaluate_domain(
            self.net, dom, "val", self.text_emb, self.text_rows[phase.domain]
        )["accuracy"]
        if g == phase.first_epoch + phase.epochs - 1 and phase.stage == 2:
            metrics.update(self._end_domain(phase.domain))
        self.history.append({k: v for k, v in metrics.items() if k != "acc_row"})
        return metrics

    def _calibrate(self, d: int, cap: int = 768) -> None:
        """Exact BN statistics for eval mode: current domain's training windows plus the replay buffer."""
        x = self.domains[d].train.x
        x = x[np.linspace(0, len(x) - 1, min(cap, len(x))).round().astype(int)]
        if self.replay is not None and len(self.replay):
            x = np.concatenate(
                [
                    x,
                    np.stack(
                        [self.domains[int(dd)].train.x[ii] for dd, ii, _ in self.replay.items[: cap // 3]]
                    ),
                ]
            )
        calibrate_batchnorm(self.net.vib_encoder, x)

    def _batch(
        self, d: int, idx: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        dom = self.domains[d]
        y = dom.train.y[idx]
        rows = self.text_rows[d]
        text_ids = np.array([rows[k][rng.integers(len(rows[k]))] for k in y], dtype=np.int64)
        return dom.train.x[idx], y, text_ids

    def _step(self, phase: Phase, idx: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
        mc = self.cfg.model
        x, y, tid = self._batch(phase.domain, idx, rng)
        n_cur, ridx = len(y), np.zeros(0, dtype=np.int64)
        if self.replay is not None and len(self.replay) and phase.domain > 0:
            ridx = self.replay.sample(self.cfg.continual.replay.batch_size, rng)
            parts = [self._batch(int(dd), np.array([ii]), rng) for dd, ii, _ in self.replay.items[ridx]]
            x = np.concatenate([x, *[p[0] for p in parts]])
            y = np.concatenate([y, *[p[1] for p in parts]])
            tid = np.concatenate([tid, *[p[2] for p in parts]])
        yt = torch.from_numpy(y)
        z_v, z_t, scale, bilinear = self.model(torch.from_numpy(x), self.text_emb[torch.from_numpy(tid)])
        labels = yt if mc.similarity.multi_positive else None
        w_nce = self.cfg.train.stage1_infonce_weight if phase.stage == 1 and mc.prototypes.enabled else 1.0
        out = {"loss_infonce": losses.symmetric_infonce(scale * z_v @ z_t.T, labels, labels)}
        loss = w_nce * out["loss_infonce"]
        if mc.prototypes.enabled:
            c = self.net.prototypes
            out["loss_proto"] = 0.5 * (
                losses.prototype_ce(z_v, c, yt, mc.prototypes.tau)
                + losses.prototype_ce(z_t, c, yt, mc.prototypes.tau)
            )
            loss = loss + mc.prototypes.lambda_proto * out["loss_proto"]
        if mc.similarity.bilinear_enabled:
            out["loss_bilinear"] = losses.symmetric_infonce(bilinear, labels, labels)
            loss = loss + mc.similarity.lambda_bilinear * out["loss_bilinear"]
        if mc.regularizers.rkd_enabled and len(ridx) > 1 and self.replay.embeddings is not None:
            out["loss_rkd"] = losses.rkd_loss(z_v[n_cur:], torch.from_numpy(self.replay.embeddings[ridx]))
            loss = loss + mc.regularizers.lambda_rkd * out["loss_rkd"]
        if mc.regularizers.lwf_enabled and self.teacher is not None:
            tau = mc.prototypes.tau
            with torch.no_grad():
                t_logits = (
                    self.teacher.encode_vib(torch.from_numpy(x[:n_cur])) @ self.teacher.prototypes.T / tau
                )
            out["loss_lwf"] = losses.lwf_loss(
                z_v[:n_cur] @ self.net.prototypes.T / tau, t_logits, mc.regularizers.lwf_temperature
            )
            loss = loss + mc.regularizers.lambda_lwf * out["loss_lwf"]
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if mc.prototypes.enabled:
            ema_update(
                self.net.prototypes, torch.cat([z_v, z_t]), torch.cat([yt, yt]), mc.prototypes.ema_momentum
            )
        out["loss"] = loss
        out["logit_scale"] = scale
        return {k: float(v.detach()) for k, v in out.items()}

    # ---------------------------------------------------------------- domain end
    @torch.no_grad()
    def _end_domain(self, d: int) -> dict[str, Any]:
        """Fill R[d][:], then update the replay buffer (and its reference embeddings) and the LwF teacher."""
        row = [
            evaluate_domain(self.net, dom, "test", self.text_emb, self.text_rows[j])
            for j, dom in enumerate(self.domains)
        ]
        self.evals.append(row)
        self.acc_matrix.append([r["accuracy"] for r in row])
        if self.replay is not None:
            self.replay.add_domain(d, self.domains[d].train.y)
            x = np.stack([self.domains[int(dd)].train.x[ii] for dd, ii, _ in self.replay.items])
            self.replay.embeddings = embed_windows(self.net, x).numpy()
        if self.cfg.model.regularizers.lwf_enabled:
            self.teacher = self._frozen_copy()
        seen = self.acc_matrix[-1][: d + 1]
        return {
            "acc_row": list(self.acc_matrix[-1]),
            "avg_acc_seen": float(np.mean(seen)),
            "test_acc_current": float(self.acc_matrix[-1][d]),
        }


@torch.no_grad()
def calibrate_batchnorm(module: nn.Module, x: np.ndarray, batch: int = 256) -> None:
    """Set batch-norm running statistics to the exact data statistics (cumulative average over x).

    Eval-mode embeddings (Procrustes, prototypes, every evaluation) use running statistics; at
    initialisation those are 0/1 and would make the first measurements meaningless.
    """
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m, m.momentum) for m in bns]
    module.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    for i in range(0, len(x), batch):
        module(torch.from_numpy(np.ascontiguousarray(x[i : i + batch])))
    for m, momentum in saved:
        m.momentum = momentum
    module.eval()
