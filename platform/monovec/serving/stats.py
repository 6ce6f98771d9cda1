"""Experiment statistics: the two-proportion test and a peeking-safe decision rule.

The experiment is evaluated whenever someone asks (``GET /v1/experiment``, a periodic
evaluator, a person running ``monovec experiment evaluate``), i.e. the data are *peeked at*
many times. Testing at a fixed alpha at every look inflates the false-positive rate (about 25%
instead of 5% with 20 looks); the rule here keeps it at or below alpha however often one looks.

Which rule and why: an **O'Brien-Fleming-type alpha-spending boundary for continuous
monitoring**. With information fraction ``t`` in (0, 1], the z statistic is significant when

    |z| >= c_alpha / sqrt(t),   with  P(sup_{0 <= s <= 1} |B(s)| >= c_alpha) = alpha

for a standard Brownian motion ``B`` (c_0.05 ≈ 2.241). Since ``z * sqrt(t)`` behaves like
``B(t)``, this caps the false-positive rate at alpha over *every* look up to ``t = 1``, with no
need to fix the number or timing of looks in advance; discrete looks cross less often than the
continuous path, so the real rate is a bit below alpha. Chosen over a mixture SPRT because it
is a plain z threshold that is easy to explain in a dashboard ("the bar falls as data accrue"),
it spends almost no alpha early (so early noise cannot promote a model) and it is more powerful
near the planned size; the price is a planned maximum, ``max_samples_per_arm``. The cumulative
alpha spent by ``t`` is reported as ``alpha_spent``.

Information fraction: ``t = (2 / max_samples_per_arm) / (1/n_a + 1/n_b)``, the precision of the
difference now relative to a balanced design with ``max_samples_per_arm`` per arm. It equals
``n / max_samples_per_arm`` for balanced arms and accounts for a 90/10 split's smaller arm.
Looks beyond ``t = 1`` use the final boundary ``c_alpha`` and are flagged ``final``: the test's
guarantee ends there, so a result that is still not significant means "no detectable effect,
stop the experiment".
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any, Literal

from pydantic import Field, model_validator
from scipy.optimize import brentq
from scipy.stats import binomtest

from monovec.config import StrictModel

Action = Literal["promote_to_production", "rollback", "continue_experiment"]
_Z975 = 1.959963984540054


def _normal_two_sided_p(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2.0))


def _check_counts(successes: int, n: int, name: str) -> None:
    if n <= 0:
        raise ValueError(f"{name}: n must be > 0, got {n}")
    if not 0 <= successes <= n:
        raise ValueError(f"{name}: successes must lie in [0, n={n}], got {successes}")


def two_proportion_test(success_a: int, n_a: int, success_b: int, n_b: int) -> dict[str, Any]:
    """Pooled two-proportion z test of B (treatment) against A (control).

    ``z`` uses the pooled rate (the variance under H0: equal rates); the 95% CI of
    ``diff = p_b - p_a`` uses the unpooled (Wald) standard error, since it describes the
    effect rather than H0. ``relative_lift = diff / p_a`` is None when ``p_a`` is 0.
    All values are finite (a zero standard error gives ``z = 0``, ``p = 1``).
    """
    _check_counts(success_a, n_a, "control")
    _check_counts(success_b, n_b, "treatment")
    p_a, p_b = success_a / n_a, success_b / n_b
    pooled = (success_a + success_b) / (n_a + n_b)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    diff = p_b - p_a
    z = diff / se0 if se0 > 0 else 0.0
    se1 = math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    return {
        "p_control": p_a,
        "p_treatment": p_b,
        "n_control": n_a,
        "n_treatment": n_b,
        "diff": diff,
        "relative_lift": diff / p_a if p_a > 0 else None,
        "z": z,
        "p_value": _normal_two_sided_p(z) if se0 > 0 else 1.0,
        "ci95": [diff - _Z975 * se1, diff + _Z975 * se1],
    }


def brownian_crossing_prob(c: float) -> float:
    """``P(sup_{0<=s<=1} |B(s)| >= c)`` for standard Brownian motion (series of Feller, 1951)."""
    if c <= 0:
        return 1.0
    stay = 0.0
    for k in range(200):
        m = 2 * k + 1
        term = math.exp(-(m * m) * math.pi**2 / (8 * c * c)) / m
        stay += term if k % 2 == 0 else -term
        if term < 1e-17:
            break
    return min(1.0, max(0.0, 1.0 - 4.0 / math.pi * stay))


@lru_cache(maxsize=64)
def continuous_boundary_constant(alpha: float) -> float:
    """``c_alpha`` with ``P(sup |B| >= c_alpha) = alpha`` on [0, 1] (≈ 2.241 for alpha = 0.05)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    return float(brentq(lambda c: brownian_crossing_prob(c) - alpha, 0.1, 10.0, xtol=1e-10))


