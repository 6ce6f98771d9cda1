"""LLM escalation: the last stage of the classifier, for items the earlier stages are unsure about.

The default backend is a persistent review queue (sqlite, zero set-up) that people work through
with ``monovec review``.  In production an OpenAI-compatible chat endpoint answers instead; when
it is slow, down or answers nonsense the item still lands in the queue, so escalation never
loses an item and never blocks the request path for longer than the configured timeout.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator

from monovec.paths import state_dir
from monovec.sqlite_file import SQLiteFile

logger = logging.getLogger(__name__)

Decision = Literal["allow", "block"]
DECISIONS: tuple[str, ...] = ("allow", "block")


class OpenAIEndpointConfig(BaseModel):
    """Where an OpenAI-compatible chat endpoint lives and how patiently to talk to it."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(description="API root including the version, e.g. http://127.0.0.1:8000/v1.")
    model: str = Field(description="Model name sent in the request body.")
    api_key_env: str | None = Field(
        default="OPENAI_API_KEY",
        description="Name of the environment variable holding the API key (never the key itself); "
        "None or an unset variable sends no Authorization header, as local servers expect.",
    )
    timeout_s: float = Field(default=10.0, gt=0, description="Per-attempt HTTP timeout in seconds.")
    max_retries: int = Field(
        default=1, ge=0, description="Extra attempts after a timeout, connection error or 5xx answer."
    )


def default_queue_path() -> Path:
    """The review queue used when the config names none, shared by the classifier and the CLI."""
    return state_dir() / "review_queue.sqlite"


class EscalationConfig(BaseModel):
    """How uncertain items are escalated: to the review queue, or to an LLM with the queue as fallback."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["queue", "openai"] = Field(
        default="queue", description="'queue' stores items for human review; 'openai' asks a chat endpoint."
    )
    queue_path: str | None = Field(
        default=None,
        description="SQLite file of the review queue (also the fallback of 'openai'); "
        "None means $MONOVEC_HOME/review_queue.sqlite, default .monovec/ under the working directory.",
    )
    openai: OpenAIEndpointConfig | None = Field(
        default=None, description="Chat endpoint settings; required when backend is 'openai'."
    )

    @model_validator(mode="after")
    def _openai_needs_endpoint(self) -> EscalationConfig:
        if self.backend == "openai" and self.openai is None:
            raise ValueError(
                "escalation.backend is 'openai' but escalation.openai (base_url, model) is missing"
            )
        return self

    def resolved_queue_path(self) -> Path:
        """The queue file this config points at, with the default filled in."""
        return Path(self.queue_path) if self.queue_path else default_queue_path()


class EscalationRequest(BaseModel):
    """One uncertain item, with the label sets so a reviewer or LLM can answer without other context."""

    request_id: str = Field(description="Id of the classify request that escalated.")
    text: str = Field(description="The (normalised) text to judge.")
    reason: str = Field(description="Why it was escalated, e.g. 'emotion:ambiguous'.")
    heads: dict[str, list[str]] = Field(description="Head name -> allowed labels.")
    candidates: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Head -> label -> classifier score, as hints."
    )
    model_version: str | None = Field(default=None, description="Classifier version that escalated.")


class EscalationResult(BaseModel):
    """What escalation did: answered now, or queued for a person."""

    status: Literal["queued", "answered"]
    backend: str = Field(description="'queue', 'openai', or 'openai->queue' after a fallback.")
    labels: dict[str, str] = Field(default_factory=dict, description="Head -> label when answered.")
    decision: Decision | None = Field(default=None, description="allow/block when answered.")
    queue_id: int | None = Field(default=None, description="Review-queue id when queued.")
    error: str | None = Field(default=None, description="Why the endpoint failed when we fell back.")


@runtime_checkable
class Escalator(Protocol):
    """Anything that takes an uncertain item off the classifier's hands."""

    def escalate(self, req: EscalationRequest) -> EscalationResult: ...


