"""The experiment page (`GET /` and `GET /ui` of the `classifier` app): the A/B rollout for people.

Served by the router deployment itself from three static files (`serving/static/experiment.*`),
put together into one self-contained HTML document: no build step, no second server, no CDN, no
web font, so the page works offline and behind a firewall. The browser gets a
Content-Security-Policy that allows exactly the page's own inline script and style (by their
SHA-256) and requests to its own origin: a CDN reference slipped into the files, or markup that a
model name or a decision reason might carry, cannot load or run anything. (The script also
renders every value with `textContent`, never as HTML.)

The page polls `v1/experiment` under the same route prefix and shows its numbers as they are
(each cell keeps the exact JSON value in `data-value`, which the browser test compares); admin
actions send the token the person typed as `Authorization: Bearer` together with the treatment
weight the page showed (`expected_treatment_weight`), so a stale page or a double click is refused
with 409 `stale_split` instead of applying a step twice.
"""

from __future__ import annotations

import base64
import hashlib
import html
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import Any

_STATIC = ("experiment.html", "experiment.css", "experiment.js")


@dataclass(frozen=True)
class Page:
    """The rendered document and the response headers that must travel with it."""

    html: str
    headers: dict[str, str]


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


@lru_cache(maxsize=1)
def _static() -> tuple[str, str, str]:
    root = files("monovec.serving") / "static"
    template, css, js = ((root / name).read_text(encoding="utf-8") for name in _STATIC)
    return template, css, js


def render_page(base_path: str = "") -> Page:
    """The page for an app mounted at ``base_path`` (the Serve route prefix, "" at the root).

    ``base_path`` is HTML-escaped into a ``<meta>`` tag; the script prefixes its API calls with
    it, so the page works at `/`, `/ui` and under any route prefix.
    """
    template, css, js = _static()
    base = base_path.rstrip("/")
    doc = (
        template.replace("{{base}}", html.escape(base, quote=True))
        .replace("{{css}}", css)
        .replace("{{js}}", js)
    )
    csp = (
        "default-src 'none'; "
        f"script-src '{_sha256(js)}'; "
        f"style-src '{_sha256(css)}'; "
        "connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    headers = {
        "Content-Security-Policy": csp,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    return Page(doc, headers)


def drift_flags(report: dict[str, Any], mmd_alpha: float | None = None) -> dict[str, Any]:
    """One arm's drift report (``DriftMonitor.report`` via ``monitor_report``) without its per-projection lists.

    Keeps, per detector, the number that decides its flag and the limit it is compared with:
    PSI's largest projection value vs ``psi_threshold``, KS's smallest p-value vs its Bonferroni
    threshold, MMD²'s permutation p-value vs ``mmd_alpha`` (the app's ``drift.mmd_alpha``). An arm whose monitor is
    unavailable reports ``available: False`` and its reason.
    """
    if not report.get("available", True):
        return {"available": False, "drift": None, "reason": report.get("reason")}
    psi, ks, mmd = report.get("psi"), report.get("ks"), report.get("mmd")
    return {
        "available": True,
        "ready": report.get("ready", False),
        "n": report.get("n"),
        "n_reference": report.get("n_reference"),
        "drift": report.get("drift"),
        "reasons": report.get("reasons", []),
        "psi": None
        if psi is None
        else {"max": psi["max"], "threshold": psi["threshold"], "drift": psi["drift"]},
        "ks": None
        if ks is None
        else {
            "min_p_value": ks["min_p_value"],
            "threshold": ks["threshold"],
            "max_statistic": ks["max_statistic"],
            "drift": ks["drift"],
        },
        "mmd": None
        if mmd is None
        else {"mmd2": mmd["mmd2"], "p_value": mmd["p_value"], "alpha": mmd_alpha, "drift": mmd["drift"]},
    }