def information_fraction(n_a: int, n_b: int, max_samples_per_arm: int) -> float:
    """Precision of the difference now over that of ``max_samples_per_arm`` per arm, capped at 1."""
    if n_a <= 0 or n_b <= 0:
        return 0.0
    return min(1.0, (2.0 / max_samples_per_arm) / (1.0 / n_a + 1.0 / n_b))


def sequential_test(
    success_a: int, n_a: int, success_b: int, n_b: int, max_samples_per_arm: int, alpha: float = 0.05
) -> dict[str, Any]:
    """The two-proportion test plus the peeking-safe boundary (see module docstring).

    Adds ``information_fraction``, ``boundary`` (the |z| needed now), ``alpha_spent`` (the
    false-positive budget used up by this point), ``final`` (t reached 1) and ``significant``.
    """
    res = two_proportion_test(success_a, n_a, success_b, n_b)
    t = information_fraction(n_a, n_b, max_samples_per_arm)
    c = continuous_boundary_constant(alpha)
    boundary = c / math.sqrt(t)
    res.update(
        information_fraction=t,
        boundary=boundary,
        alpha=alpha,
        alpha_spent=brownian_crossing_prob(boundary),
        final=t >= 1.0,
        significant=abs(res["z"]) >= boundary,
    )
    return res


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> list[float] | None:
    """Wilson score interval ``[low, high]`` of a proportion, or None when ``n`` is 0.

    Why Wilson and not the textbook Wald interval ``p ± z·sqrt(p(1-p)/n)``: early in an
    experiment ``n`` is small and rates sit near 0 or 1 (errors, escalations), where Wald collapses
    to zero width (0 of 30 errors would read "0% ± 0%") and covers far less than its nominal level.
    Wilson keeps its coverage there and never leaves [0, 1]. Computed by scipy
    (``binomtest(...).proportion_ci(method="wilson")``, Wilson 1927), not by hand.
    Raises ValueError unless ``0 <= successes <= n``.
    """
    if n == 0 and successes == 0:
        return None
    _check_counts(successes, n, "interval")
    ci = binomtest(successes, n).proportion_ci(confidence_level=confidence, method="wilson")
    return [float(ci.low), float(ci.high)]


# (rate key in ``ExperimentStore.arm_stats``, its successes key, its trials key)
_INTERVAL_RATES = (
    ("accuracy", "accuracy_correct", "accuracy_n"),
    ("satisfaction", "satisfied", "satisfaction_n"),
    ("error_rate", "errors", "n"),
    ("escalation_rate", "escalations", "n"),
    ("unknown_rate", "unknown", "n"),
)


def rate_intervals(stats: dict[str, Any], confidence: float = 0.95) -> dict[str, list[float] | None]:
    """``{"<rate>_ci95": [low, high] | None}`` for an ``arm_stats`` dict (Wilson, see above).

    Covers accuracy and satisfaction from feedback and the error, escalation and unknown rates
    from requests, each from the very counts its rate is computed from, so the interval and the
    point estimate always describe the same data. A rate whose counts are missing gets None.
    """
    suffix = f"_ci{round(confidence * 100)}"
    out: dict[str, list[float] | None] = {}
    for rate, k_key, n_key in _INTERVAL_RATES:
        k, n = stats.get(k_key), stats.get(n_key)
        out[rate + suffix] = wilson_interval(int(k), int(n), confidence) if k is not None and n else None
    return out


def sequential_look(
    control: ArmCounts, treatment: ArmCounts, cfg: ExperimentDecisionConfig
) -> dict[str, Any] | None:
    """One look at the sequential test for its history chart, or None while an arm has no trials.

    The same ``sequential_test`` the decision uses, computed from the first trial on (not only
    after ``min_samples_per_arm``) so the chart shows the statistic approaching its boundary;
    ``min_samples_met`` says whether the decision rule may act on it yet.
    """
    if control.n <= 0 or treatment.n <= 0:
        return None
    st = sequential_test(
        control.successes, control.n, treatment.successes, treatment.n, cfg.max_samples_per_arm, cfg.alpha
    )
    return {
        "metric": cfg.primary_metric,
        "n_control": control.n,
        "successes_control": control.successes,
        "n_treatment": treatment.n,
        "successes_treatment": treatment.successes,
        "z": st["z"],
        "boundary": st["boundary"],
        "information_fraction": st["information_fraction"],
        "p_value": st["p_value"],
        "significant": st["significant"],
        "min_samples_met": min(control.n, treatment.n) >= cfg.min_samples_per_arm,
    }


