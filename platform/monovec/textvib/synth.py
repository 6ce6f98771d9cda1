"""Synthetic rolling-bearing vibration: physics-shaped enough to test the pipeline and to fill missing domains.

A localised defect hits the rolling elements at a characteristic rate (BPFO / BPFI / BSF from the
bearing geometry and the shaft rate); every hit rings the structure's resonance (a decaying sinusoid);
defects that rotate through the load zone are amplitude-modulated (inner race by the shaft rate, a
ball by the cage rate); shaft harmonics and white noise sit on top. The default geometry is the CWRU
drive-end bearing (SKF 6205-2RS JEM).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from monovec.textvib.config import SynthConfig


@dataclass(frozen=True)
class BearingGeometry:
    n_balls: int = 9
    ball_diameter: float = 0.3126  # inch
    pitch_diameter: float = 1.537  # inch
    contact_angle_deg: float = 0.0


def fault_frequencies(rpm: float, geometry: BearingGeometry | None = None) -> dict[str, float]:
    """Shaft, cage (FTF), outer-race (BPFO), inner-race (BPFI) and ball-spin (BSF) frequencies in Hz."""
    g = geometry or BearingGeometry()
    fr = rpm / 60.0
    ratio = g.ball_diameter / g.pitch_diameter * math.cos(math.radians(g.contact_angle_deg))
    return {
        "shaft": fr,
        "ftf": fr / 2 * (1 - ratio),
        "bpfo": g.n_balls / 2 * fr * (1 - ratio),
        "bpfi": g.n_balls / 2 * fr * (1 + ratio),
        "bsf": g.pitch_diameter / (2 * g.ball_diameter) * fr * (1 - ratio**2),
    }


LOCATION_RATE = {"outer": "bpfo", "inner": "bpfi", "ball": "bsf"}


def synth_signal(
    location: str,
    diameter_mils: float,
    rpm: float,
    cfg: SynthConfig | None = None,
    seed: int | None = None,
    geometry: BearingGeometry | None = None,
) -> np.ndarray:
    """One recording (float32) for `location` in {outer, inner, ball, normal} with a defect of `diameter_mils`."""
    cfg = cfg or SynthConfig()
    rng = np.random.default_rng(cfg.seed if seed is None else seed)
    n = int(cfg.seconds * cfg.fs)
    t = np.arange(n) / cfg.fs
    f = fault_frequencies(rpm, geometry)
    fr = f["shaft"]
    x = 0.2 * np.sin(2 * np.pi * fr * t + rng.uniform(0, 2 * np.pi)) + 0.05 * np.sin(2 * np.pi * 2 * fr * t)
    if location != "normal":
        rate = f[LOCATION_RATE[location]]
        severity = 0.5 + diameter_mils / 7.0  # bigger defects hit harder
        period = 1.0 / rate
        # impulse times with 1% slip jitter (rolling elements slide a little)
        times = np.arange(rng.uniform(0, period), cfg.seconds, period)
        times = times + rng.normal(0, 0.01 * period, size=times.shape)
        if location == "inner":
            amp = 1.0 + 0.8 * np.cos(2 * np.pi * fr * times)  # load-zone modulation at the shaft rate
        elif location == "ball":
            amp = 1.0 + 0.8 * np.cos(2 * np.pi * f["ftf"] * times)  # at the cage rate
        else:
            amp = np.ones_like(times)  # stationary outer-race defect
        impulses = np.zeros(n)
        idx = np.clip((times * cfg.fs).astype(int), 0, n - 1)
        np.add.at(impulses, idx, severity * np.clip(amp, 0, None))
        k = np.arange(int(5 * cfg.fs / cfg.damping))  # response until ~e^-5
        kernel = np.exp(-cfg.damping * k / cfg.fs) * np.sin(2 * np.pi * cfg.resonance_hz * k / cfg.fs)
        x = x + np.convolve(impulses, kernel)[:n]
    x = x + rng.normal(0, cfg.noise, size=n)
    return x.astype(np.float32)


def envelope_spectrum(x: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """(freqs, magnitude) of the Hilbert envelope: where bearing fault rates show up as peaks."""
    x = np.asarray(x, dtype=np.float64) - np.mean(x)
    n = len(x)
    spec = np.fft.fft(x)
    h = np.zeros(n)
    h[0] = 1
    if n % 2 == 0:
        h[n // 2] = 1
        h[1 : n // 2] = 2
    else:
        h[1 : (n + 1) // 2] = 2
    env = np.abs(np.fft.ifft(spec * h))
    env = env - env.mean()
    mag = np.abs(np.fft.rfft(env)) / n
    return np.fft.rfftfreq(n, 1 / fs), mag


def stable_seed(*parts: object) -> int:
    """A seed derived from names (same on every process and run, unlike hash())."""
    return zlib.crc32("|".join(map(str, parts)).encode()) & 0x7FFFFFFF
