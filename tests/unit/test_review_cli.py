"""`monovec review` sub-app, run through typer's CliRunner on a temporary queue file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monovec.classify.escalation import EscalationRequest, ReviewQueue
from monovec.cli.review import app, parse_labels

HEADS = {"emotion": ["joy", "anger"], "ethics": ["safe", "hate"]}
runner = CliRunner()


@pytest.fixture
def queue(tmp_path: Path) -> tuple[ReviewQueue, list[int]]:
    q = ReviewQueue(tmp_path / "q.sqlite")
    ids = [
        q.add(
            EscalationRequest(
                request_id="r1",
                text="좀 애매한 말투네",
                reason="emotion:ambiguous",
                heads=HEADS,
                candidates={"emotion": {"joy": 0.4, "anger": 0.38}},
            )
        ),
        q.add(
            EscalationRequest(
                request_id="r2", text="a borderline remark", reason="ethics:ambiguous_high_risk", heads=HEADS
            )
        ),
    ]
    return q, ids


def run(q: ReviewQueue, *args: str):
    return runner.invoke(app, [*args, "--queue", str(q.path)])


def test_list_table_and_json(queue) -> None:
    q, ids = queue
    res = run(q, "list")
    assert res.exit_code == 0, res.output
    assert "ID" in res.output and "REASON" in res.output
    assert "emotion:ambiguous" in res.output and "좀 애매한 말투네" in res.output

    res = run(q, "list", "--json", "--limit", "1")
    assert res.exit_code == 0
    items = json.loads(res.output)
    assert [it["id"] for it in items] == [ids[0]]

    assert "no resolved items" in run(q, "list", "--status", "resolved").output


def test_show_resolve_stats_roundtrip(queue) -> None:
    q, ids = queue
    res = run(q, "show", str(ids[0]))
    assert res.exit_code == 0
    assert "request_id:    r1" in res.output and "joy (0.40)" in res.output

    res = run(
        q,
        "resolve",
        str(ids[0]),
        "--label",
        "emotion=anger",
        "-l",
        "ethics=safe",
        "--decision",
        "allow",
        "--reviewer",
        "lee",
    )
    assert res.exit_code == 0, res.output
    assert q.get(ids[0])["labels"] == {"emotion": "anger", "ethics": "safe"}
    assert q.get(ids[0])["decision"] == "allow"

    assert "labels:        emotion=anger, ethics=safe" in run(q, "show", str(ids[0])).output
    res = run(q, "list", "--status", "all", "--json")
    assert {it["status"] for it in json.loads(res.output)} == {"open", "resolved"}

    res = run(q, "stats", "--json")
    assert json.loads(res.output) == {"open": 1, "resolved": 1, "total": 2}
    assert "open: 1" in run(q, "stats").output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "999"], "no review item with id 999"),
        (["resolve", "999", "--label", "emotion=joy"], "no review item with id 999"),
        (["resolve", "{first}", "--label", "emotion"], "must look like head=label"),
        (["resolve", "{first}", "--label", "=joy"], "must look like head=label"),
        (["resolve", "{first}", "--label", "emotion=bliss"], "'bliss' is not allowed for head 'emotion'"),
        (["resolve", "{first}", "--label", "mood=joy"], "unknown head 'mood'"),
        (["resolve", "{first}"], "at least one --label"),
    ],
)
def test_errors_exit_2_without_traceback(queue, args: list[str], message: str) -> None:
    q, ids = queue
    res = run(q, *[a.format(first=ids[0]) for a in args])
    assert res.exit_code == 2
    assert message in res.output
    assert "Traceback" not in res.output
    assert not isinstance(res.exception, Exception) or isinstance(res.exception, SystemExit)
    assert q.stats()["open"] == 2


def test_bad_choices_are_usage_errors(queue) -> None:
    q, ids = queue
    assert run(q, "list", "--status", "done").exit_code == 2
    assert run(q, "resolve", str(ids[0]), "-l", "emotion=joy", "--decision", "maybe").exit_code == 2


def test_parse_labels_rejects_duplicates() -> None:
    assert parse_labels(["a=b", " c = d "]) == {"a": "b", "c": "d"}
    with pytest.raises(ValueError, match="twice"):
        parse_labels(["a=b", "a=c"])
