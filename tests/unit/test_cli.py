"""`monovec classify / classifier predict / classifier evaluate` through typer's runner."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from monovec.cli import app

runner = CliRunner()


def test_classify_prints_one_decision(tiny_model_dir: Path) -> None:
    res = runner.invoke(
        app, ["classify", "I love this so much!", "--model", str(tiny_model_dir), "--no-escalate"]
    )
    assert res.exit_code == 0, res.output
    assert res.output.startswith("decision: ")
    assert "emotion:" in res.output and "ethics:" in res.output
    res = runner.invoke(
        app, ["classify", "정말 고마워요", "--model", str(tiny_model_dir), "--json", "--no-escalate"]
    )
    assert json.loads(res.output)["heads"]["emotion"]["label"]


def test_classify_errors_are_one_line(tiny_model_dir: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["classify", "   ", "--model", str(tiny_model_dir)])
    assert res.exit_code == 2 and "empty" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["classify", "hi", "--model", str(tmp_path / "nope")])
    assert res.exit_code == 3 and "no such classifier folder" in res.output


def test_classify_json_errors_have_the_api_shape(tiny_model_dir: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["classify", "x" * 30_000, "--model", str(tiny_model_dir), "--json"])
    assert res.exit_code == 2
    assert json.loads(res.stdout) == {
        "error": {"code": "text_too_long", "message": "text has 30000 characters; the limit is 20000"}
    }
    res = runner.invoke(app, ["classify", "hi", "--model", str(tmp_path / "nope"), "--json"])
    assert res.exit_code == 3 and json.loads(res.stdout)["error"]["code"] == "model_not_found"


def test_model_accepts_the_folder_out_named(tiny_model_dir: Path, tmp_path: Path) -> None:
    """`classifier build --out DIR` writes DIR/<version>: `--model DIR` takes the newest version and says so."""
    import shutil

    root = tmp_path / "builds"
    shutil.copytree(tiny_model_dir, root / "20260101-000000")
    newest = root / "20260102-000000"
    shutil.copytree(tiny_model_dir, newest)
    os.utime(root / "20260101-000000" / "model.json", (2_000_000_000, 2_000_000_000))  # written last: newest
    newest = root / "20260101-000000"
    res = runner.invoke(app, ["classify", "good morning", "--model", str(root), "--json", "--no-escalate"])
    assert res.exit_code == 0, res.output
    assert f"using the newest of 2 classifiers in {root}: {newest}" in res.stderr
    answer = json.loads(res.stdout)
    assert answer["load_ms"] > 0 and "latency_ms" in answer  # loading is reported apart from classification


def test_predict_keeps_good_lines_around_bad_ones(tiny_model_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    with src.open("wb") as fh:
        fh.write(json.dumps({"text": "what a wonderful day"}).encode() + b"\n")
        fh.write(b'{"text": "broken json\n')
        fh.write(b'{"text": "\xff\xfe invalid utf8"}\n')
        fh.write(json.dumps({"body": "wrong field"}).encode() + b"\n")
        fh.write(json.dumps({"text": ""}).encode() + b"\n")
        fh.write(json.dumps({"text": ["not", "a", "string"]}).encode() + b"\n")
        fh.write(json.dumps({"text": "너무 슬퍼요"}, ensure_ascii=False).encode() + b"\n")
    out = tmp_path / "out.jsonl"
    res = runner.invoke(
        app,
        ["classifier", "predict", "--model", str(tiny_model_dir), "--input", str(src), "--output", str(out)],
    )
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 7
    assert [("error" in x) for x in lines] == [False, True, True, True, True, True, False]
    assert "invalid JSON" in lines[1]["error"]["message"]
    assert "UTF-8" in lines[2]["error"]["message"]
    assert "'text'" in lines[3]["error"]["message"]
    assert lines[4]["error"]["code"] == "empty_text" and lines[5]["error"]["code"] == "invalid_type"
    for good in (lines[0], lines[6]):
        assert {"request_id", "decision", "stage", "heads", "model_version"} <= set(good)
    assert "2 classified, 5 errors" in res.output


def test_predict_stores_embeddings_in_chroma(tiny_model_dir: Path, tmp_path: Path) -> None:
    from monovec.classify.service import load_pipeline
    from monovec.tracking.chroma_store import VectorMemory

    src = tmp_path / "in.jsonl"
    src.write_text(
        "\n".join(json.dumps({"text": t}) for t in ["I am thrilled", "I am terrified", "so angry right now"])
    )
    res = runner.invoke(
        app,
        [
            "classifier",
            "predict",
            "-m",
            str(tiny_model_dir),
            "-i",
            str(src),
            "-o",
            str(tmp_path / "o.jsonl"),
            "--chroma",
        ],
    )
    assert res.exit_code == 0, res.output
    memory = VectorMemory.for_model(load_pipeline(str(tiny_model_dir)))
    assert memory.collection.count() == 3
    hits = memory.nearest("I am scared", k=1)
    assert hits[0]["document"] == "I am terrified"


def test_evaluate_writes_report(tiny_model_dir: Path, tmp_path: Path, data_dir: Path) -> None:
    dev = tmp_path / "dev.jsonl"
    dev.write_text(
        "".join(
            line
            for _, line in zip(
                range(200), (data_dir / "goemotions/dev.jsonl").open(encoding="utf-8"), strict=False
            )
        )
    )
    out = tmp_path / "report"
    res = runner.invoke(
        app,
        [
            "classifier",
            "evaluate",
            "-m",
            str(tiny_model_dir),
            "--data",
            str(dev),
            "--head",
            "emotion",
            "--out",
            str(out),
            "--latency-samples",
            "20",
        ],
    )
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    assert {"en", "ko", "all"} <= set(report["emotion"])
    assert 0.0 <= report["emotion"]["coverage"] <= 1.0
    assert report["latency_ms"]["n"] == 20
    assert (out / "confusion_emotion.png").stat().st_size > 1000
    assert (out / "risk_coverage.png").stat().st_size > 1000
    res = runner.invoke(
        app, ["classifier", "evaluate", "-m", str(tiny_model_dir), "--data", str(dev), "--head", "nope"]
    )
    assert res.exit_code == 2 and "unknown head" in res.output
