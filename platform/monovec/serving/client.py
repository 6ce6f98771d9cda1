"""Talking to a running `classifier` app over HTTP (CLI, quickstart, benchmarks)."""

from __future__ import annotations

import os
import textwrap
from typing import Any

import httpx

from monovec.serving.admin import admin_token as stored_admin_token

DEFAULT_URL = "http://127.0.0.1:8000"


class ServeClient:
    def __init__(self, url: str | None = None, admin_token: str | None = None, timeout: float = 30.0) -> None:
        self.url = (url or os.environ.get("MONOVEC_SERVE_URL") or DEFAULT_URL).rstrip("/")
        self.admin_token = admin_token or stored_admin_token()
        self.http = httpx.Client(base_url=self.url, timeout=timeout)

    def _json(self, r: httpx.Response) -> dict[str, Any]:
        try:
            body = r.json()
        except ValueError:
            r.raise_for_status()
            raise
        if r.status_code >= 400:
            err = body.get("error", {}) if isinstance(body, dict) else {}
            raise RuntimeError(f"{r.status_code} {err.get('code', '')}: {err.get('message', r.text)}")
        return body

    def healthz(self) -> dict[str, Any]:
        return self._json(self.http.get("/healthz"))

    def classify(self, text: str, user_id: str | None = None, arm: str | None = None) -> dict[str, Any]:
        headers = {"X-Monovec-Arm": arm} if arm else {}
        return self._json(
            self.http.post("/v1/classify", json={"text": text, "user_id": user_id}, headers=headers)
        )

    def feedback(
        self, request_id: str, correct: dict[str, str] | None = None, satisfied: bool | None = None
    ) -> dict[str, Any]:
        return self._json(
            self.http.post(
                "/v1/feedback", json={"request_id": request_id, "correct": correct, "satisfied": satisfied}
            )
        )

    def experiment(self) -> dict[str, Any]:
        return self._json(self.http.get("/v1/experiment"))

    def admin(self, action: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST an admin action with the token; `body` may carry expected_treatment_weight, reason, force."""
        if not self.admin_token:
            raise RuntimeError(
                "no admin token: set MONOVEC_ADMIN_TOKEN (the value the Serve replicas have) or run from the folder where `monovec serve up` wrote .monovec/serve/admin_token"
            )
        return self._json(
            self.http.post(
                f"/v1/experiment/{action}", json=body, headers={"Authorization": f"Bearer {self.admin_token}"}
            )
        )

    def step(self, action: str, reason: str | None = None, force: bool = False) -> dict[str, Any]:
        """An admin action against the split this client has just read: a retry or a concurrent
        operator cannot turn one step into two (409 stale_split instead)."""
        expected = self.experiment()["split"].get("treatment", 0.0)
        body: dict[str, Any] = {"expected_treatment_weight": expected}
        if reason:
            body["reason"] = reason
        if force:
            body["force"] = True
        return self.admin(action, body)


def proportion_ci(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval of a proportion (scipy's `binomtest(...).proportion_ci`), None when n = 0."""
    if n <= 0:
        return None
    from scipy.stats import binomtest

    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def _model_name(stats: dict[str, Any]) -> str:
    entry = stats.get("registry") or {}
    if entry.get("version"):
        return f"{entry['name'].removeprefix('monovec-')} v{entry['version']}"
    return str(stats.get("model", "")).rstrip("/").rsplit("/", 1)[-1]


def format_experiment(exp: dict[str, Any], width: int = 100) -> str:
    """The experiment as a table a person reads at a glance, at most `width` columns wide."""
    split = " / ".join(f"{arm} {w:.0%}" for arm, w in exp["split"].items())
    lines = [f"experiment {exp['experiment']} · split {split}"]
    lines.append(
        f"{'arm':<10} {'model':<18} {'requests':>8} {'errors':>6} {'p50/p95 ms':>11} {'escalated':>9}  {'accuracy (95% CI)':<19} guardrails"
    )
    for arm, st in exp["arms"].items():
        acc, ci = st.get("accuracy"), proportion_ci(st.get("accuracy_correct", 0), st.get("accuracy_n", 0))
        acc_txt = "-" if acc is None or ci is None else f"{acc:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]"
        states = st.get("guardrails", {}).get("states", {})
        breached = [n for n, g in states.items() if g.get("state") == "breached"]
        if st.get("available") is False:
            guard = "UNAVAILABLE"
        elif breached:
            guard = "BREACHED " + ",".join(b.removesuffix("_rate").removesuffix("_ms") for b in breached)
        elif any(g.get("state") == "insufficient_data" for g in states.values()):
            guard = "ok (warming up)"
        else:
            guard = "ok"
        lat = f"{st.get('latency_p50_ms', 0):.0f} / {st.get('latency_p95_ms', 0):.0f}"
        row = f"{arm:<10} {_model_name(st)[:18]:<18} {st.get('n', 0):>8} {st.get('errors', 0):>6} {lat:>11} {st.get('escalation_rate', 0):>9.1%}  {acc_txt:<19} {guard}"
        lines.append(row[:width])
    test = exp.get("test") or {}
    if "z" in test:
        lift = test.get("relative_lift")
        lift_txt = "" if lift is None else f" ({lift:+.0%})"
        verdict = "significant" if test.get("significant") else "not significant yet"
        lines.append(
            f"sequential test ({test.get('metric')}): diff {test['diff']:+.3f}{lift_txt}, z {test['z']:.2f} vs boundary "
            f"{test['boundary']:.2f} at t={test['information_fraction']:.2f}: {verdict}"[:width]
        )
    lines.append(
        textwrap.fill(
            f"recommended: {exp['recommended_action']} ({exp.get('reason', '')})",
            width,
            subsequent_indent="  ",
        )
    )
    return "\n".join(lines)


def format_decision(decision: dict[str, Any], with_reason: bool = True) -> str:
    """What an evaluate/promote/rollback call did, in one or two lines (`with_reason=False`: when the
    reason was just printed, e.g. under the experiment table)."""
    split = " / ".join(f"{arm} {w:.0%}" for arm, w in (decision.get("split") or {}).items())
    why = f" - {decision.get('reason', '')}" if with_reason else ""
    line = textwrap.fill(
        f"decision: {decision['action']}{why}; split now {split}", 100, subsequent_indent="  "
    )
    champion = decision.get("champion")
    if champion:
        line += f"\n  MLflow alias {champion['name']}@{champion['alias']} -> v{champion['version']}"
    return line
