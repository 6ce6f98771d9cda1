"""The fine-tuning loop itself, framework-free: Ray Train's worker loop and the plain-torch bench both run it.

    per step (one task, the same on every rank; each rank takes every world-th unit of the global batch):
        views -> ONE forward of the shared encoder (+ that task's head)
        loss = w_task * (CE + supcon * multi-positive InfoNCE)           every task
             + alignment * InfoNCE(lang a <-> lang b, diagonal)          pair tasks (GoEmotions en/ko rows)
             + geometry * RKD(pairwise cosines vs the frozen encoder)    every batch (+ its anchor texts)
    per epoch: dev metrics per task and language (sharded over ranks), alignment top-1, geometry correlation

The batch order of epoch e is a pure function of (seed, e): a run restored from the checkpoint of epoch e
continues exactly as the uninterrupted run would (the resume tests compare final metrics).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from monovec import metrics as M
from monovec.embed.use_torch import UseM3Module, load_weights
from monovec.finetune.config import FinetuneConfig, TrainConfig
from monovec.finetune.data import Prepared, View
from monovec.losses import rkd_loss, symmetric_infonce

Step = tuple[str, np.ndarray]  # (task, global unit indices)
LOG_EVERY = 100  # steps between progress lines
ALIGN_BLOCK = 500  # dev units per evaluation block (and per alignment retrieval pool)


class MultiTaskNet(nn.Module):
    """The shared encoder plus one linear head per task; one forward call per step (what DDP expects)."""

    def __init__(
        self, encoder: UseM3Module, labels: dict[str, list[str]], head_scale: float, seed: int
    ) -> None:
        super().__init__()
        self.encoder = encoder
        gen = torch.Generator().manual_seed(seed)
        self.heads = nn.ModuleDict()
        for name, labs in sorted(labels.items()):
            head = nn.Linear(encoder.dan["d3"].shape[1], len(labs))
            with torch.no_grad():
                head.weight.copy_(torch.randn(head.weight.shape, generator=gen) * 0.01)
                head.bias.zero_()
            self.heads[name] = head
        self.head_scale = head_scale

    def forward(
        self,
        batches: list[tuple[torch.Tensor, torch.Tensor]],
        task: str,
        anchors: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor | None]:
        """Views' (ids, mask) -> per view (B, 512) unit vectors, the task head's logits of all of them, and the
        (A, 512) vectors of the geometry anchors (None without), which no head sees."""
        zs = [self.encoder(ids, mask) for ids, mask in batches]
        za = self.encoder(*anchors) if anchors is not None else None
        return zs, self.heads[task](torch.cat(zs) * self.head_scale), za


def class_weights(y: np.ndarray, k: int, mode: str) -> torch.Tensor | None:
    if mode == "none":
        return None
    counts = np.bincount(y, minlength=k).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1), 0.0)
    w = np.sqrt(w) if mode == "sqrt" else w
    return torch.tensor(w / w[counts > 0].mean(), dtype=torch.float32)


def epoch_schedule(data: Prepared, cfg: FinetuneConfig, epoch: int, world: int) -> list[Step]:
    """Every task's units once, in length-bucketed global batches, tasks interleaved; seeded by epoch.

    Bucketing: units are shuffled, cut into windows of `bucket_batches` batches, sorted by length inside
    a window and batched, so a batch pads to about its own length; then all batches are shuffled."""
    rng = np.random.default_rng([cfg.train.seed, epoch])
    bs, steps = cfg.train.batch_size, []
    for name in sorted(data.tasks):
        split = data.tasks[name]["train"]
        lens = split.unit_lengths()
        perm = rng.permutation(len(split))
        window = bs * cfg.train.bucket_batches
        for start in range(0, len(perm), window):
            chunk = perm[start : start + window]
            chunk = chunk[np.argsort(lens[chunk], kind="stable")]
            steps += [
                (name, chunk[i : i + bs])
                for i in range(0, len(chunk), bs)
                if len(chunk[i : i + bs]) >= max(2, world)
            ]
    order = rng.permutation(len(steps))
    return [steps[i] for i in order]


def make_optimizer(encoder: UseM3Module, heads: nn.Module, train: TrainConfig) -> torch.optim.AdamW:
    """AdamW with one parameter group per trainable encoder group (lr = `train.lr` x
    `train.group_lr_scale[group]`, default scale 1) and one for the task heads (`train.head_lr`)."""
    scale = train.group_lr_scale
    groups = [
        {"params": ps, "lr": train.lr * scale.get(g, 1.0), "name": g}
        for g, ps in encoder.parameter_groups().items()
    ]
    heads_group = {"params": list(heads.parameters()), "lr": train.head_lr, "name": "heads"}
    return torch.optim.AdamW([*groups, heads_group], weight_decay=train.weight_decay)


class FinetuneLoop:
    """State (encoder's trainable groups, heads, optimiser, schedule position, history) and the epochs."""

    def __init__(self, cfg: FinetuneConfig, data: Prepared, rank: int = 0, world: int = 1,
                 wrap: Callable[[nn.Module], nn.Module] | None = None, progress: Callable[[str], None] | None = None) -> None:  # fmt: skip
        torch.set_num_threads(cfg.train.threads)
        self.progress = progress
        torch.manual_seed(cfg.train.seed)
        self.cfg, self.data, self.rank, self.world = cfg, data, rank, world
        self.net = MultiTaskNet(
            UseM3Module(load_weights(), cfg.encoder.trainable),
            data.labels,
            cfg.loss.head_scale,
            cfg.train.seed,
        )
        self.model = wrap(self.net) if wrap is not None else self.net
        self.opt = make_optimizer(self.net.encoder, self.net.heads, cfg.train)
        self.steps_per_epoch = len(epoch_schedule(data, cfg, 0, world))
        total = max(1, self.steps_per_epoch * cfg.train.epochs)
        warm = min(cfg.train.warmup_steps, total // 2)

        def lr_at(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            t = (step - warm) / max(1, total - warm)
            return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))

        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lr_at)
        self.cw = {
            n: class_weights(d["train"].y, len(data.labels[n]), cfg.tasks[n].class_weight)
            for n, d in data.tasks.items()
        }
        self.epoch_done = 0
        self.restarts = 0
        self.history: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "encoder": self.net.encoder.trainable_state(),
            "heads": self.net.heads.state_dict(),
            "opt": self.opt.state_dict(),
            "sched": self.sched.state_dict(),
            "epoch_done": self.epoch_done,
            "restarts": self.restarts,
            "history": list(self.history),
            "trainable": list(self.cfg.encoder.trainable),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.encoder.load_state_dict(state["encoder"], strict=False)
        self.net.heads.load_state_dict(state["heads"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        self.epoch_done = int(state["epoch_done"])
        self.restarts = int(state["restarts"]) + 1
        self.history = list(state["history"])

    # ------------------------------------------------------------------ training
    def anchor_units(self, epoch: int, step: int) -> np.ndarray | None:
        """The global step's geometry anchors (indices into `data.anchors`), a pure function of (seed, epoch,
        step) like the batch order, so a resumed run draws the same ones; None without anchors."""
        anchors = self.data.anchors
        if anchors is None:
            return None
        rng = np.random.default_rng([self.cfg.train.seed, epoch, step, 1])
        return rng.choice(len(anchors.tokens), self.cfg.loss.geometry_anchor_batch, replace=False)

    def step_loss(
        self, task: str, units: np.ndarray, anchor_units: np.ndarray | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """One step's loss and its parts; `anchor_units` (global anchor indices, this rank takes every
        world-th) join the geometry term."""
        cfg, split = self.cfg, self.data.tasks[task]["train"]
        mine = units[self.rank :: self.world]
        batches = [v.tokens.batch(mine, cfg.encoder.max_tokens) for v in split.views]
        anchors, extra, fa = self.data.anchors, None, None
        if anchors is not None and anchor_units is not None and cfg.loss.geometry > 0:
            a_mine = anchor_units[self.rank :: self.world]
            extra = anchors.tokens.batch(a_mine, cfg.encoder.max_tokens)
            fa = torch.from_numpy(anchors.frozen[a_mine].astype(np.float32))
        zs, logits, za = self.model(batches, task, extra)
        y = torch.from_numpy(split.y[mine])
        ys = y.repeat(len(zs))
        w = cfg.tasks[task].weight
        parts = {"ce": F.cross_entropy(logits, ys, weight=self.cw[task])}
        lc = cfg.loss
        if lc.supcon > 0:
            a, b, ya, yb = (
                (zs[0], zs[1], y, y)
                if len(zs) == 2
                else (
                    zs[0][: len(mine) // 2],
                    zs[0][len(mine) // 2 :],
                    y[: len(mine) // 2],
                    y[len(mine) // 2 :],
                )
            )
            n = min(len(a), len(b))
            parts["supcon"] = lc.supcon * symmetric_infonce(
                a[:n] @ b[:n].T / lc.supcon_temperature, ya[:n], yb[:n]
            )
        loss = w * sum(parts.values())
        if lc.alignment > 0 and len(zs) == 2:
            parts["align"] = lc.alignment * symmetric_infonce(zs[0] @ zs[1].T / lc.alignment_temperature)
            loss = loss + parts["align"]
        if lc.geometry > 0:
            geo = []
            for z, v in zip(zs, split.views, strict=True):
                f = torch.from_numpy(v.frozen[mine].astype(np.float32))
                if za is not None and fa is not None:  # batch-anchor and anchor-anchor cosines too
                    z, f = torch.cat([z, za]), torch.cat([f, fa])
                geo.append(rkd_loss(z, f))
            parts["geometry"] = lc.geometry * torch.stack(geo).mean()
            loss = loss + parts["geometry"]
        return loss, {k: float(v.detach()) for k, v in parts.items()}

    def train_epoch(self, epoch: int) -> dict[str, float]:
        self.model.train()
        sums: dict[str, float] = {}
        n = 0
        schedule = epoch_schedule(self.data, self.cfg, epoch, self.world)
        t0 = time.perf_counter()
        for task, units in schedule:
            loss, parts = self.step_loss(task, units, self.anchor_units(epoch, n))
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.sched.step()
            n += 1
            for k, v in {"loss": float(loss.detach()), **parts}.items():
                sums[k] = sums.get(k, 0.0) + v
            if self.progress is not None and n % LOG_EVERY == 0:
                self.progress(
                    f"[encoder] epoch {epoch} step {n}/{len(schedule)}: loss {sums['loss'] / n:.4f} ({(time.perf_counter() - t0) / n:.2f} s/step)"
                )
        return {f"train_{k}": v / max(n, 1) for k, v in sums.items()} | {"steps": n}

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def embed(self, view: View, idx: np.ndarray) -> torch.Tensor:
        """(len(idx), 512) vectors of a view's texts, length-bucketed forward passes (inference never cuts)."""
        self.net.eval()
        out = torch.zeros(len(idx), self.net.encoder.dan["d3"].shape[1])
        order = np.argsort(view.tokens.lengths()[idx], kind="stable")
        step = self.cfg.train.eval_batch_texts
        for s in range(0, len(order), step):
            pos = order[s : s + step]
            out[torch.from_numpy(pos)] = self.net.encoder(*view.tokens.batch(idx[pos]))
        return out

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Dev metrics: heads' macro-F1 per task and language (+ harmful F1, dev cross-entropy), alignment top-1,
        geometry corr.

        Dev units are cut into fixed blocks of `ALIGN_BLOCK` and block b is evaluated by rank b % world, so
        every number is the same whatever the number of workers. `alignment_top1`: within each block, the
        share of first-language texts whose nearest second-language text is their own translation."""
        out: dict[str, float] = {}
        hits = [0.0, 0.0]
        for task, splits in sorted(self.data.tasks.items()):
            dev = splits.get("dev")
            if dev is None:
                continue
            labels = self.data.labels[task]
            blocks = [np.arange(b, min(b + ALIGN_BLOCK, len(dev))) for b in range(0, len(dev), ALIGN_BLOCK)][
                self.rank :: self.world
            ]
            mine = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.int64)
            rows, zs = [], []
            for view in dev.views:
                z = self.embed(view, mine)
                zs.append(z)
                logits = self.net.heads[task](z * self.net.head_scale)
                nll = (
                    F.cross_entropy(logits, torch.from_numpy(dev.y[mine]), reduction="none").numpy()
                    if len(mine)
                    else np.zeros(0)
                )
                pred = logits.argmax(1).numpy()
                rows += [
                    (int(dev.y[i]), int(p), str(view.langs[i]), float(c))
                    for i, p, c in zip(mine, pred, nll, strict=True)
                ]
            if len(zs) == 2:
                start = 0
                for block in blocks:
                    a, b = zs[0][start : start + len(block)], zs[1][start : start + len(block)]
                    hits[0] += float(((a @ b.T).argmax(1) == torch.arange(len(block))).sum())
                    hits[1] += len(block)
                    start += len(block)
            rows = gather(rows, self.world)
            yt = [labels[r[0]] for r in rows]
            yp = [labels[r[1]] for r in rows]
            langs = np.array([r[2] for r in rows])
            f1s = []
            for lang in sorted(set(langs)):
                m = langs == lang
                f1 = M.macro_f1(
                    [y for y, k in zip(yt, m, strict=True) if k],
                    [p for p, k in zip(yp, m, strict=True) if k],
                    labels,
                )
                out[f"{task}_{lang}_macro_f1"] = f1
                f1s.append(f1)
            out[f"{task}_macro_f1"] = float(np.mean(f1s))
            out[f"{task}_dev_ce"] = float(
                np.mean([r[3] for r in rows])
            )  # the head's cross-entropy on dev (unweighted)
            safe = set(self.cfg.tasks[task].safe_labels)
            if safe:
                out[f"{task}_harm_f1"] = M.binary_f1(
                    [y not in safe for y in yt], [p not in safe for p in yp]
                )["f1"]
        total = gather([hits], self.world)
        if sum(h[1] for h in total):
            out["alignment_top1"] = sum(h[0] for h in total) / sum(h[1] for h in total)
        out["geometry_corr"] = self.geometry_corr()
        out["dev_objective"] = out[f"{self.cfg.objective_task}_macro_f1"]
        return out

    @torch.no_grad()
    def geometry_corr(self) -> float:
        """Pearson correlation of pairwise cosines (fine-tuned vs frozen) on the geometry sample (1 = unchanged)."""
        geo = self.data.geometry
        z = self.embed(geo, np.arange(len(geo.tokens)))
        f = torch.from_numpy(geo.frozen.astype(np.float32))
        iu = torch.triu_indices(len(z), len(z), offset=1)
        a, b = (z @ z.T)[iu[0], iu[1]], (f @ f.T)[iu[0], iu[1]]
        return float(torch.corrcoef(torch.stack([a, b]))[0, 1])

    # ------------------------------------------------------------------ driver of the epochs
    def run(
        self, on_epoch: Callable[[dict[str, Any]], None], before_epoch: Callable[[int], None] | None = None
    ) -> None:
        """Train the remaining epochs; `on_epoch(metrics)` after each (report + checkpoint happen there)."""
        for epoch in range(self.epoch_done + 1, self.cfg.train.epochs + 1):
            if before_epoch is not None:
                before_epoch(epoch)
            t0 = time.perf_counter()
            stats = self.train_epoch(epoch)
            t1 = time.perf_counter()
            metrics = {"epoch": epoch, "restarts": self.restarts, **stats, **self.evaluate(),
                       "train_seconds": t1 - t0, "eval_seconds": time.perf_counter() - t1}  # fmt: skip
            self.epoch_done = epoch
            self.history.append(metrics)
            on_epoch(metrics)


def gather(rows: list[Any], world: int) -> list[Any]:
    """Every rank's rows, concatenated in rank order (a no-op for a single process)."""
    if world <= 1:
        return rows
    import torch.distributed as dist

    parts: list[Any] = [None] * world
    dist.all_gather_object(parts, rows)
    return [r for part in parts for r in part]
