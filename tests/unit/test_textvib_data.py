"""TextVibCLIP data: windowing, per-window normalisation, time-ordered split without leaks, loaders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from monovec.textvib.config import DataConfig, SplitConfig, WindowConfig
from monovec.textvib.data import (
    build_domain,
    cut_windows,
    discover_domains,
    load_domain_recordings,
    load_domains,
    load_recording,
    parse_class,
    split_bounds,
    window_starts,
)

REPO = Path(__file__).resolve().parents[2]
CWRU = REPO.parent / "shared" / "data" / "cwru"


def test_window_starts_and_cap() -> None:
    w = WindowConfig(length=100, hop=25)
    starts = window_starts(0, 300, w)
    assert starts.tolist() == [0, 25, 50, 75, 100, 125, 150, 175, 200]  # last full window ends at 300
    assert window_starts(10, 105, w).size == 0  # shorter than one window
    capped = window_starts(0, 300, w, cap=3)
    assert capped.tolist() == [0, 100, 200]  # evenly spread, not the first three


def test_windows_are_normalised_per_window() -> None:
    rng = np.random.default_rng(0)
    signal = (rng.normal(size=5000) * np.linspace(0.1, 10, 5000) + 3).astype(np.float32)
    x = cut_windows(
        signal, window_starts(0, 5000, WindowConfig(length=256, hop=256)), WindowConfig(length=256, hop=256)
    )
    np.testing.assert_allclose(x.mean(axis=1), 0, atol=1e-4)
    np.testing.assert_allclose(x.std(axis=1), 1, atol=1e-3)
    raw = cut_windows(signal, np.array([0]), WindowConfig(length=256, hop=256, normalise="none"))
    np.testing.assert_array_equal(raw[0], signal[:256])


def test_split_is_time_ordered_and_windows_never_cross() -> None:
    cfg = DataConfig(
        source="synthetic",
        domains=["1797"],
        classes=["IR_7", "B_14", "OR@6_21"],
        window=WindowConfig(length=512, hop=128),
        split=SplitConfig(train=0.6, val=0.2),
    )
    cfg.synth.seconds = 2.0
    dom = build_domain(load_domain_recordings(cfg, "1797"), cfg.classes, cfg)
    n = int(cfg.synth.seconds * cfg.synth.fs)
    (a0, a1), (b0, b1), (c0, c1) = split_bounds(n, cfg.split)
    assert a1 == b0 and b1 == c0 and c1 == n
    for k in range(len(cfg.classes)):
        tr, va, te = (s.starts[s.y == k] for s in (dom.train, dom.val, dom.test))
        assert len(tr) and len(va) and len(te)
        # every sample of a window lies inside its own split's range: no window spans two splits
        assert tr.min() >= a0 and tr.max() + 512 <= a1
        assert va.min() >= b0 and va.max() + 512 <= b1
        assert te.min() >= c0 and te.max() + 512 <= c1
        assert tr.max() + 512 <= va.min() and va.max() + 512 <= te.min()


@pytest.mark.shared_data
def test_real_cwru_domain_has_every_class_in_every_split() -> None:
    cfg = DataConfig(domains=["1750"])
    (dom,) = load_domains(cfg)
    assert dom.rpm == 1750 and dom.load_hp == 2
    for part in (dom.train, dom.val, dom.test):
        assert np.bincount(part.y, minlength=9).min() > 10
        assert part.x.shape[1] == 2048 and part.x.dtype == np.float32
    # windows of the test part start after every training sample of the same recording
    for k in range(9):
        assert dom.train.starts[dom.train.y == k].max() + 2048 <= dom.test.starts[dom.test.y == k].min()


def test_parse_class_names() -> None:
    assert parse_class("IR_7").location == "inner" and parse_class("IR_7").diameter_mils == 7
    m = parse_class("OR@6_21")
    assert (m.location, m.diameter_mils, m.clock) == ("outer", 21, "6")
    assert parse_class("B_14").location == "ball"
    assert parse_class("Normal").location == "normal"
    assert parse_class("weird").location == "weird"


def test_npz_folder_and_mat_loader(tmp_path: Path) -> None:
    from scipy.io import savemat

    rng = np.random.default_rng(1)
    for dom in ("1800", "1700"):
        (tmp_path / dom).mkdir()
        for label in ("IR_7", "OR@6_7"):
            np.savez(
                tmp_path / dom / f"{label}.npz",
                DE=rng.normal(size=6000).astype(np.float32),
                rpm=int(dom),
                fs=12000,
            )
    savemat(
        tmp_path / "1700" / "B_7.mat",
        {"X118_DE_time": rng.normal(size=(6000, 1)), "X118RPM": np.array([[1701]])},
    )
    rec = load_recording(tmp_path / "1700" / "B_7.mat", "1700")
    assert rec.signal.shape == (6000,) and rec.rpm == 1701 and rec.label == "B_7"
    assert discover_domains(tmp_path) == ["1800", "1700"]  # descending rpm = CWRU's load order
    cfg = DataConfig(
        source="npz",
        root=str(tmp_path),
        domains=["1800", "1700"],
        classes=["IR_7", "OR@6_7"],
        window=WindowConfig(length=256, hop=256),
    )
    doms = load_domains(cfg)
    assert [d.name for d in doms] == ["1800", "1700"] and doms[0].rpm == 1800
    assert sorted(set(doms[1].test.y.tolist())) == [0, 1]
    with pytest.raises(FileNotFoundError, match="synthesize_missing"):
        load_domains(cfg.model_copy(update={"classes": ["IR_7", "B_21"]}))
    filled = load_domains(cfg.model_copy(update={"classes": ["IR_7", "B_21"], "synthesize_missing": True}))
    assert filled[0].sources["B_21"] == "synthetic"
