"""Feedback events: validation reasons, the dead-letter file, the watermark reader, the reservoir."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from monovec.taste.feedback import DeadLetter, FeedbackEvent, event_files, read_pending, validate_event
from monovec.taste.records import Records
from monovec.taste.replay import ReservoirBuffer

ITEMS = {"arabica-1": 0, "arabica-2": 1}
GOOD = {
    "event_id": "e1",
    "user_id": "u1",
    "item_id": "arabica-1",
    "liked": True,
    "rating": 5,
    "context": {"hour": 8, "weekday": 2, "weather": "rainy", "temp_c": 4.5, "mood": 7},
    "notes": [" Yuzu ", "다크초콜릿"],
    "brew": {"temp_c": 93, "ratio": 15.5},
}


def test_a_good_event_validates_and_normalises() -> None:
    event, reason = validate_event(GOOD, ITEMS)
    assert reason is None and isinstance(event, FeedbackEvent)
    assert event.notes == ["yuzu", "다크초콜릿"] and event.label(4.0) == 1.0 and event.weight() == 1.5
    only_rating, _ = validate_event({**GOOD, "liked": None, "rating": 2}, ITEMS)
    assert only_rating is not None and only_rating.label(4.0) == 0.0
    assert validate_event({**GOOD, "client": {"x": 1}}, ITEMS)[0] is not None  # unknown keys are ignored


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"user_id": None}, "user_id"),
        ({"item_id": "robusta-999"}, "unknown item 'robusta-999'"),
        ({"rating": float("nan"), "liked": None}, "rating: NaN"),
        ({"context": {"hour": 99}}, "context.hour"),
        ({"liked": "yes"}, "liked"),
        ({"liked": None, "rating": None}, "needs `liked`"),
        ({"rating": 7}, "rating"),
        ({"extra_scores": [1.0, float("inf")]}, "extra_scores.1: NaN or infinite"),
        ({"notes": ["x" * 65]}, "notes"),
    ],
)
def test_malformed_events_are_rejected_with_a_reason(change: dict, reason: str) -> None:
    record = {**GOOD, **change}
    record = {k: v for k, v in record.items() if v is not None}
    event, why = validate_event(record, ITEMS)
    assert event is None and why is not None and reason in why


def test_reader_resumes_at_the_watermark_and_waits_for_partial_lines(tmp_path: Path) -> None:
    folder = tmp_path / "events"
    folder.mkdir()
    (folder / "b.jsonl").write_text(json.dumps({**GOOD, "event_id": "b1"}) + "\n")
    (folder / "a.jsonl").write_bytes(
        (json.dumps(GOOD) + "\n\n{broken\n[1, 2]\n").encode() + b"\xff\xfe\n" + b'{"event_id": "half'
    )
    files = event_files(folder)
    assert [f.name for f in files] == ["a.jsonl", "b.jsonl"]
    lines = list(read_pending(files, {}))
    assert [(Path(r.source).name, r.line) for r in lines] == [("a.jsonl", n) for n in (1, 2, 3, 4, 5)] + [
        ("b.jsonl", 1)
    ]
    assert lines[0].record is not None and lines[1].record is None and lines[1].error is None  # blank line
    assert "invalid JSON" in (lines[2].error or "") and "JSON object" in (lines[3].error or "")
    assert "UTF-8" in (lines[4].error or "")
    later = list(read_pending(files, {str(files[0]): 4}))
    assert [(Path(r.source).name, r.line) for r in later] == [("a.jsonl", 5), ("b.jsonl", 1)]
    with (folder / "a.jsonl").open("ab") as fh:  # the writer finishes its line
        fh.write(b'", "user_id": "u"}\n')
    done = list(read_pending(files, {str(files[0]): 5, str(files[1]): 1}))
    assert len(done) == 1 and done[0].line == 6 and done[0].record == {"event_id": "half", "user_id": "u"}
    with pytest.raises(FileNotFoundError):
        event_files(tmp_path / "missing")


def test_dead_letter_keeps_reason_and_never_files_a_line_twice(tmp_path: Path) -> None:
    path = tmp_path / "dl.jsonl"
    dead = DeadLetter(path)
    assert dead.write("f.jsonl", 3, "item_id: unknown item 'x'", '{"item_id": "x"}', "e3")
    assert not dead.write("f.jsonl", 3, "again", "{}")
    again = DeadLetter(path)  # a rerun after a crash re-reads the file
    assert not again.write("f.jsonl", 3, "again", "{}") and again.write("f.jsonl", 4, "other", "{}")
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in rows] == [(3, "item_id: unknown item 'x'"), (4, "other")]
    assert rows[0]["event_id"] == "e3" and rows[0]["raw"] == '{"item_id": "x"}'


def _records(n: int, start: int = 0) -> Records:
    ids = [f"e{i}" for i in range(start, start + n)]
    return Records(
        ids,
        ["u"] * n,
        np.arange(n) % 2,
        [[] for _ in range(n)],
        np.zeros((n, 4), np.float32),
        np.zeros((n, 2, 12), np.float32),
        np.ones(n, np.float32),
        np.ones(n, np.float32),
        np.zeros((n, 3), np.int64),
        np.zeros((n, 3), np.float32),
        np.zeros(n, np.float32),
        np.zeros((n, 2), np.float32),
    )


def test_reservoir_is_bounded_uniform_and_resumable() -> None:
    buf = ReservoirBuffer(capacity=500, seed=3)
    for start in range(0, 10_000, 100):
        buf.add(_records(100, start))
    assert len(buf) == 500 and buf.seen == 10_000
    kept = np.array([int(e[1:]) for e in buf.event_ids()])
    first_half = (kept < 5000).mean()
    assert 0.42 < first_half < 0.58  # each event kept with p = 500 / 10,000, old or new alike
    state = buf.state_dict()
    twin = ReservoirBuffer(capacity=1, seed=99)
    twin.load_state_dict(state)
    a, b = buf.sample(50), twin.sample(50)
    assert a is not None and b is not None and a.event_ids == b.event_ids  # same RNG position
    assert len(set(a.event_ids)) == 50 and ReservoirBuffer(5).sample(3) is None


def test_the_shared_window_loop_rejects_blanks_bad_lines_and_duplicates_once() -> None:
    """`feedback_windows` (the update job's and the simulation's one loop): full windows, then the short
    last one; a blank line is skipped, a bad line or a repeated event_id goes to `reject` with its reason."""
    from monovec.taste.feedback import feedback_windows, parse_line

    events = [json.dumps({**GOOD, "event_id": f"e{i}"}) for i in range(5)]
    lines = [events[0], "", "{not json", events[1], events[1], events[2], events[3], events[4]]
    raws = [parse_line("mem", n, (text + "\n").encode()) for n, text in enumerate(lines, start=1)]
    rejected: list[tuple[int, str]] = []
    seen: list[int] = []
    learned = {"e3"}  # learned in an earlier run
    windows = []
    for window in feedback_windows(
        raws,
        ITEMS,
        2,
        lambda raw, why, _id: rejected.append((raw.line, why)),
        learned,
        on_line=lambda raw: seen.append(raw.line),
    ):
        windows.append(window)
        learned.update(e.event_id for e, _ in window)  # as the consumer does: read while the stream goes
    assert [[e.event_id for e, _ in w] for w in windows] == [["e0", "e1"], ["e2", "e4"]]
    assert [line for line, _ in rejected] == [3, 5, 7] and "invalid JSON" in rejected[0][1]
    assert all("duplicate" in why for _, why in rejected[1:]) and seen == list(range(1, 9))
