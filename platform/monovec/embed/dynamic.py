"""Dynamic embedding table: one object owns token->id AND the rows, grows geometrically, keeps optimizer state.

Why (the seed's TF managers): they concatenated one row per new token (an O(V x D) copy each time),
replaced the variable on every growth (optimizer slots reset), let two instances disagree on ids (an
empty gather crashed on MPS), and never put the matrix on the loss path, so `trainable=True` did nothing.

Here:
- capacity is pre-allocated and multiplied by `growth_factor` when full: a new token costs amortised O(D);
- the `nn.Parameter` keeps its identity across growth (its `.data` is swapped for a bigger tensor), so
  optimizers keep pointing at it; optimizers passed to `attach_optimizer` get per-row state (Adam
  exp_avg/exp_avg_sq, SGD momentum) zero-padded, so old rows keep their state and new rows start at zero;
- `forward(ids)` is an ordinary embedding lookup, so the model's loss reaches the rows when trainable;
- row 0 is the shared OOV row: a token seen fewer than `min_count` times maps there;
- with `evict_after`, rows not looked up for that many seconds are evicted and their ids are RECYCLED
  (smallest free id first): an id remembered from before an eviction may later name another token.

Ordering rule: change the vocabulary (`lookup(..., add_missing=True)` / `add`) before `forward`, never
between forward and backward of one step - growth in between changes the parameter's shape under autograd.
Threads that add tokens while another thread trains should hold `table.lock` around the training step.
"""

from __future__ import annotations

import heapq
import math
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from monovec.config import StrictModel

if TYPE_CHECKING:
    from monovec.embed.text import TextEncoder

OOV_ID = 0
TokenEncoder = Callable[[str], Any]  # token -> D floats (np.ndarray, torch.Tensor or a sequence)


class DynamicEmbeddingConfig(StrictModel):
    dim: int = Field(64, ge=1, le=65536, description="embedding width D")
    initial_capacity: int = Field(1024, ge=2, description="rows allocated up front, the OOV row included")
    growth_factor: float = Field(
        2.0, gt=1.0, le=16.0, description="capacity multiplier when full (2 = doubling)"
    )
    init: Literal["random", "mean", "encoder"] = Field(
        "random", description="new rows: seeded normal * init_scale | mean of live rows | encoder(token)"
    )
    init_scale: float = Field(0.1, gt=0.0, description="std of 'random' rows (also the OOV row)")
    min_count: int = Field(
        1, ge=1, description="sightings before a token gets its own row; rarer ones share row 0"
    )
    evict_after: float | None = Field(
        None, gt=0.0, description="evict rows not looked up for this many seconds"
    )
    trainable: bool = Field(True, description="False: requires_grad off, rows never change after their init")
    seed: int = Field(0, description="seed of the generator behind 'random' rows")


def grow_optimizer_state(optimizer: torch.optim.Optimizer, param: torch.Tensor) -> int:
    """Zero-pad each per-row state tensor of `param` up to its current row count; returns how many grew.

    Why: the table grows its Parameter in place, so the optimizer still holds it, but state sized for the
    old rows would no longer broadcast. Copying old slices keeps Adam's moments for existing rows; the zero
    tail is exactly the state a never-updated row has. Scalars such as Adam's `step` are left alone.
    """
    state = optimizer.state.get(param)
    grown = 0
    for key, value in (state or {}).items():
        if _is_row_state(value, param) and value.shape[0] < param.shape[0]:
            tail = value.new_zeros((param.shape[0] - value.shape[0], *value.shape[1:]))
            state[key] = torch.cat([value, tail])  # type: ignore[index]
            grown += 1
    return grown


def _is_row_state(value: object, param: torch.Tensor) -> bool:
    return (
        isinstance(value, torch.Tensor) and value.dim() == param.dim() and value.shape[1:] == param.shape[1:]
    )


def project_text_encoder(encoder: TextEncoder, dim: int, seed: int = 0) -> TokenEncoder:
    """token -> dim floats from a platform text encoder, for `init="encoder"`.

    A fixed seeded Gaussian projection (entries N(0, 1/dim)) keeps norms and angles roughly (JL), so
    "chocolate" starts near "cocoa"; identity when the widths already match.
    """
    proj = None
    if encoder.dim != dim:
        proj = (np.random.default_rng(seed).standard_normal((encoder.dim, dim)) / math.sqrt(dim)).astype(
            np.float32
        )

    def encode(token: str) -> np.ndarray:
        vec = np.asarray(encoder.encode([token])[0], dtype=np.float32)
        return vec if proj is None else vec @ proj

    return encode


