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


def _synthetic_corpus(cfg: SafetyConfig, seed: int) -> tuple[SafetyCorpus, np.ndarray, np.ndarray]:
    """600 rows around 6 centres in 16-d (0 harmless, 1..5 one category each), both languages;
    returns the corpus, the embeddings and the centres."""
    rng = np.random.default_rng(seed)
    corpus = SafetyCorpus(cfg.names)
    centres = rng.standard_normal((6, 16)).astype(np.float32)
    xs = []
    for i in range(600):
        lang = "en" if (i // 6) % 2 else "ko"
        k = i % 6
        positives = set() if k == 0 else {cfg.names[k - 1]}
        corpus.add(f"text {k} {i}", lang, positives, set(cfg.names), 1.0, 0, None)
        xs.append(centres[k] + 0.3 * rng.standard_normal(16).astype(np.float32))
    return corpus, np.stack(xs), centres


def test_safety_model_fits_scores_and_round_trips() -> None:
    cfg = _config(min_calibration_positives=5, lexical={"n_features": 1024})
    corpus, x, _ = _synthetic_corpus(cfg, seed=0)
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
        ("womn are too dumb to lead", "en", "gender"),
        ("gayppl are gross", "en", "sexuality"),
        ("I met some nice ppl", "en", None),
        ("muslms ruin everything", "en", "religion"),
        ("I love my mom", "en", None),
        ("form a line please", "en", None),
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
        ('the post said "refugees are vermin", which is vile', True),
        ('"gays kissing", that\'s disgusting', False),
        ("women are too dumb to vote", False),
        ("조선족은 다 범죄자야", False),
    ],
)
def test_context_rules_need_a_judgement_or_a_negated_slander(text: str, context: bool) -> None:
    from monovec.classify.normalize import KoreanNormalizer
    from monovec.classify.rules import RuleEngine

    hits = RuleEngine().check_all(KoreanNormalizer()(text))
    assert any(h.category == "context" for h in hits) == context


def test_a_context_rule_damps_only_the_categories_it_names(tmp_path) -> None:
    """An idiom rule ("kill for a coffee") damps violence and settles it (no escalation from the
    ambiguous band) but leaves hate alone; a rule without `damps` damps the config's categories."""
    from monovec.classify.policy import SafetyStage
    from monovec.classify.rules import RuleConfig, RuleEngine

    cfg = _config(
        min_calibration_positives=5,
        lexical={"enabled": False},
        targets={"enabled": False},
        stance={"enabled": False},
        context={"enabled": False, "positive_head": None},
    )
    corpus, x_train, centres = _synthetic_corpus(cfg, seed=1)
    model, _ = SafetyModel.fit(corpus, x_train, cfg, seed=0)
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n"
        "  - {id: idiom, category: context, damps: [violence], patterns: ['kill for a']}\n"
        "  - {id: counter, category: context, patterns: ['is wrong']}\n",
        encoding="utf-8",
    )
    stage = SafetyStage(model, RuleEngine(RuleConfig(rules_file=str(path))))
    hate, violence = cfg.names.index("hate"), cfg.names.index("violence")
    x = np.stack([centres[violence + 1], centres[hate + 1], centres[violence + 1], centres[hate + 1]])
    texts = ["i'd kill for a coffee", "i'd kill for a coffee", "plain text", "saying that is wrong"]
    plain = model.scores(texts, x, ["en"] * 4)
    out = stage.assess(texts, x)
    assert out[0].categories["violence"] == pytest.approx(
        plain[0, violence] * cfg.context.rule_damping, rel=1e-5
    )
    assert out[0].decision == "allow" and plain[0, violence] >= 0.5
    assert out[1].categories["hate"] == pytest.approx(plain[1, hate], rel=1e-5)  # not named by the idiom rule
    assert out[1].decision == "block"
    assert out[2].decision == "block"  # no rule: the violence score decides
    assert out[3].categories["hate"] == pytest.approx(plain[3, hate] * cfg.context.rule_damping, rel=1e-5)


def test_damps_is_for_context_rules_only(tmp_path) -> None:
    from monovec.classify.rules import RuleConfig, RuleEngine

    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n  - {id: x, category: violence, damps: [hate], patterns: ['x']}\n", encoding="utf-8"
    )
    with pytest.raises(ValueError, match="context only"):
        RuleEngine(RuleConfig(rules_file=str(path)))


def test_calibration_beta_per_language() -> None:
    def hate(beta: object) -> SafetyConfig:
        cats = {"hate": {"policy": "block", "calibration_beta": beta}, "profanity": {"policy": "block"}}
        return SafetyConfig.model_validate({"categories": cats})

    assert _config().categories["hate"].beta("ko") == 1.0
    two = hate({"en": 3.0, "ko": 1.0}).categories["hate"]
    assert (two.beta("en"), two.beta("ko")) == (3.0, 1.0)
    assert hate({"en": 3.0}).categories["hate"].beta("ko") == 1.0
    with pytest.raises(ValidationError, match="calibration_beta must be > 0"):
        hate({"en": 0})
    with pytest.raises(ValidationError):
        hate({"fr": 2.0})


