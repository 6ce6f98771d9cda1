"""Simulated coffee drinkers over the real CQI lots: hidden, slowly drifting tastes -> noisy feedback events.

Ground truth per lot: x_i = [family affinities (13, standardised) | profile (15: acidity, body, sweetness,
aroma, quality, defects, altitude z-scores; process, continent, robusta one-hots)] - the same latent the
notes were generated from (data.py), so the model can only get at it through notes, scores and metadata.

Per user u: preference w_u over x drawn from the population prior - `taste_model: archetypes` (default):
mu + a centred Dirichlet(0.3) mix of six taste segments (ARCHETYPES: bright-fruity, chocolate-nutty,
natural-funky, sweet-balanced, bold-earthy, floral-delicate) + N(0, (0.6 sigma)^2) individual noise;
`independent`: mu + N(0, sigma^2) plus two loved and one disliked family - a like threshold theta_u, a context sensitivity gamma_u, a daily routine (morning / afternoon /
evening mix), a mood baseline and an activity level; a fifth of the users are there from the start, the
rest join uniformly over the first `arrival_span` of the stream.

Per event at time t (days): an active user, a context (hour from the routine, weekday, shared daily
weather and temperature, mood, energy), a lot - chosen by the user's own expected taste with probability
`personal_exposure` (softmax of utility / 0.5), from the bestseller list with probability
`popular_exposure` (Zipf over a hidden popularity rank), else uniformly (the shop's rotation) - and a
verdict: utility = (w_u(t) + gamma_u * shift(context)) . x_i / c - 0.3 |brew ratio z|, liked with
probability sigmoid((utility - theta_u) / noise). Rating (60 %) agrees with the verdict; 30 % of events
carry only the rating. Drift: between a user's events w moves towards a fresh prior draw as an AR(1)
(around the prior mean) with half-life `drift_half_life_days`. Notes (35 %): 1-2 terms of the lot's likely families, in Korean
with p = 0.4; after `trend_from` of the stream half of them are trend words never seen before
(vocab.TREND_TERMS). Everything is drawn from one numpy Generator seeded by `seed`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from monovec.config import StrictModel
from monovec.taste.data import PROFILE, Catalogue
from monovec.taste.vocab import FAMILIES, TERMS, TREND_TERMS

DIM = len(FAMILIES) + len(PROFILE)
_F = {f: i for i, f in enumerate(FAMILIES)}
_P = {p: len(FAMILIES) + i for i, p in enumerate(PROFILE)}
# context -> preference shift (documented in the module docstring of docs/taste2vec.md)
SHIFTS: dict[str, dict[int, float]] = {
    "morning": {_F["citrus"]: 0.5, _F["floral"]: 0.4, _F["tea"]: 0.3, _P["acid"]: 0.3},
    "evening": {_F["chocolate"]: 0.5, _F["nutty"]: 0.3, _F["sweet"]: 0.3, _P["body"]: 0.3, _P["acid"]: -0.3},
    "cold": {_P["body"]: 0.3, _F["chocolate"]: 0.3, _F["spice"]: 0.3, _F["sweet"]: 0.2},
    "hot": {_F["citrus"]: 0.4, _F["tropical"]: 0.4, _F["floral"]: 0.2, _P["body"]: -0.2},
    "upbeat": {_F["winey"]: 0.4, _F["berry"]: 0.3, _P["natural"]: 0.3},
    "low": {_F["sweet"]: 0.4, _F["chocolate"]: 0.3},
}
WEATHER_STATES = ("sunny", "cloudy", "rainy", "snowy")
# Taste archetypes (consumer segments, loosely after coffee-preference studies): loadings over the same
# 28 dimensions. A user is a Dirichlet(0.3) mix of them plus individual noise.
ARCHETYPES: dict[str, dict[int, float]] = {
    "bright_fruity": {
        _F["citrus"]: 1.2,
        _F["berry"]: 0.8,
        _F["floral"]: 0.6,
        _P["acid"]: 0.6,
        _P["africa"]: 0.5,
        _F["roasted"]: -0.8,
    },
    "chocolate_nutty": {
        _F["chocolate"]: 1.2,
        _F["nutty"]: 1.0,
        _F["sweet"]: 0.4,
        _P["body"]: 0.6,
        _P["acid"]: -0.6,
        _P["south_america"]: 0.5,
    },
    "natural_funky": {
        _F["winey"]: 1.2,
        _F["berry"]: 0.6,
        _F["tropical"]: 0.8,
        _P["natural"]: 0.8,
        _F["green"]: -0.6,
    },
    "sweet_balanced": {
        _F["sweet"]: 1.2,
        _F["stone_fruit"]: 0.8,
        _P["sweet"]: 0.6,
        _P["honey"]: 0.5,
        _F["spice"]: -0.6,
    },
    "bold_earthy": {
        _F["roasted"]: 1.2,
        _F["spice"]: 0.8,
        _P["body"]: 0.6,
        _P["asia_pacific"]: 0.5,
        _P["robusta"]: 0.8,
        _F["floral"]: -0.6,
    },
    "floral_delicate": {
        _F["floral"]: 1.2,
        _F["tea"]: 1.0,
        _P["alt"]: 0.5,
        _P["washed"]: 0.5,
        _P["body"]: -0.6,
        _F["roasted"]: -0.6,
    },
}


class SimConfig(StrictModel):
    users: int = Field(300, ge=2, description="simulated users")
    events: int = Field(20000, ge=10, description="feedback events in the stream")
    seed: int = Field(0, description="seeds everything in the simulation")
    days: float = Field(60.0, gt=0, description="time the stream spans")
    arrival_span: float = Field(
        0.5, ge=0, le=1, description="users join uniformly over this share of the stream"
    )
    drift_half_life_days: float = Field(45.0, gt=0, description="half-life of a user's taste (AR(1) drift)")
    personal_exposure: float = Field(0.3, ge=0, le=1, description="share of lots the user picked by taste")
    popular_exposure: float = Field(
        0.3, ge=0, le=1, description="share of lots from the bestseller list (Zipf)"
    )
    noise: float = Field(0.35, gt=0, description="logistic noise on the utility (in utility std units)")
    taste_model: Literal["archetypes", "independent"] = Field(
        "archetypes",
        description="archetypes: a Dirichlet mix of 6 taste segments + individual noise; "
        "independent: 2 loved + 1 disliked family drawn per user, no shared structure",
    )
    note_rate: float = Field(0.35, ge=0, le=1, description="share of events with the taster's own terms")
    trend_from: float = Field(
        0.5, ge=0, le=1, description="share of the stream after which trend words appear"
    )
    brew_rate: float = Field(0.5, ge=0, le=1, description="share of events with brewing variables")
    malformed_rate: float = Field(0.0, ge=0, le=0.5, description="share of events deliberately broken")

    @model_validator(mode="after")
    def _exposure_shares(self) -> SimConfig:
        if self.personal_exposure + self.popular_exposure > 1:
            raise ValueError("personal_exposure + popular_exposure must be <= 1 (the rest is uniform)")
        return self


@dataclass
class SimUser:
    w: np.ndarray
    theta: float
    gamma: float
    routine: np.ndarray  # weights of morning / afternoon / evening
    mood: float
    activity: float
    arrival: float
    last_t: float = 0.0


class Simulator:
    def __init__(self, catalogue: Catalogue, config: SimConfig) -> None:
        self.cat, self.cfg = catalogue, config
        self.rng = rng = np.random.default_rng(config.seed)
        aff = catalogue.affinity
        self.x = np.concatenate([(aff - aff.mean(0)) / aff.std(0).clip(1e-6), catalogue.profile], axis=1)
        self.mu, self.sigma = np.zeros(DIM), np.full(DIM, 0.35)
        for name, (m, s) in {
            "acid": (0, 0.5),
            "body": (0, 0.5),
            "sweet": (0.2, 0.3),
            "aroma": (0.2, 0.3),
            "quality": (0.4, 0.3),
            "defects": (-0.3, 0.2),
            "alt": (0, 0.2),
            "washed": (0, 0.4),
            "natural": (0, 0.4),
            "honey": (0, 0.4),
            "africa": (0, 0.4),
            "central_america": (0, 0.4),
            "south_america": (0, 0.4),
            "asia_pacific": (0, 0.4),
            "robusta": (-0.5, 0.5),
        }.items():
            self.mu[_P[name]], self.sigma[_P[name]] = m, s
        self.archetypes = np.zeros((len(ARCHETYPES), DIM))
        for k, loadings in enumerate(ARCHETYPES.values()):
            for dim, value in loadings.items():
                self.archetypes[k, dim] = value
        if config.taste_model == "archetypes":
            self.sigma = self.sigma * 0.6  # individual deviations around the segment mix
        probe = np.random.default_rng(config.seed + 1)
        self.center = np.mean([self._prior_sample(probe) for _ in range(2000)], axis=0)  # the drift's anchor
        self.users = [self._new_user(j) for j in range(config.users)]
        self.scale = float(np.std(np.stack([self.x @ u.w for u in self.users[:50]])))
        pop_rank = np.argsort(
            np.argsort(-(catalogue.profile[:, PROFILE.index("quality")] + rng.normal(0, 1, len(catalogue))))
        )
        self.pop = 1.0 / (pop_rank + 10.0)
        self.pop /= self.pop.sum()
        n_days = int(math.ceil(config.days)) + 1
        self.weather = self._weather(n_days)
        self.temp = 15 + rng.normal(0, 7, n_days)

    def _prior_sample(self, rng: np.random.Generator) -> np.ndarray:
        """One taste vector from the population prior."""
        w = self.mu + self.sigma * rng.normal(size=DIM)
        if self.cfg.taste_model == "archetypes":
            k = len(self.archetypes)  # centred mix: segments differ from each other, not from everyone else
            return w + (rng.dirichlet(np.full(k, 0.3)) - 1.0 / k) @ self.archetypes
        loved = rng.choice(len(FAMILIES), size=3, replace=False)
        w[loved[:2]] += 1.2
        w[loved[2]] -= 1.0
        return w

    def _new_user(self, j: int) -> SimUser:
        rng = self.rng
        return SimUser(
            w=self._prior_sample(rng),
            theta=float(rng.normal(0.6, 0.3)),
            gamma=float(rng.uniform(0.5, 1.5)),
            routine=rng.dirichlet([1.0, 1.0, 1.0]),
            mood=float(rng.uniform(3.5, 7.5)),
            activity=float(rng.lognormal(0, 0.8)),
            arrival=0.0
            if j < max(1, self.cfg.users // 5)
            else float(rng.uniform(0, self.cfg.arrival_span * self.cfg.days)),
        )

    def _weather(self, n: int) -> list[str]:
        state, out = 0, []
        for _ in range(n):
            if self.rng.uniform() < 0.35:
                state = int(self.rng.choice(4, p=[0.45, 0.3, 0.17, 0.08]))
            out.append(WEATHER_STATES[state])
        return out

    def _context(self, u: SimUser, t: float) -> dict[str, float | int | str]:
        rng, day = self.rng, int(t)
        centre = (8.0, 14.0, 19.0)[int(rng.choice(3, p=u.routine))]
        hour = int(np.clip(round(rng.normal(centre, 1.5)), 0, 23))
        return {
            "hour": hour,
            "weekday": day % 7,
            "weather": self.weather[day],
            "temp_c": round(float(self.temp[day]), 1),
            "mood": round(float(np.clip(rng.normal(u.mood, 1.5), 1, 10)), 1),
            "energy": round(float(np.clip(rng.normal(6, 2), 1, 10)), 1),
        }

    @staticmethod
    def shift(ctx: dict) -> np.ndarray:
        out = np.zeros(DIM)
        on = {
            "morning": ctx["hour"] < 11,
            "evening": ctx["hour"] >= 17,
            "cold": ctx["temp_c"] < 8 or ctx["weather"] in ("rainy", "snowy"),
            "hot": ctx["temp_c"] > 24,
            "upbeat": ctx["mood"] >= 7,
            "low": ctx["mood"] <= 3,
        }
        for name, active in on.items():
            if active:
                for k, v in SHIFTS[name].items():
                    out[k] += v
        return out

    def _drift(self, u: SimUser, t: float) -> None:
        """AR(1) towards a fresh draw from the prior: the taste keeps the prior's spread while it wanders."""
        rho = 0.5 ** (max(t - u.last_t, 0.0) / self.cfg.drift_half_life_days)
        fresh = self._prior_sample(self.rng)
        u.w = self.center + rho * (u.w - self.center) + math.sqrt(1 - rho**2) * (fresh - self.center)
        u.last_t = t

    def utilities(self, u: SimUser, ctx: dict) -> np.ndarray:
        return self.x @ (u.w + u.gamma * self.shift(ctx)) / self.scale

    def _notes(self, i: int, late: bool) -> list[str]:
        rng = self.rng
        p = np.exp(self.cat.affinity[i] / 0.5)
        out = []
        for _ in range(int(rng.integers(1, 3))):
            fam = FAMILIES[int(rng.choice(len(FAMILIES), p=p / p.sum()))]
            pairs = TREND_TERMS[fam] if late and rng.uniform() < 0.5 else TERMS[fam]
            pair = pairs[int(rng.integers(len(pairs)))]
            out.append(pair[1] if rng.uniform() < 0.4 else pair[0])
        return out

    def events(self) -> list[tuple[dict, float]]:
        """The stream in time order: (event dict, true like probability)."""
        cfg, rng, out = self.cfg, self.rng, []
        times = np.sort(rng.uniform(0, cfg.days, cfg.events))
        arrivals = np.array([u.arrival for u in self.users])
        activity = np.array([u.activity for u in self.users])
        for n, t in enumerate(times):
            active = np.flatnonzero(arrivals <= t)
            j = int(active[rng.choice(len(active), p=activity[active] / activity[active].sum())])
            u = self.users[j]
            self._drift(u, t)
            ctx = self._context(u, t)
            util = self.utilities(u, ctx)
            draw = rng.uniform()
            if draw < cfg.personal_exposure:
                p = np.exp((util - util.max()) / 0.5)
                i = int(rng.choice(len(util), p=p / p.sum()))
            elif draw < cfg.personal_exposure + cfg.popular_exposure:
                i = int(rng.choice(len(util), p=self.pop))
            else:
                i = int(rng.integers(len(util)))
            ev: dict = {
                "event_id": f"e{n:07d}",
                "user_id": f"u{j:04d}",
                "item_id": self.cat.ids[i],
                "ts": round(1.7e9 + t * 86400, 1),
                "context": ctx,
            }
            u_i = util[i]
            if rng.uniform() < cfg.brew_rate:
                brew = {
                    "temp_c": round(float(np.clip(rng.normal(92, 2.5), 80, 99)), 1),
                    "ratio": round(float(np.clip(rng.normal(16, 1.8), 10, 22)), 1),
                    "time_s": round(float(np.clip(rng.normal(210, 45), 60, 420))),
                    "grind_um": round(float(np.clip(rng.normal(600, 150), 200, 1200))),
                }
                ev["brew"] = brew
                u_i -= 0.3 * abs(brew["ratio"] - 16) / 2
            p_like = 1 / (1 + math.exp(-(u_i - u.theta) / cfg.noise))
            liked = bool(rng.uniform() < p_like)
            if rng.uniform() < 0.6:
                ev["rating"] = int(
                    rng.choice([4, 5], p=[0.6, 0.4]) if liked else rng.choice([1, 2, 3], p=[0.2, 0.4, 0.4])
                )
            if "rating" not in ev or rng.uniform() >= 0.5:
                ev["liked"] = liked
            if rng.uniform() < cfg.note_rate:
                ev["notes"] = self._notes(i, late=n >= cfg.trend_from * cfg.events)
            out.append((ev, p_like))
        return out


def break_event(event: dict, rng: np.random.Generator) -> str:
    """One malformed line (as text) from a good event: what a buggy client or a truncated write produces."""
    bad = json.loads(json.dumps(event))
    kind = int(rng.integers(6))
    if kind == 0:
        bad.pop("user_id")
    elif kind == 1:
        bad["item_id"] = "no-such-lot"
    elif kind == 2:
        bad.pop("liked", None)
        bad["rating"] = float("nan")
    elif kind == 3:
        bad["context"]["hour"] = 99
    elif kind == 4:
        bad["liked"] = "yes"
    else:
        return json.dumps(bad)[: len(json.dumps(bad)) // 2]  # truncated JSON
    return json.dumps(bad, allow_nan=True)