def boundary_plan(cfg: ExperimentDecisionConfig) -> dict[str, Any]:
    """What a chart needs to draw the stopping boundary ``c / sqrt(t)`` exactly as the rule uses it."""
    return {
        "metric": cfg.primary_metric,
        "alpha": cfg.alpha,
        "boundary_constant": continuous_boundary_constant(cfg.alpha),
        "min_samples_per_arm": cfg.min_samples_per_arm,
        "max_samples_per_arm": cfg.max_samples_per_arm,
        "min_relative_lift": cfg.min_relative_lift,
    }


@dataclass(frozen=True)
class ArmCounts:
    """Successes and trials of the primary metric for one arm (e.g. correct heads / judged heads)."""

    successes: int
    n: int

    def __post_init__(self) -> None:
        if self.n < 0 or not 0 <= self.successes <= max(self.n, 0):
            raise ValueError(f"need 0 <= successes <= n, got successes={self.successes}, n={self.n}")


def arm_counts(stats: dict[str, Any], metric: Literal["accuracy", "satisfaction"]) -> ArmCounts:
    """Primary-metric counts from an ``ExperimentStore.arm_stats`` dict."""
    if metric == "accuracy":
        return ArmCounts(int(stats.get("accuracy_correct", 0)), int(stats.get("accuracy_n", 0)))
    if metric == "satisfaction":
        return ArmCounts(int(stats.get("satisfied", 0)), int(stats.get("satisfaction_n", 0)))
    raise ValueError(f"unknown primary metric {metric!r}")


class ExperimentDecisionConfig(StrictModel):
    """When an experiment may end and which way (the seed's ModelServingSystem rule, made peeking-safe)."""

    primary_metric: Literal["accuracy", "satisfaction"] = Field(
        default="accuracy", description="Accuracy from feedback `correct`, or satisfaction from `satisfied`."
    )
    min_samples_per_arm: int = Field(
        default=200, ge=1, description="Primary-metric trials each arm needs before any decision."
    )
    alpha: float = Field(default=0.05, gt=0, lt=1, description="False-positive rate over all looks.")
    min_relative_lift: float = Field(
        default=0.05, ge=0, description="Promote above +this relative lift, roll back below -this."
    )
    max_samples_per_arm: int = Field(
        default=2_000, ge=2, description="Planned size: the information fraction reaches 1 here."
    )

    @model_validator(mode="after")
    def _max_above_min(self) -> ExperimentDecisionConfig:
        if self.max_samples_per_arm < self.min_samples_per_arm:
            raise ValueError(
                f"max_samples_per_arm ({self.max_samples_per_arm}) must be >= "
                f"min_samples_per_arm ({self.min_samples_per_arm})"
            )
        return self


@dataclass(frozen=True)
class Decision:
    """What to do with the treatment, why, and the numbers behind it (JSON-ready via ``to_dict``)."""

    action: Action
    reason: str
    statistics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(control: ArmCounts, treatment: ArmCounts, cfg: ExperimentDecisionConfig | None = None) -> Decision:
    """Promote if significant (sequential rule) and lift > +min_relative_lift; roll back if
    significant and lift < -min_relative_lift; otherwise continue.

    Requiring both significance and a practically relevant lift stops a tiny but real
    difference from flipping production. With ``p_control = 0`` the lift is taken as ±inf by
    the sign of the difference.
    """
    cfg = cfg or ExperimentDecisionConfig()
    base: dict[str, Any] = {"metric": cfg.primary_metric, "n_control": control.n, "n_treatment": treatment.n}
    if min(control.n, treatment.n) < cfg.min_samples_per_arm:
        return Decision(
            "continue_experiment",
            f"insufficient samples: control n={control.n}, treatment n={treatment.n} "
            f"(need {cfg.min_samples_per_arm} per arm)",
            base,
        )
    st = sequential_test(
        control.successes, control.n, treatment.successes, treatment.n, cfg.max_samples_per_arm, cfg.alpha
    )
    stats = {**base, **st}
    lift = st["relative_lift"]
    if lift is None:
        lift = math.copysign(math.inf, st["diff"]) if st["diff"] else 0.0
    lift_txt = f"{lift:+.1%}" if math.isfinite(lift) else ("+inf" if lift > 0 else "-inf")
    z_txt = f"|z|={abs(st['z']):.2f} vs boundary {st['boundary']:.2f} at t={st['information_fraction']:.2f}"
    if st["significant"] and lift > cfg.min_relative_lift:
        return Decision("promote_to_production", f"significant improvement {lift_txt} ({z_txt})", stats)
    if st["significant"] and lift < -cfg.min_relative_lift:
        return Decision("rollback", f"significant degradation {lift_txt} ({z_txt})", stats)
    if st["significant"]:
        reason = f"significant but lift {lift_txt} within ±{cfg.min_relative_lift:.0%} ({z_txt})"
    else:
        reason = f"not significant, lift {lift_txt} ({z_txt})"
    if st["final"]:
        reason += "; planned size reached: no decisive effect, consider ending the experiment"
    return Decision("continue_experiment", reason, stats)
