"""Recordings -> windows -> time-ordered train/val/test splits, one `DomainData` per load domain.

Layout read: `<root>/<domain>/<class>.npz` (key `DE`, plus `rpm`, `fs`; the shared CWRU copy) or the
same layout with CWRU's original `.mat` files (keys `X097_DE_time`, `X097RPM`), or nothing at all
(`source: synthetic`). The split cuts each *recording* by time before windowing — train from the
first part, val from the next, test from the last — so overlapping windows can never straddle two
splits and the test windows are later in time than anything trained on.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monovec.paths import resolve_data_path
from monovec.textvib.config import DataConfig, SplitConfig, WindowConfig
from monovec.textvib.synth import stable_seed, synth_signal

log = logging.getLogger(__name__)

CWRU_LOAD_HP = {1797: 0, 1772: 1, 1750: 2, 1730: 3}
_CLASS_RE = re.compile(r"^(?P<loc>IR|B|OR)(?:@(?P<clock>\d+))?_(?P<mils>\d+(?:\.\d+)?)$", re.IGNORECASE)
_LOCATIONS = {"ir": "inner", "b": "ball", "or": "outer"}


@dataclass(frozen=True)
class FaultMeta:
    """What a class name says about the bearing: where the defect is and how big (CWRU naming)."""

    name: str
    location: str  # inner | outer | ball | normal | the raw name when unknown
    diameter_mils: float | None = None
    clock: str | None = None  # outer-race defect position, e.g. "6" for 6:00


def parse_class(name: str) -> FaultMeta:
    if name.lower() in ("normal", "healthy", "n"):
        return FaultMeta(name, "normal")
    m = _CLASS_RE.match(name)
    if not m:
        return FaultMeta(name, name)
    return FaultMeta(name, _LOCATIONS[m["loc"].lower()], float(m["mils"]), m["clock"])


@dataclass
class Recording:
    domain: str
    label: str
    signal: np.ndarray
    fs: int
    rpm: float
    load_hp: float | None
    source: str


def _domain_rpm(domain: str) -> float | None:
    try:
        return float(domain)
    except ValueError:
        return None


def load_recording(path: Path, domain: str, signal_key: str = "DE") -> Recording:
    """One `.npz` (key `signal_key`, optional `rpm`, `fs`, `load_hp`) or CWRU `.mat` (`*_DE_time`, `*RPM`) file."""
    if path.suffix == ".mat":
        from scipy.io import loadmat

        raw = loadmat(path)
        keys = [k for k in raw if k.endswith(f"_{signal_key}_time")]
        if not keys:
            raise KeyError(
                f"{path}: no *_{signal_key}_time key (has {sorted(k for k in raw if not k.startswith('__'))})"
            )
        signal = np.asarray(raw[keys[0]], dtype=np.float32).ravel()
        rpm_keys = [k for k in raw if k.endswith("RPM")]
        rpm = float(np.asarray(raw[rpm_keys[0]]).ravel()[0]) if rpm_keys else _domain_rpm(domain)
        fs, load_hp = 12000, None
    else:
        with np.load(path) as raw:
            if signal_key not in raw:
                raise KeyError(f"{path}: no {signal_key!r} array (has {list(raw.keys())})")
            signal = np.asarray(raw[signal_key], dtype=np.float32).ravel()
            rpm = float(raw["rpm"]) if "rpm" in raw else _domain_rpm(domain)
            fs = int(raw["fs"]) if "fs" in raw else 12000
            load_hp = float(raw["load_hp"]) if "load_hp" in raw else None
    if rpm is None:
        raise ValueError(f"{path}: no rpm in the file and domain name {domain!r} is not a number")
    if load_hp is None:
        load_hp = CWRU_LOAD_HP.get(round(rpm))
    return Recording(domain, path.stem, signal, fs, rpm, load_hp, str(path))


def synth_recording(domain: str, label: str, cfg: DataConfig) -> Recording:
    meta = parse_class(label)
    if meta.location not in ("inner", "outer", "ball", "normal"):
        raise ValueError(
            f"cannot synthesise class {label!r}: name must look like IR_7, B_14, OR@6_21 or Normal"
        )
    rpm = _domain_rpm(domain)
    if rpm is None:
        raise ValueError(f"synthetic domain names must be rpm values, got {domain!r}")
    seed = stable_seed(cfg.synth.seed, domain, label)
    signal = synth_signal(meta.location, meta.diameter_mils or 0.0, rpm, cfg.synth, seed=seed)
    return Recording(domain, label, signal, cfg.synth.fs, rpm, CWRU_LOAD_HP.get(round(rpm)), "synthetic")


def load_domain_recordings(cfg: DataConfig, domain: str) -> list[Recording]:
    if cfg.source == "synthetic":
        return [synth_recording(domain, c, cfg) for c in cfg.classes]
    folder = resolve_data_path(cfg.root) / domain
    out = []
    for label in cfg.classes:
        found = [folder / f"{label}{ext}" for ext in (".npz", ".mat") if (folder / f"{label}{ext}").is_file()]
        if found:
            out.append(load_recording(found[0], domain, cfg.signal_key))
        elif cfg.synthesize_missing:
            log.warning("domain %s has no %s recording: using the synthetic generator", domain, label)
            out.append(synth_recording(domain, label, cfg))
        else:
            raise FileNotFoundError(
                f"no {label}.npz or {label}.mat in {folder} (set data.synthesize_missing to generate it)"
            )
    return out


def split_bounds(n: int, split: SplitConfig) -> list[tuple[int, int]]:
    """Sample ranges [train, val, test] of a recording of n samples, in time order, non-overlapping."""
    a = int(n * split.train)
    b = int(n * (split.train + split.val))
    return [(0, a), (a, b), (b, n)]


def window_starts(start: int, end: int, window: WindowConfig, cap: int | None = None) -> np.ndarray:
    """Start offsets of every full window inside [start, end); `cap` keeps that many, evenly spread."""
    if end - start < window.length:
        return np.zeros(0, dtype=np.int64)
    starts = np.arange(start, end - window.length + 1, window.hop, dtype=np.int64)
    if cap is not None and len(starts) > cap:
        starts = starts[np.linspace(0, len(starts) - 1, cap).round().astype(int)]
    return starts


def cut_windows(signal: np.ndarray, starts: np.ndarray, window: WindowConfig) -> np.ndarray:
    if len(starts) == 0:
        return np.zeros((0, window.length), dtype=np.float32)
    x = np.stack([signal[s : s + window.length] for s in starts]).astype(np.float32)
    if window.normalise == "zscore":
        x = (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + 1e-8)
    return x


@dataclass
class SplitData:
    x: np.ndarray  # (N, L) float32
    y: np.ndarray  # (N,) int64 class index
    starts: np.ndarray  # (N,) sample offset of each window in its recording

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class DomainData:
    name: str
    rpm: float
    load_hp: float | None
    classes: list[str]
    train: SplitData
    val: SplitData
    test: SplitData
    sources: dict[str, str] = field(default_factory=dict)

    def split(self, name: str) -> SplitData:
        return {"train": self.train, "val": self.val, "test": self.test}[name]


def _stack(parts: list[tuple[np.ndarray, int, np.ndarray]], length: int) -> SplitData:
    xs = [p[0] for p in parts if len(p[0])]
    if not xs:
        return SplitData(np.zeros((0, length), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64))
    return SplitData(
        np.concatenate(xs),
        np.concatenate([np.full(len(p[0]), p[1], np.int64) for p in parts]),
        np.concatenate([p[2] for p in parts]),
    )


def build_domain(
    recordings: list[Recording], classes: list[str], cfg: DataConfig, whole: bool = False
) -> DomainData:
    """Window every recording of one domain; `whole=True` puts every window of a recording in `test`."""
    index = {c: i for i, c in enumerate(classes)}
    parts: dict[str, list] = {"train": [], "val": [], "test": []}
    for rec in recordings:
        bounds = [(0, 0), (0, 0), (0, len(rec.signal))] if whole else split_bounds(len(rec.signal), cfg.split)
        for name, (a, b) in zip(("train", "val", "test"), bounds, strict=True):
            cap = cfg.max_train_windows if name == "train" else cfg.max_eval_windows
            starts = window_starts(a, b, cfg.window, cap)
            parts[name].append((cut_windows(rec.signal, starts, cfg.window), index[rec.label], starts))
    first = recordings[0]
    return DomainData(
        name=first.domain,
        rpm=first.rpm,
        load_hp=first.load_hp,
        classes=list(classes),
        train=_stack(parts["train"], cfg.window.length),
        val=_stack(parts["val"], cfg.window.length),
        test=_stack(parts["test"], cfg.window.length),
        sources={r.label: r.source for r in recordings},
    )


def load_domains(cfg: DataConfig) -> list[DomainData]:
    """Every configured domain, in training order."""
    return [build_domain(load_domain_recordings(cfg, d), cfg.classes, cfg) for d in cfg.domains]


def discover_domains(root: Path) -> list[str]:
    """Sub-folders of `root` that hold .npz/.mat recordings (numeric names sorted by descending rpm)."""
    found = [
        p.name
        for p in sorted(root.iterdir())
        if p.is_dir() and (any(p.glob("*.npz")) or any(p.glob("*.mat")))
    ]
    return sorted(found, key=lambda d: (-(_domain_rpm(d) or 0.0), d))
