"""Synthetic bearing vibration: characteristic frequencies from geometry, and where the energy lands."""

from __future__ import annotations

import numpy as np
import pytest

from monovec.textvib.config import SynthConfig
from monovec.textvib.synth import envelope_spectrum, fault_frequencies, synth_signal


def test_fault_frequencies_match_cwru_drive_end_bearing() -> None:
    # CWRU publishes the 6205-2RS JEM multiples of the shaft rate: BPFI 5.4152, BPFO 3.5848, FTF 0.39828, BSF 2.357
    f = fault_frequencies(1797)
    fr = 1797 / 60
    assert f["shaft"] == pytest.approx(fr)
    assert f["bpfi"] / fr == pytest.approx(5.4152, rel=2e-3)
    assert f["bpfo"] / fr == pytest.approx(3.5848, rel=2e-3)
    assert f["ftf"] / fr == pytest.approx(0.39828, rel=2e-3)
    assert f["bsf"] / fr == pytest.approx(2.357, rel=5e-3)


@pytest.mark.parametrize(("location", "rate"), [("outer", "bpfo"), ("inner", "bpfi"), ("ball", "bsf")])
def test_envelope_spectrum_peaks_at_the_fault_rate(location: str, rate: str) -> None:
    cfg = SynthConfig(seconds=4.0, noise=0.2)
    x = synth_signal(location, 14, 1750, cfg, seed=3)
    freqs, mag = envelope_spectrum(x, cfg.fs)
    band = (freqs > 20) & (freqs < 400)
    peak = freqs[band][np.argmax(mag[band])]
    assert peak == pytest.approx(fault_frequencies(1750)[rate], abs=1.5)


def test_inner_race_has_shaft_rate_sidebands_and_is_seeded() -> None:
    cfg = SynthConfig(seconds=4.0, noise=0.1)
    x = synth_signal("inner", 21, 1797, cfg, seed=5)
    np.testing.assert_array_equal(x, synth_signal("inner", 21, 1797, cfg, seed=5))
    assert not np.array_equal(x, synth_signal("inner", 21, 1797, cfg, seed=6))
    freqs, mag = envelope_spectrum(x, cfg.fs)
    f = fault_frequencies(1797)

    def at(hz: float) -> float:
        return float(mag[np.abs(freqs - hz) < 1.0].max())

    floor = float(np.median(mag[(freqs > 20) & (freqs < 400)]))
    assert at(f["bpfi"] - f["shaft"]) > 5 * floor and at(f["bpfi"] + f["shaft"]) > 5 * floor


def test_normal_bearing_has_no_fault_line_and_bigger_faults_are_stronger() -> None:
    cfg = SynthConfig(seconds=2.0)
    normal = synth_signal("normal", 0, 1797, cfg, seed=1)
    small, large = synth_signal("outer", 7, 1797, cfg, seed=1), synth_signal("outer", 21, 1797, cfg, seed=1)
    assert np.abs(large).max() > np.abs(small).max() > np.abs(normal).max()
    assert normal.dtype == np.float32 and normal.shape == (2 * cfg.fs,)