@pytest.mark.parametrize(
    ("text", "damps"),
    [
        ("I'm dying to know how it ends", {"violence", "self_harm"}),
        ("I'd kill for a cold brew", {"violence", "self_harm"}),
        ("the boss fight killed me five times", {"violence", "self_harm"}),
        ("배고파 죽겠다", {"violence", "self_harm"}),
        ("레이드 보스한테 또 죽었어", {"violence", "self_harm"}),
        ("police arrested a man for selling fentanyl", {"crime", "violence"}),
        ("경찰이 보이스피싱 조직을 검거했다", {"crime", "violence"}),
        ("I want to die", set()),
        ("I'm going to kill you tonight", set()),
        ("where can I buy meth", set()),
        ("the police will never find your body", set()),
    ],
)
def test_idiom_and_reporting_rules_damp_threat_self_harm_and_crime(text: str, damps: set[str]) -> None:
    from monovec.classify.normalize import KoreanNormalizer
    from monovec.classify.rules import RuleEngine

    hits = [h for h in RuleEngine().check_all(KoreanNormalizer()(text)) if h.category == "context"]
    assert {c for h in hits for c in h.damps} == damps


def test_lexical_counts_equal_sklearns_hashing_vectorizer() -> None:
    """The cached analyzer + FeatureHasher gives exactly HashingVectorizer(char_wb)'s counts."""
    from sklearn.feature_extraction.text import HashingVectorizer

    from monovec.classify.harm import LexicalConfig
    from monovec.classify.safety import LexicalFeatures

    cfg = LexicalConfig(n_features=4096)
    texts = ["Hello World", "이 집 떡볶이 진짜 맛있어", "", "ＦＵＬＬ width, 𝐛𝐨𝐥𝐝", "a", "ㅋㅋㅋ ㅠㅠ"]
    ref = HashingVectorizer(
        analyzer="char_wb",
        ngram_range=(cfg.ngram_min, cfg.ngram_max),
        n_features=cfg.n_features,
        alternate_sign=False,
        norm=None,
    ).transform([t.lower() for t in texts])
    ref.data = 1.0 + np.log(ref.data)
    got = LexicalFeatures(cfg).counts(texts)
    assert got.dtype == np.float32 and got.shape == ref.shape
    assert abs(got - ref).max() < 1e-6


def test_lexical_idf_is_fitted_on_the_marked_rows_only() -> None:
    """fit_transform's idf is sklearn's smoothed idf of the marked rows, and its features are what a
    model holding that idf computes for every row (marked or not)."""
    from sklearn.feature_extraction.text import TfidfTransformer

    from monovec.classify.harm import LexicalConfig
    from monovec.classify.safety import LexicalFeatures

    cfg = LexicalConfig(n_features=4096)
    texts = ["you idiot", "이 집 맛있어", "what an idiot move", "오늘 날씨 좋다", "idiot idiot", ""]
    rows = np.array([True, True, False, True, False, True])
    lex = LexicalFeatures(cfg)
    got = lex.fit_transform(texts, fit_rows=rows)
    counts = lex.counts([t for t, r in zip(texts, rows, strict=True) if r])
    ref_idf = TfidfTransformer(smooth_idf=True).fit(counts).idf_
    assert np.allclose(lex.idf, ref_idf, atol=1e-5)
    again = LexicalFeatures(cfg, idf=lex.idf)(texts)
    assert abs(got - again).max() < 1e-7
    norms = np.sqrt(np.asarray(got.multiply(got).sum(axis=1)).ravel())
    assert np.allclose(norms[:5], 1.0, atol=1e-5) and norms[5] == 0.0  # unit rows; the empty text stays empty


def test_praise_does_not_excuse_a_hateful_stance() -> None:
    """A joyful row's hate is damped only where the stance model does not read it as hateful."""
    from monovec.classify.policy import SafetyStage

    cfg = _config()
    stage = SafetyStage.__new__(SafetyStage)  # _praise needs only the config and the category names
    stage.config, stage.model = cfg, type("M", (), {"categories": cfg.names})()
    hate = cfg.names.index("hate")
    scores = np.full((3, len(cfg.names)), 0.9, np.float32)
    positive = np.array([True, True, False])
    out = stage._praise(scores, positive, np.array([0.05, 0.95, 0.05]))
    assert out[0, hate] == pytest.approx(0.9 * cfg.context.rule_damping)  # praise of a group
    assert out[1, hate] == pytest.approx(0.9)  # "I love how <group> are too dumb ... lol"
    assert out[2, hate] == pytest.approx(0.9)  # no praise
    assert stage._praise(scores, positive, None)[1, hate] == pytest.approx(0.9 * cfg.context.rule_damping)