def validate_labels(heads: dict[str, list[str]], labels: dict[str, str]) -> None:
    """Reject labels for unknown heads or outside a head's label set (shared by LLM answers and reviewers)."""
    for head, label in labels.items():
        if head not in heads:
            raise ValueError(f"unknown head {head!r}; expected one of {sorted(heads)}")
        if label not in heads[head]:
            raise ValueError(f"label {label!r} is not allowed for head {head!r}; allowed: {heads[head]}")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS review_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    text TEXT NOT NULL,
    reason TEXT NOT NULL,
    heads TEXT NOT NULL,
    candidates TEXT NOT NULL,
    model_version TEXT,
    note TEXT,
    status TEXT NOT NULL DEFAULT 'open',
    labels TEXT,
    decision TEXT,
    reviewer TEXT,
    created_at REAL NOT NULL,
    resolved_at REAL
);
CREATE INDEX IF NOT EXISTS review_items_status ON review_items(status, id);
"""
_JSON_COLUMNS = ("heads", "candidates", "labels")


class ReviewQueue:
    """Persistent review queue in one SQLite file (`SQLiteFile`: a connection per thread, WAL).

    One instance can be shared by threads, and several processes (Serve replicas, the CLI) can use
    the same file.
    """

    def __init__(self, path: str | Path) -> None:
        self._db = SQLiteFile(path, _SCHEMA, row_factory=sqlite3.Row)
        self.path = self._db.path

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._db.connect()

    def close(self) -> None:
        """Close this thread's connection."""
        self._db.close()

    @staticmethod
    def _row(row: sqlite3.Row) -> dict[str, Any]:
        item = dict(row)
        for col in _JSON_COLUMNS:
            item[col] = json.loads(item[col]) if item[col] is not None else None
        if item["labels"] is None:
            item["labels"] = {}
        return item

    def add(self, req: EscalationRequest, note: str | None = None) -> int:
        """Store one item as open and return its queue id; ``note`` records e.g. why an LLM failed."""
        with self._connect() as conn:
            cur = conn.execute(
                "INSERT INTO review_items (request_id, text, reason, heads, candidates, model_version,"
                " note, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    req.request_id,
                    req.text,
                    req.reason,
                    json.dumps(req.heads, ensure_ascii=False),
                    json.dumps(req.candidates),
                    req.model_version,
                    note,
                    time.time(),
                ),
            )
            return int(cur.lastrowid or 0)

    def list(self, status: str | None = "open", limit: int = 50) -> list[dict[str, Any]]:
        """Items oldest first (review is first in, first out); ``status`` None or 'all' lists every item."""
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        if status in (None, "all"):
            sql, args = "SELECT * FROM review_items ORDER BY id LIMIT ?", (limit,)
        elif status in ("open", "resolved"):
            sql, args = "SELECT * FROM review_items WHERE status = ? ORDER BY id LIMIT ?", (status, limit)
        else:
            raise ValueError(f"status must be 'open', 'resolved' or 'all', got {status!r}")
        with self._connect() as conn:
            return [self._row(r) for r in conn.execute(sql, args).fetchall()]

    def get(self, item_id: int) -> dict[str, Any]:
        """One item by queue id; KeyError if there is none."""
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM review_items WHERE id = ?", (item_id,)).fetchone()
        if row is None:
            raise KeyError(f"no review item with id {item_id} in {self.path}")
        return self._row(row)

    def resolve(
        self, item_id: int, labels: dict[str, str], decision: str | None = None, reviewer: str | None = None
    ) -> None:
        """Record a reviewer's answer; labels are checked against the item's heads.

        Resolving again overwrites the earlier answer, so a reviewer can correct a mistake.
        """
        item = self.get(item_id)
        validate_labels(item["heads"], labels)
        if decision is not None and decision not in DECISIONS:
            raise ValueError(f"decision must be one of {DECISIONS}, got {decision!r}")
        with self._connect() as conn:
            conn.execute(
                "UPDATE review_items SET status = 'resolved', labels = ?, decision = ?, reviewer = ?,"
                " resolved_at = ? WHERE id = ?",
                (json.dumps(labels, ensure_ascii=False), decision, reviewer, time.time(), item_id),
            )

    def stats(self) -> dict[str, int]:
        """Counts by status plus the total, for dashboards and the escalation-rate guardrail."""
        with self._connect() as conn:
            rows = conn.execute("SELECT status, COUNT(*) FROM review_items GROUP BY status").fetchall()
        counts = {"open": 0, "resolved": 0}
        counts.update({status: int(n) for status, n in rows})
        counts["total"] = sum(counts.values())
        return counts

    def escalate(self, req: EscalationRequest) -> EscalationResult:
        """The queue is itself an Escalator: the zero set-up default."""
        return EscalationResult(status="queued", backend="queue", queue_id=self.add(req))


class EndpointError(RuntimeError):
    """The endpoint could not give a usable answer; the message says why (never contains the key)."""


_SYSTEM_PROMPT = """You review texts that an automatic classifier could not decide.
For every head below pick exactly one label from its allowed list, then decide whether the text
should be allowed or blocked. Answer with one JSON object and nothing else:
{{"labels": {{"<head>": "<label>", ...}}, "decision": "allow" | "block"}}

Heads and allowed labels:
{heads}"""


