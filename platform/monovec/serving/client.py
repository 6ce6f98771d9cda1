"""Talking to a running `classifier` app over HTTP (CLI, quickstart, benchmarks)."""

from __future__ import annotations

import os
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
        return self._json(self.http.post("/v1/classify", json={"text": text, "user_id": user_id}, headers=headers))

    def feedback(self, request_id: str, correct: dict[str, str] | None = None, satisfied: bool | None = None) -> dict[str, Any]:
        return self._json(self.http.post("/v1/feedback", json={"request_id": request_id, "correct": correct, "satisfied": satisfied}))

    def experiment(self) -> dict[str, Any]:
        return self._json(self.http.get("/v1/experiment"))

    def admin(self, action: str) -> dict[str, Any]:
        if not self.admin_token:
            raise RuntimeError("no admin token: set MONOVEC_ADMIN_TOKEN (the value the Serve replicas have) or run from the folder where `monovec serve up` wrote .monovec/serve/admin_token")
        return self._json(self.http.post(f"/v1/experiment/{action}", headers={"Authorization": f"Bearer {self.admin_token}"}))


def format_experiment(exp: dict[str, Any]) -> str:
    """The experiment as a table a person can read at a glance."""
    cols = ["n", "errors", "latency_p50_ms", "latency_p95_ms", "escalation_rate", "unknown_rate", "feedback_n", "accuracy", "satisfaction"]
    lines = [f"experiment {exp['experiment']}   split {', '.join(f'{k}={v:.0%}' for k, v in exp['split'].items())}"]
    lines.append(f"{'arm':<10} {'model':<28} " + " ".join(f"{c:>15}" for c in cols) + "  guardrails")
    for arm, st in exp["arms"].items():
        cells = []
        for c in cols:
            v = st.get(c)
            cells.append(f"{'-' if v is None else (f'{v:.3f}' if isinstance(v, float) else v):>15}")
        breached = [n for n, s in st.get("guardrails", {}).get("states", {}).items() if s.get("state") == "breached"]
        model = str(st.get("model", ""))[-28:]
        lines.append(f"{arm:<10} {model:<28} " + " ".join(cells) + f"  {'BREACHED: ' + ','.join(breached) if breached else 'ok'}")
    test = exp.get("test") or {}
    if test:
        z = test.get("z")
        lines.append(f"test: metric={test.get('metric')} z={'-' if z is None else f'{z:.2f}'} boundary={test.get('boundary', '-')} p={test.get('p_value', '-')}")
    lines.append(f"recommended action: {exp['recommended_action']} ({exp.get('reason', '')})")
    return "\n".join(lines)
