"""Escalation: the persistent review queue and the OpenAI-compatible client against a real local server."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from monovec.classify.escalation import (
    EscalationConfig,
    EscalationRequest,
    Escalator,
    OpenAIEndpointConfig,
    OpenAIEscalator,
    ReviewQueue,
    build_escalator,
)

HEADS = {"emotion": ["joy", "anger", "sadness"], "ethics": ["safe", "hate", "violence"]}


def make_req(i: int = 0, text: str = "이거 진짜 괜찮은 거 맞아?") -> EscalationRequest:
    return EscalationRequest(
        request_id=f"r{i}",
        text=text,
        reason="emotion:ambiguous",
        heads=HEADS,
        candidates={"emotion": {"joy": 0.41, "anger": 0.39}},
        model_version="v1",
    )


# ---------------------------------------------------------------- review queue


def test_queue_persists_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    q = ReviewQueue(path)
    ids = [q.add(make_req(i)) for i in range(3)]
    assert ids == sorted(ids) and len(set(ids)) == 3
    q.resolve(ids[1], {"emotion": "joy", "ethics": "safe"}, decision="allow", reviewer="kim")

    q2 = ReviewQueue(path)
    assert q2.stats() == {"open": 2, "resolved": 1, "total": 3}
    assert [it["id"] for it in q2.list()] == [ids[0], ids[2]]
    assert [it["id"] for it in q2.list(status="resolved")] == [ids[1]]
    assert len(q2.list(status=None)) == len(q2.list(status="all")) == 3
    assert len(q2.list(status="all", limit=2)) == 2
    item = q2.get(ids[1])
    assert item["labels"] == {"emotion": "joy", "ethics": "safe"}
    assert (item["decision"], item["reviewer"], item["status"]) == ("allow", "kim", "resolved")
    assert item["heads"] == HEADS and item["text"] == make_req().text
    assert item["candidates"]["emotion"]["joy"] == pytest.approx(0.41)


def test_queue_rejects_bad_input(tmp_path: Path) -> None:
    q = ReviewQueue(tmp_path / "q.sqlite")
    qid = q.add(make_req())
    with pytest.raises(KeyError, match="no review item with id 999"):
        q.get(999)
    with pytest.raises(KeyError, match="999"):
        q.resolve(999, {"emotion": "joy"})
    with pytest.raises(ValueError, match="not allowed for head 'emotion'"):
        q.resolve(qid, {"emotion": "bliss"})
    with pytest.raises(ValueError, match="unknown head"):
        q.resolve(qid, {"mood": "joy"})
    with pytest.raises(ValueError, match="decision"):
        q.resolve(qid, {"emotion": "joy"}, decision="maybe")
    with pytest.raises(ValueError, match="status"):
        q.list(status="done")
    assert q.stats()["open"] == 1


def test_queue_concurrent_adds_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    ReviewQueue(path)
    n_threads, per_thread = 6, 15
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        q = ReviewQueue(path)  # each thread opens the file itself, like separate replicas would
        try:
            for i in range(per_thread):
                q.add(make_req(t * 100 + i))
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    items = ReviewQueue(path).list(status="all", limit=1000)
    assert len(items) == n_threads * per_thread
    assert len({it["request_id"] for it in items}) == n_threads * per_thread


def test_queue_is_an_escalator(tmp_path: Path) -> None:
    q = ReviewQueue(tmp_path / "q.sqlite")
    assert isinstance(q, Escalator)
    res = q.escalate(make_req())
    assert (res.status, res.backend) == ("queued", "queue")
    assert q.get(res.queue_id)["request_id"] == "r0"


# ---------------------------------------------------------------- config / factory


def test_config_requires_endpoint_for_openai(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="escalation.openai"):
        EscalationConfig(backend="openai")
    with pytest.raises(ValidationError):
        EscalationConfig(backend="carrier-pigeon")

    monkeypatch.setenv("MONOVEC_HOME", str(tmp_path / "home"))
    esc = build_escalator(EscalationConfig())
    assert isinstance(esc, ReviewQueue)
    assert esc.path == (tmp_path / "home" / "review_queue.sqlite").resolve()

    cfg = EscalationConfig(
        backend="openai",
        queue_path=str(tmp_path / "x.sqlite"),
        openai=OpenAIEndpointConfig(base_url="http://127.0.0.1:9/v1", model="m"),
    )
    esc = build_escalator(cfg)
    assert isinstance(esc, OpenAIEscalator) and esc.fallback.path == tmp_path / "x.sqlite"
    esc.close()


# ---------------------------------------------------------------- OpenAI client vs. a local fake server


class FakeOpenAI:
    """A real HTTP server on 127.0.0.1 that records requests and answers with ``reply``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.reply: Callable[[int], tuple[int, dict[str, Any] | str, float]] = lambda n: (200, {}, 0.0)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status, payload, delay = fake.reply(len(fake.requests))
                time.sleep(delay)
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up (timeout test)
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()


def chat(content: str | dict[str, Any]) -> dict[str, Any]:
    text = content if isinstance(content, str) else json.dumps(content)
    return {
        "id": "c1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
    }


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    srv = FakeOpenAI()
    yield srv
    srv.server.shutdown()
    srv.server.server_close()


