"""Safety stage pieces without a model: taxonomy config, the policy, segments, confusables, the
example set, and the category model's fit/save/load on a small synthetic corpus."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from monovec.classify.confusables import fold_to_latin
from monovec.classify.policy import decide
from monovec.classify.rules import RuleResult
from monovec.classify.safety import SafetyModel
from monovec.classify.safety_data import SafetyCorpus, load_example_file
from monovec.classify.segment import language_of, split_segments
from monovec.classify.taxonomy import SafetyConfig
from tests.conftest import REPO


def _config(**over) -> SafetyConfig:
    data = {
        "categories": {
            "hate": {"policy": "block", "high_risk": True},
            "profanity": {"policy": "block"},
            "violence": {"policy": "block", "high_risk": True},
            "self_harm": {
                "policy": "escalate",
                "subtype_policy": {"encouragement": "block"},
                "high_risk": True,
            },
            "crime": {"policy": "escalate", "high_risk": True},
        }
    }
    data.update(over)
    return SafetyConfig.model_validate(data)


def _scores(**kw: float) -> dict[str, float]:
    return {"hate": 0.0, "profanity": 0.0, "violence": 0.0, "self_harm": 0.0, "crime": 0.0, **kw}


def test_shipped_taxonomy_is_valid_and_complete() -> None:
    from monovec.classify.build import BuildConfig
    from monovec.config import load_config

    safety = load_config(BuildConfig, REPO / "jobs/configs/classifier.yaml").classifier.safety
    assert safety is not None and safety.enabled
    assert set(safety.names) == {"hate", "profanity", "violence", "self_harm", "crime"}
    assert {safety.action("self_harm", "ideation"), safety.action("self_harm", "encouragement")} == {
        "escalate",
        "block",
    }
    assert all(c.description for c in safety.categories.values())


def _field_paths(model: type, prefix: str = "") -> list[str]:
    """Dotted paths of the leaf fields of a pydantic model, nested models expanded (`stance.threshold`)."""
    from pydantic import BaseModel

    from monovec.classify.taxonomy import CategoryConfig, SafetySource

    nested = {"categories": (CategoryConfig, "categories.<name>."), "sources": (SafetySource, "sources[i].")}
    out = []
    for name, field in model.model_fields.items():
        if not prefix and name in nested:
            out += [prefix + name, *_field_paths(nested[name][0], nested[name][1])]
        elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            out += _field_paths(field.annotation, f"{prefix}{name}.")  # the leaves name their parent
        else:
            out.append(prefix + name)
    return out


def test_every_safety_config_field_is_documented() -> None:
    """docs/configuration.md has a row naming every `classifier.safety` key (nested ones dotted)."""
    docs = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    section = docs.split("### The safety stage (`classifier.safety`)", 1)[1].split("\n## ", 1)[0]
    missing = [p for p in _field_paths(SafetyConfig) if f"`{p}`" not in section]
    assert not missing, f"undocumented safety config keys: {missing}"
    assert all(f.description for f in SafetyConfig.model_fields.values())


def test_config_rejects_unknown_categories_and_bad_thresholds() -> None:
    with pytest.raises(ValidationError, match="not in the taxonomy"):
        _config(
            sources=[
                {
                    "path": "x.jsonl",
                    "text_fields": {"t": "en"},
                    "label_field": "l",
                    "categories": {"a": ["nope"]},
                }
            ]
        )
    with pytest.raises(ValidationError, match="must not exceed"):
        SafetyConfig.model_validate(
            {"categories": {"hate": {"policy": "block", "threshold": 0.3, "ambiguous_threshold": 0.4}}}
        )
    with pytest.raises(ValidationError, match="does not compile"):
        _config(
            sources=[
                {
                    "path": "x",
                    "text_fields": {"t": "en"},
                    "label_field": "l",
                    "categories": {},
                    "exclude": "(",
                }
            ]
        )


@pytest.mark.parametrize(
    ("scores", "decision", "flags"),
    [
        (_scores(), "allow", []),
        (_scores(hate=0.9), "block", []),
        (_scores(hate=0.4), "escalate", []),  # ambiguous high risk
        (_scores(profanity=0.4), "allow", ["profanity"]),  # borderline, not high risk: allow and flag
        (_scores(crime=0.8), "escalate", []),
        (_scores(violence=0.36, crime=0.36), "escalate", []),  # several risks at once
        (_scores(hate=0.9, violence=0.9), "block", []),  # the most severe action wins
    ],
)
def test_policy(scores: dict[str, float], decision: str, flags: list[str]) -> None:
    v = decide(_config(), scores, [], {})
    assert v.decision == decision, v.reasons
    assert v.flags == flags
    assert (decision == "allow") == (not v.reasons or bool(flags))


def test_rules_raise_their_category_and_subtypes_pick_the_policy() -> None:
    cfg = _config()
    ideation = RuleResult(
        category="self_harm", subtype="ideation", rule_id="r1", reason="x", matched="want to die"
    )
    encourage = RuleResult(
        category="self_harm", subtype="encouragement", rule_id="r2", reason="x", matched="kys"
    )
    v = decide(cfg, _scores(), [ideation], {})
    assert v.decision == "escalate" and v.by_rule and v.categories["self_harm"] == cfg.rule_score
    v = decide(cfg, _scores(), [ideation, encourage], {})
    assert (
        v.decision == "block" and v.subtypes["self_harm"] == "encouragement" and "r2" in " ".join(v.reasons)
    )
    out = v.public()
    assert set(out) >= {"decision", "categories", "reasons"} and set(out["categories"]) == set(cfg.names)


def test_segments_and_language() -> None:
    text = "Nice weather today and the coffee is great! Women are too stupid to vote."
    assert split_segments(text) == [
        "Nice weather today and the coffee is great!",
        "Women are too stupid to vote.",
    ]
    assert split_segments("one sentence only") == []
    assert split_segments("오늘 날씨 좋고 커피도 맛있네요. 여자들은 정치하면 안 된다") == [
        "오늘 날씨 좋고 커피도 맛있네요",
        "여자들은 정치하면 안 된다",
    ]
    quoted = '"Muslims are vermin." I cannot believe someone wrote that.'
    assert all(not s.startswith('"Muslims are vermin."') or "believe" in s for s in split_segments(quoted))
    assert language_of("안녕 hello") == "ko" and language_of("hello") == "en" and language_of("ㅋㅋ") == "ko"


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("kіll", "kill"),
        ("𝐢𝐝𝐢𝐨𝐭", "idiot"),
        ("ⓚⓘⓛⓛ", "kill"),
        ("ᴋɪʟʟ", "kill"),
        ("ＫＩＬＬ", "KILL"),
        ("КІLL", "KILL"),
        ("k̸i̶l̷l", "kill"),
        ("café", "cafe"),
        ("ㅋㅋ 웃기다 ㅠㅠ", "ㅋㅋ 웃기다 ㅠㅠ"),
        ("시발 𝐟𝐮𝐜𝐤", "시발 fuck"),
        ("plain ascii", "plain ascii"),
    ],
)
def test_confusables_fold_to_latin_and_leave_hangul(raw: str, folded: str) -> None:
    assert fold_to_latin(raw) == folded


def test_example_set_is_valid_bilingual_and_has_both_sides() -> None:
    ex = load_example_file()
    cfg = _config()
    kinds = {g.kind for g in ex.groups}
    assert {
        "counter_speech",
        "idiom",
        "news_reporting",
        "medical_support",
        "self_harm_method",
        "crime_fraud",
    } <= kinds
    for g in ex.groups:
        assert set(g.labels) <= set(cfg.names), g.kind
    for label in cfg.names:
        assert any(label in g.labels and g.en and g.ko for g in ex.groups), label
    negatives = [t for g in ex.groups if not g.labels for t in g.en + g.ko]
    assert len(negatives) >= 100


def test_safety_model_fits_scores_and_round_trips() -> None:
    rng = np.random.default_rng(0)
    cfg = _config(min_calibration_positives=5, lexical={"n_features": 1024})
    corpus = SafetyCorpus(cfg.names)
    centres = rng.standard_normal((6, 16)).astype(np.float32)
    xs = []
    for i in range(600):
        lang = "en" if (i // 6) % 2 else "ko"
        k = i % 6  # 0 harmless, 1..5 one category each
        positives = set() if k == 0 else {cfg.names[k - 1]}
        corpus.add(f"text {k} {i}", lang, positives, set(cfg.names), 1.0, 0, None)
        xs.append(centres[k] + 0.3 * rng.standard_normal(16).astype(np.float32))
    x = np.stack(xs)
    model, report = SafetyModel.fit(corpus, x, cfg, seed=0)
    langs = corpus.langs
    s = model.scores(corpus.texts, x, langs)
    truth = np.array(corpus.y)
    assert ((s >= 0.5) == truth).mean() > 0.95, report
    again = SafetyModel.from_state(cfg, model.state())
    assert np.allclose(again.scores(corpus.texts, x, langs), s)


@pytest.mark.parametrize(
    ("text", "lang", "group"),
    [
        ("women are too dumb", "en", "gender"),
        ("womenaretoostupid", "en", "gender"),
        ("imigrants are thieves", "en", "origin"),
        ("조 선 족 들 은 다", "ko", "origin"),
        ("여.자.들.은 머리가", "ko", "gender"),
        ("you are a pathetic loser", "en", None),
        ("lawyers are greedy", "en", None),
        ("기자들은 다 쓰레기", "ko", None),
    ],
)
def test_hate_targets_are_found_through_evasions(text: str, lang: str, group: str | None) -> None:
    from monovec.classify.targets import target_lexicon

    assert target_lexicon().find(text, lang) == group


@pytest.mark.parametrize(
    ("text", "context"),
    [
        ("saying immigrants are rats is dehumanizing", True),
        ("it's not okay to call women stupid", True),
        ("immigrants are not criminals", True),
        ("동성애는 병이 아니야", True),
        ("조선족은 다 범죄자라는 편견은 틀렸어요", True),
        ("immigrants are not human", False),
        ("women are too dumb to vote", False),
        ("조선족은 다 범죄자야", False),
    ],
)
def test_context_rules_need_a_judgement_or_a_negated_slander(text: str, context: bool) -> None:
    from monovec.classify.normalize import KoreanNormalizer
    from monovec.classify.rules import RuleEngine

    hits = RuleEngine().check_all(KoreanNormalizer()(text))
    assert any(h.category == "context" for h in hits) == context
