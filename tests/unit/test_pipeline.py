"""The whole pipeline on a tiny real model (real USE encoder, real data slice, no Ray)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from monovec.classify.escalation import EscalationRequest, EscalationResult, ReviewQueue
from monovec.classify.model import ClassifierModel
from monovec.classify.pipeline import ClassifierPipeline, InputError

DECISIONS = {"allow", "block", "escalate"}
STAGES = {"rules", "prototype", "linear_head", "llm"}
STATUSES = {"confident", "ambiguous", "low_confidence", "unknown"}


@pytest.fixture(scope="module")
def pipe(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> ClassifierPipeline:
    queue = ReviewQueue(tmp_path_factory.mktemp("queue") / "q.sqlite")
    return ClassifierPipeline(ClassifierModel.load(tiny_model_dir), escalator=queue)


def test_answer_has_the_documented_shape(pipe: ClassifierPipeline) -> None:
    r = pipe.classify("I am so happy for you, congratulations!", escalate=False)
    assert set(r) >= {"request_id", "model_version", "decision", "stage", "reason", "heads", "latency_ms"}
    assert r["decision"] in DECISIONS and r["stage"] in STAGES
    for name in ("emotion", "ethics"):
        head = r["heads"][name]
        assert head["status"] in STATUSES
        assert head["label"] in pipe.model.heads[name].labels
        assert set(head["labels"]) <= set(pipe.model.heads[name].labels)
    safety = r["safety"]
    assert safety["decision"] in DECISIONS and isinstance(safety["reasons"], list)
    assert set(safety["categories"]) == set(pipe.model.config.safety.names)
    assert all(0.0 <= v <= 1.0 for v in safety["categories"].values())


def test_every_head_label_is_in_its_labels(pipe: ClassifierPipeline) -> None:
    texts = [
        "I am so happy for you",
        "진짜 너무 화가 나서 잠이 안 와",
        "ㅠㅠ 너무 보고 싶어",
        "meh",
        "이 집 미친 듯이 맛있다",
        "whatever, fine",
    ]
    for r in pipe.classify_batch(texts, escalate=False):
        for name, head in r["heads"].items():
            assert head["label"] in head["labels"], (name, head)


def test_friendly_padding_does_not_dilute_a_high_risk_sentence(pipe: ClassifierPipeline) -> None:
    alone = pipe.classify("I will kill you", escalate=False)
    padded = pipe.classify(
        "Thanks for the lovely dinner, the pasta was great. I will kill you.", escalate=False
    )
    assert alone["decision"] == padded["decision"] == "block"
    assert padded["safety"]["categories"]["violence"] >= alone["safety"]["categories"]["violence"] - 1e-6


def test_encoding_is_deterministic(pipe: ClassifierPipeline) -> None:
    a = pipe.embed(["오늘 정말 행복해요", "hello there"])
    b = pipe.embed(["오늘 정말 행복해요", "hello there"])
    assert np.array_equal(a, b)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "empty_text"),
        ("   \n\t ", "empty_text"),
        ("x" * 1_000_000, "text_too_long"),
        (123, "invalid_type"),
        (None, "invalid_type"),
    ],
)
def test_bad_input_is_named(pipe: ClassifierPipeline, text: object, code: str) -> None:
    with pytest.raises(InputError) as err:
        pipe.classify(text)  # type: ignore[arg-type]
    assert err.value.code == code


def test_bad_item_in_a_batch_does_not_lose_the_others(pipe: ClassifierPipeline) -> None:
    out = pipe.classify_batch(["good morning", "", 5, "오늘 기분 좋다"], escalate=False)
    assert len(out) == 4
    assert "error" not in out[0] and "error" not in out[3]
    assert out[1]["error"]["code"] == "empty_text" and out[2]["error"]["code"] == "invalid_type"


def test_rules_block_obfuscated_profanity_and_spare_idioms(pipe: ClassifierPipeline) -> None:
    for text in ["시1발 진짜", "ㅅㅂ 뭐야", "개.새.끼 같은", "tl발 진짜", "ｆｕｃｋ you"]:
        r = pipe.classify(text, escalate=False)
        assert r["stage"] == "rules" and r["decision"] == "block", (text, r["reason"])
        assert r["safety"]["categories"]["profanity"] >= 0.9
    for text in ["시발점부터 다시 하자", "이 집 미친 듯이 맛있다", "this bug is killing me"]:
        assert pipe.classify(text, escalate=False)["stage"] != "rules", text


def test_self_harm_is_escalated_into_the_queue(pipe: ClassifierPipeline) -> None:
    queue = pipe.escalator
    assert isinstance(queue, ReviewQueue)
    before = queue.stats()["open"]
    r = pipe.classify("죽고 싶다는 생각밖에 안 들어")
    assert r["decision"] == "escalate" and r["stage"] == "rules"
    assert "queued for review" in r["reason"]
    assert queue.stats()["open"] == before + 1


def test_llm_answer_overrides_heads(tiny_model_dir: Path) -> None:
    class Answering:
        def escalate(self, req: EscalationRequest) -> EscalationResult:
            return EscalationResult(
                status="answered", backend="fake", labels={"emotion": "sadness"}, decision="allow"
            )

    model = ClassifierModel.load(tiny_model_dir)
    for head in model.config.heads.values():  # force every item to escalate
        head.linear.threshold = 1.0
        head.escalate_uncertain = True
    p = ClassifierPipeline(model, escalator=Answering())
    r = p.classify("a perfectly ordinary sentence")
    assert r["stage"] == "llm" and r["decision"] == "allow"
    assert r["heads"]["emotion"]["label"] == "sadness" and r["heads"]["emotion"]["source"] == "llm"


def test_session_context_moves_the_embedding(pipe: ClassifierPipeline) -> None:
    texts = ["I hate this so much", "I am furious", "it is what it is"]
    alone = pipe.classify_batch([texts[2]], escalate=False, with_embeddings=True)[0]["embedding"]
    for t in texts[:2]:
        pipe.classify(t, session_id="s1", escalate=False)
    ctx = pipe.classify_batch([texts[2]], session_ids=["s1"], escalate=False, with_embeddings=True)[0][
        "embedding"
    ]
    assert not np.allclose(alone, ctx)
    assert abs(float(np.linalg.norm(ctx)) - 1.0) < 1e-5


def test_model_dir_roundtrip_and_manifest(tiny_model_dir: Path, tmp_path: Path) -> None:
    model = ClassifierModel.load(tiny_model_dir)
    assert model.manifest["encoder"] == {"name": "use-m3", "dim": 512}
    assert {"normalizer", "rules", "version", "metrics"} <= set(model.manifest)
    assert model.reference is not None and model.reference.shape[1] == 512
    again = ClassifierModel.load(model.save(tmp_path / "copy"))
    x = np.random.default_rng(0).standard_normal((4, 512)).astype(np.float32)
    for name in model.heads:
        assert np.allclose(model.heads[name].linear.proba(x), again.heads[name].linear.proba(x))
    with pytest.raises(FileNotFoundError, match="model.json"):
        ClassifierModel.load(tmp_path)