class OpenAIEscalator:
    """Asks an OpenAI-compatible ``/chat/completions`` endpoint; falls back to the review queue."""

    def __init__(self, cfg: OpenAIEndpointConfig, fallback: ReviewQueue) -> None:
        self.cfg = cfg
        self.fallback = fallback
        self.url = cfg.base_url.rstrip("/") + "/chat/completions"
        self._client = httpx.Client(timeout=cfg.timeout_s)

    def close(self) -> None:
        """Release pooled connections."""
        self._client.close()

    def _api_key(self) -> str | None:
        # Read at call time so a rotated key is picked up without rebuilding the escalator.
        return os.environ.get(self.cfg.api_key_env) if self.cfg.api_key_env else None

    def _redact(self, message: str) -> str:
        key = self._api_key()
        return message.replace(key, "***") if key else message

    def build_body(self, req: EscalationRequest) -> dict[str, Any]:
        """The chat request: label sets in the system prompt, the item in the user message."""
        heads = "\n".join(f"- {head}: {', '.join(labels)}" for head, labels in req.heads.items())
        user = {"text": req.text, "reason": req.reason, "classifier_scores": req.candidates}
        return {
            "model": self.cfg.model,
            "messages": [
                {"role": "system", "content": _SYSTEM_PROMPT.format(heads=heads)},
                {"role": "user", "content": json.dumps(user, ensure_ascii=False)},
            ],
            "response_format": {"type": "json_object"},
            "temperature": 0,
        }

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        key = self._api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        last = "no attempt made"
        for _ in range(self.cfg.max_retries + 1):
            try:
                resp = self._client.post(self.url, json=body, headers=headers)
            except httpx.TimeoutException:
                last = f"timeout after {self.cfg.timeout_s}s calling {self.url}"
                continue
            except httpx.TransportError as exc:
                last = f"connection error calling {self.url}: {type(exc).__name__}: {exc}"
                continue
            if resp.status_code >= 500:
                last = f"HTTP {resp.status_code} from {self.url}: {resp.text[:200]}"
                continue
            if resp.status_code >= 300:
                raise EndpointError(f"HTTP {resp.status_code} from {self.url}: {resp.text[:200]}")
            try:
                return resp.json()
            except ValueError as exc:
                raise EndpointError(f"invalid answer: endpoint returned a non-JSON body: {exc}") from None
        raise EndpointError(last)

    @staticmethod
    def parse_answer(payload: dict[str, Any], req: EscalationRequest) -> tuple[dict[str, str], Decision]:
        """Pull labels and decision out of a chat completion, refusing anything outside the label sets."""
        try:
            content = payload["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise EndpointError("invalid answer: no choices[0].message.content in response") from None
        text = str(content).strip()
        if text.startswith("```"):  # some servers wrap JSON in a code fence despite response_format
            text = text.strip("`").removeprefix("json").strip()
        try:
            answer = json.loads(text)
        except json.JSONDecodeError:
            raise EndpointError(f"invalid answer: content is not JSON: {text[:120]!r}") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("labels"), dict):
            raise EndpointError("invalid answer: expected an object with a 'labels' object")
        labels = {str(k): str(v) for k, v in answer["labels"].items()}
        try:
            validate_labels(req.heads, labels)
        except ValueError as exc:
            raise EndpointError(f"invalid answer: {exc}") from None
        missing = sorted(set(req.heads) - set(labels))
        if missing:
            raise EndpointError(f"invalid answer: no label for heads {missing}")
        decision = answer.get("decision")
        if decision not in DECISIONS:
            raise EndpointError(f"invalid answer: decision must be 'allow' or 'block', got {decision!r}")
        return labels, decision

    def escalate(self, req: EscalationRequest) -> EscalationResult:
        """Answer from the endpoint, or queue the item with the reason the endpoint failed."""
        try:
            labels, decision = self.parse_answer(self._post(self.build_body(req)), req)
        except EndpointError as exc:
            error = self._redact(str(exc))
            logger.warning("LLM escalation failed for %s, queued for review: %s", req.request_id, error)
            queue_id = self.fallback.add(req, note=error)
            return EscalationResult(status="queued", backend="openai->queue", queue_id=queue_id, error=error)
        return EscalationResult(status="answered", backend="openai", labels=labels, decision=decision)


def build_escalator(cfg: EscalationConfig) -> Escalator:
    """The escalator a config asks for; both backends share the same queue file."""
    queue = ReviewQueue(cfg.resolved_queue_path())
    if cfg.backend == "openai":
        assert cfg.openai is not None  # guaranteed by EscalationConfig's validator
        return OpenAIEscalator(cfg.openai, fallback=queue)
    return queue