class _RandomRows:
    """Seeded N(0, scale^2) rows drawn in blocks: one torch call per block, not per token. A plain object, so
    the per-token counter update skips nn.Module.__setattr__ (which alone would cost ~3 us a token)."""

    def __init__(self, dim: int, scale: float, seed: int) -> None:
        self.dim, self.scale = dim, scale
        self.gen = torch.Generator().manual_seed(seed)
        self.block = np.zeros((0, dim), dtype=np.float32)
        self.pos = 0

    def next(self) -> np.ndarray:
        if self.pos >= len(self.block):
            rows = max(1, min(256, 65536 // self.dim))
            self.block, self.pos = (torch.randn(rows, self.dim, generator=self.gen) * self.scale).numpy(), 0
        self.pos += 1
        return self.block[self.pos - 1]

    def state(self) -> dict[str, torch.Tensor]:
        return {"rng": self.gen.get_state(), "rand_rows": torch.from_numpy(self.block[self.pos :].copy())}

    def load(self, state: dict[str, Any]) -> None:
        self.gen.set_state(state["rng"])
        self.block, self.pos = state["rand_rows"].numpy().copy(), 0


class DynamicEmbedding(nn.Module):
    """Growing token table usable inside a model: `lookup(tokens) -> ids`, then `forward(ids) -> rows`."""

    def __init__(
        self,
        config: DynamicEmbeddingConfig | None = None,
        *,
        encoder: TokenEncoder | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.config = cfg = config or DynamicEmbeddingConfig()
        if cfg.init == "encoder" and encoder is None:
            raise ValueError("init='encoder' needs encoder=<callable token -> D floats>")
        self._encoder = encoder
        self._clock = clock
        self._lock = threading.RLock()
        self.weight = nn.Parameter(torch.zeros(cfg.initial_capacity, cfg.dim), requires_grad=cfg.trainable)
        self._id_to_token: list[str | None] = [None]  # index = id; None: the OOV row or a free (evicted) id
        self._token_to_id: dict[str, int] = {}
        self._counts: dict[str, int] = {}
        self._first_seen: dict[str, float] = {}
        self._last_used: OrderedDict[int, float] = OrderedDict()  # LRU order; kept only when evicting
        self._free: list[int] = []  # min-heap of evicted ids, reused before new ids
        self._optimizers: list[weakref.ref[torch.optim.Optimizer]] = []
        self._sum: np.ndarray | None = None  # cached sum of live rows for init="mean"
        self._sum_version = -1
        self._random = _RandomRows(cfg.dim, cfg.init_scale, cfg.seed)
        self._rows_np: np.ndarray | None = None  # numpy view of the CPU weight: a row write costs ~0.5 us
        self._rows_ptr = -1
        self.reallocations = 0
        self.vocab_version = 0  # bumped whenever a token gains or loses a row: callers cache ids against it
        self._write_row(OOV_ID, self._random.next())

    # ---- vocabulary -------------------------------------------------------------------------------
    @property
    def lock(self) -> threading.RLock:
        """Held during every vocabulary change; hold it around a training step if other threads add tokens."""
        return self._lock

    @property
    def capacity(self) -> int:
        return int(self._parameters["weight"].shape[0])  # type: ignore[union-attr]

    @property
    def num_rows(self) -> int:
        """Ids handed out so far (OOV and free ids included): valid ids are 0..num_rows-1."""
        return len(self._id_to_token)

    def __len__(self) -> int:
        """Tokens that currently own a row."""
        return len(self._token_to_id)

    def __contains__(self, token: object) -> bool:
        return token in self._token_to_id

    def lookup(self, tokens: Sequence[str], add_missing: bool = True) -> torch.Tensor:
        """Ids for `tokens` (OOV_ID for rare/unknown ones). add_missing=True counts each sighting and grows."""
        if isinstance(tokens, str):
            raise TypeError("lookup() takes a list of tokens, not one string")
        with self._lock:
            now = self._clock()
            self._evict_stale(now)
            step = self._observe if add_missing else self._peek
            ids = [step(token, now) for token in tokens]
        return torch.tensor(ids, dtype=torch.long, device=self._parameters["weight"].device)

    def add(self, token: str) -> int:
        """One sighting of one token (the streaming path); returns its id, OOV_ID while below min_count."""
        with self._lock:
            now = self._clock()
            self._evict_stale(now)
            return self._observe(token, now)

    def id_of(self, token: str) -> int | None:
        return self._token_to_id.get(token)

    def token_of(self, tid: int) -> str | None:
        return self._id_to_token[tid] if 0 <= tid < len(self._id_to_token) else None

    def vocab(self) -> dict[str, int]:
        with self._lock:
            return dict(self._token_to_id)

    # ---- novelty ----------------------------------------------------------------------------------
    def count(self, token: str) -> int:
        return self._counts.get(token, 0)

    def first_seen(self, token: str) -> float | None:
        return self._first_seen.get(token)

    def is_new(self, token: str, window: float | None = None) -> bool:
        """True while the stream has seen `token` fewer than min_count times (so: never seen, or still sharing
        the OOV row); with `window`, also while its first sighting is less than `window` seconds old.
        Counts survive eviction, so an evicted token that comes back is not new."""
        with self._lock:
            if self._counts.get(token, 0) < self.config.min_count:
                return True
            return window is not None and self._clock() - self._first_seen[token] < window

    def evict_stale(self, now: float | None = None) -> list[str]:
        """Evict tokens not looked up for more than evict_after seconds; returns them. Their ids are recycled."""
        with self._lock:
            return self._evict_stale(self._clock() if now is None else now)

    # ---- model ------------------------------------------------------------------------------------
    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Rows for ids of any shape -> (*ids.shape, dim). Ids never issued raise instead of gathering garbage."""
        with self._lock:
            if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= len(self._id_to_token)):
                raise IndexError(
                    f"ids must lie in [0, {len(self._id_to_token)}): got {ids.min()}..{ids.max()}"
                )
            return F.embedding(ids, self.weight)

    def attach_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Keep `optimizer`'s state in step with growth (padding) and recycled rows (zeroing). Held weakly."""
        if all(ref() is not optimizer for ref in self._optimizers):
            self._optimizers.append(weakref.ref(optimizer))

    def _live_optimizers(self) -> list[torch.optim.Optimizer]:
        live = [opt for ref in self._optimizers if (opt := ref()) is not None]
        if len(live) != len(self._optimizers):
            self._optimizers = [weakref.ref(opt) for opt in live]
        return live

    # ---- internals (caller holds the lock) --------------------------------------------------------
    def _observe(self, token: str, now: float) -> int:
        count = self._counts.get(token, 0) + 1
        self._counts[token] = count
        self._first_seen.setdefault(token, now)
        tid = self._token_to_id.get(token)
        if tid is None:
            if count < self.config.min_count:
                return OOV_ID
            tid = self._assign(token)
        if self.config.evict_after is not None:
            self._last_used[tid] = now
            self._last_used.move_to_end(tid)
        return tid

    def _peek(self, token: str, now: float) -> int:
        tid = self._token_to_id.get(token)
        if tid is None:
            return OOV_ID
        if self.config.evict_after is not None:
            self._last_used[tid] = now
            self._last_used.move_to_end(tid)
        return tid

    def _assign(self, token: str) -> int:
        row = self._init_row(token)  # before the token is live: "mean" is over the other rows
        if self._free:
            tid = heapq.heappop(self._free)
            self._id_to_token[tid] = token
        else:
            tid = len(self._id_to_token)
            if tid >= self.capacity:
                self._grow(tid + 1)
            self._id_to_token.append(token)
        self._token_to_id[token] = tid
        self.vocab_version += 1
        self._write_row(tid, row)
        if self._sum is not None:
            self._sum += row
        self._zero_optimizer_rows(tid)
        return tid

    def _init_row(self, token: str) -> np.ndarray:
        if self.config.init == "encoder":
            assert self._encoder is not None
            value = self._encoder(token)
            if isinstance(value, torch.Tensor):
                value = value.detach().cpu().numpy()
            vec = np.asarray(value, dtype=np.float32).reshape(-1)
            if vec.size != self.config.dim:
                raise ValueError(
                    f"encoder gave {vec.size} floats for {token!r}, table dim is {self.config.dim}"
                )
            return vec
        if self.config.init == "mean" and self._token_to_id:
            return self._live_sum() / len(self._token_to_id)
        return self._random.next()

    def _write_row(self, tid: int, row: np.ndarray) -> None:
        """Copy one row in without touching the version counter (so the "mean" cache stays valid) and, on
        CPU float32, through a cached numpy view: a torch indexing op per token would cost ~5x more."""
        param = self._parameters["weight"]
        assert param is not None
        if param.device.type != "cpu" or param.dtype != torch.float32:
            param.data[tid] = torch.from_numpy(row).to(param.device, param.dtype)
            return
        if self._rows_ptr != param.data_ptr() or self._rows_np is None:  # grown, loaded or moved since
            self._rows_np, self._rows_ptr = param.detach().numpy(), param.data_ptr()
        self._rows_np[tid] = row

    def _live_sum(self) -> np.ndarray:
        """Sum of rows 1..num_rows-1 (free rows are zero). Recomputed only when something else (an optimizer
        step) changed the weights, detected by the Parameter's version counter: amortised O(D) per token."""
        version = self.weight._version
        if self._sum is None or self._sum_version != version:
            self._sum = self.weight.detach()[1 : len(self._id_to_token)].sum(0).cpu().numpy()
            self._sum_version = version
        return self._sum

    def _grow(self, min_rows: int) -> None:
        old = self.weight.data
        rows = max(min_rows, math.ceil(old.shape[0] * self.config.growth_factor))
        new = old.new_zeros((rows, old.shape[1]))
        new[: old.shape[0]] = old
        self._rows_np = None  # drop the view so the old matrix is freed with `old`
        self.weight.data = new  # same Parameter object: optimizers and module references stay valid
        if self.weight.grad is not None:
            grad = self.weight.grad
            self.weight.grad = torch.cat([grad, grad.new_zeros((rows - grad.shape[0], grad.shape[1]))])
        for optimizer in self._live_optimizers():
            grow_optimizer_state(optimizer, self.weight)
        self._sum = None
        self.reallocations += 1

    def _zero_optimizer_rows(self, tid: int) -> None:
        if not self._optimizers:
            return
        for optimizer in self._live_optimizers():
            for value in optimizer.state.get(self.weight, {}).values():
                if _is_row_state(value, self.weight) and tid < value.shape[0]:
                    value[tid].zero_()

    def _evict_stale(self, now: float) -> list[str]:
        horizon = self.config.evict_after
        evicted: list[str] = []
        while horizon is not None and self._last_used:
            tid, last = next(iter(self._last_used.items()))
            if now - last <= horizon:
                break
            del self._last_used[tid]
            token = self._id_to_token[tid]
            assert token is not None
            del self._token_to_id[token]
            self._id_to_token[tid] = None
            heapq.heappush(self._free, tid)
            # a free row is zero with zero state: it cannot drift under Adam or skew "mean"
            self.weight.data[tid].zero_()
            self._zero_optimizer_rows(tid)
            evicted.append(token)
        if evicted:
            self._sum = None
            self.vocab_version += 1
        return evicted

    # ---- persistence: the vocabulary travels inside state_dict() as extra state -------------------
    def get_extra_state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "format": 1,
                "dim": self.config.dim,
                "id_to_token": list(self._id_to_token),
                "counts": dict(self._counts),
                "first_seen": dict(self._first_seen),
                "last_used": [[tid, t] for tid, t in self._last_used.items()],
                "free": sorted(self._free),
                **self._random.state(),
            }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        if state.get("format") != 1 or state.get("dim") != self.config.dim:
            raise ValueError(
                f"incompatible dynamic-embedding state (format/dim): expected dim {self.config.dim}"
            )
        with self._lock:
            self._id_to_token = list(state["id_to_token"])
            self._token_to_id = {t: i for i, t in enumerate(self._id_to_token) if t is not None}
            self._counts = dict(state["counts"])
            self._first_seen = dict(state["first_seen"])
            self._last_used = OrderedDict((int(tid), float(t)) for tid, t in state["last_used"])
            self._free = list(state["free"])
            heapq.heapify(self._free)
            self._random.load(state)
            self._sum, self._rows_np = None, None
            self.vocab_version += 1

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        # The saved table may have a different capacity: resize first so the strict shape check passes.
        saved = state_dict.get(prefix + "weight")
        if isinstance(saved, torch.Tensor) and saved.dim() == 2 and saved.shape != self.weight.shape:
            self._rows_np = None
            self.weight.data = self.weight.data.new_zeros(saved.shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def save(self, path: str | Path) -> Path:
        """Config + state_dict (weights and vocabulary) in one torch file, written atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with self._lock:
            torch.save({"config": self.config.model_dump(), "state_dict": self.state_dict()}, tmp)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(
        cls, path: str | Path, *, encoder: TokenEncoder | None = None, clock: Callable[[], float] = time.time
    ) -> DynamicEmbedding:
        """Inverse of `save`: same ids, rows, counts and RNG position (`weights_only` load: no pickled code)."""
        blob = torch.load(Path(path), map_location="cpu", weights_only=True)
        table = cls(DynamicEmbeddingConfig(**blob["config"]), encoder=encoder, clock=clock)
        table.load_state_dict(blob["state_dict"])
        return table

    def extra_repr(self) -> str:
        return (
            f"tokens={len(self)}, capacity={self.capacity}, dim={self.config.dim}, init={self.config.init!r}"
        )