@pytest.fixture
def make_escalator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., OpenAIEscalator]]:
    monkeypatch.setenv("MONOVEC_TEST_KEY", "sk-secret-123")
    made: list[OpenAIEscalator] = []

    def make(base_url: str, **kw: Any) -> OpenAIEscalator:
        cfg = OpenAIEndpointConfig(base_url=base_url, model="judge-1", api_key_env="MONOVEC_TEST_KEY", **kw)
        esc = OpenAIEscalator(cfg, fallback=ReviewQueue(tmp_path / "fallback.sqlite"))
        made.append(esc)
        return esc

    yield make
    for esc in made:
        esc.close()


def test_good_answer_is_answered_and_request_is_well_formed(fake: FakeOpenAI, make_escalator) -> None:
    fake.reply = lambda n: (
        200,
        chat({"labels": {"emotion": "anger", "ethics": "safe"}, "decision": "allow"}),
        0.0,
    )
    esc = make_escalator(fake.base_url)
    res = esc.escalate(make_req())
    assert (res.status, res.backend, res.decision) == ("answered", "openai", "allow")
    assert res.labels == {"emotion": "anger", "ethics": "safe"}
    assert res.queue_id is None and res.error is None
    assert esc.fallback.stats()["total"] == 0

    (sent,) = fake.requests
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["Authorization"] == "Bearer sk-secret-123"
    body = sent["body"]
    assert body["model"] == "judge-1"
    assert body["response_format"] == {"type": "json_object"}
    system, user = body["messages"]
    assert system["role"] == "system" and user["role"] == "user"
    for head, labels in HEADS.items():
        assert head in system["content"] and all(lab in system["content"] for lab in labels)
    assert json.loads(user["content"])["text"] == make_req().text


def test_no_key_env_sends_no_authorization(fake: FakeOpenAI, make_escalator, monkeypatch) -> None:
    monkeypatch.delenv("MONOVEC_TEST_KEY")
    fake.reply = lambda n: (
        200,
        chat({"labels": {"emotion": "joy", "ethics": "safe"}, "decision": "allow"}),
        0.0,
    )
    assert make_escalator(fake.base_url).escalate(make_req()).status == "answered"
    assert "Authorization" not in fake.requests[0]["headers"]


def test_slow_server_times_out_and_falls_back(fake: FakeOpenAI, make_escalator, caplog) -> None:
    fake.reply = lambda n: (200, chat({"labels": {}, "decision": "allow"}), 0.8)
    esc = make_escalator(fake.base_url, timeout_s=0.15, max_retries=0)
    with caplog.at_level(logging.DEBUG):
        res = esc.escalate(make_req())
    assert len(fake.requests) == 1  # one attempt (max_retries=0), abandoned at the client's timeout
    assert (res.status, res.backend) == ("queued", "openai->queue")
    assert "timeout" in res.error
    item = esc.fallback.get(res.queue_id)
    assert item["request_id"] == "r0" and "timeout" in item["note"]
    assert "sk-secret-123" not in caplog.text and "timeout" in caplog.text


def test_server_error_falls_back_after_retries(fake: FakeOpenAI, make_escalator) -> None:
    fake.reply = lambda n: (500, {"error": {"message": "boom"}}, 0.0)
    res = make_escalator(fake.base_url, max_retries=1).escalate(make_req())
    assert (res.status, res.backend) == ("queued", "openai->queue")
    assert "HTTP 500" in res.error
    assert len(fake.requests) == 2  # one retry


def test_retry_recovers_from_one_server_error(fake: FakeOpenAI, make_escalator) -> None:
    good = chat({"labels": {"emotion": "joy", "ethics": "safe"}, "decision": "allow"})
    fake.reply = lambda n: (503, "unavailable", 0.0) if n == 1 else (200, good, 0.0)
    res = make_escalator(fake.base_url, max_retries=1).escalate(make_req())
    assert res.status == "answered" and len(fake.requests) == 2


def test_client_error_is_not_retried(fake: FakeOpenAI, make_escalator) -> None:
    fake.reply = lambda n: (401, {"error": {"message": "bad key"}}, 0.0)
    res = make_escalator(fake.base_url, max_retries=3).escalate(make_req())
    assert res.status == "queued" and "HTTP 401" in res.error and len(fake.requests) == 1


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            {"labels": {"emotion": "bliss", "ethics": "safe"}, "decision": "allow"},
            "'bliss' is not allowed for head 'emotion'",
        ),
        ({"labels": {"emotion": "joy"}, "decision": "allow"}, "no label for heads ['ethics']"),
        ({"labels": {"emotion": "joy", "ethics": "safe"}, "decision": "maybe"}, "decision must be"),
        ("I think it is fine.", "not JSON"),
    ],
)
def test_invalid_answer_falls_back_with_clear_error(
    fake: FakeOpenAI, make_escalator, content, expected
) -> None:
    fake.reply = lambda n: (200, chat(content), 0.0)
    esc = make_escalator(fake.base_url)
    res = esc.escalate(make_req())
    assert (res.status, res.backend) == ("queued", "openai->queue")
    assert "invalid answer" in res.error and expected in res.error
    assert len(fake.requests) == 1  # a wrong answer is not retried
    assert esc.fallback.stats()["open"] == 1


def test_unreachable_endpoint_falls_back(make_escalator) -> None:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = srv.server_address[1]
    srv.server_close()  # nothing listens on this port any more
    res = make_escalator(f"http://127.0.0.1:{port}/v1", max_retries=0).escalate(make_req())
    assert res.backend == "openai->queue" and "connection error" in res.error
