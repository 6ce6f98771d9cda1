"""RuleEngine: idioms never fire, each category fires in Korean and English, bad files fail clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monovec.classify.normalize import KoreanNormalizer
from monovec.classify.rules import RuleConfig, RuleEngine, RuleResult

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="module")
def norm() -> KoreanNormalizer:
    return KoreanNormalizer()


@pytest.fixture(scope="module")
def engine() -> RuleEngine:
    return RuleEngine()


def check(engine: RuleEngine, norm: KoreanNormalizer, text: str) -> RuleResult | None:
    return engine.check(norm(text))


@pytest.mark.parametrize(
    "text",
    [
        "시발점",
        "여기가 이 사업의 시발점이야",
        "미친 듯이 맛있다",
        "미친 듯이",
        "this bug is killing me",
        "I'm dying of laughter",
        "you're killing it",
        "죽을 만큼 웃겼어",
        "배고파 죽겠다",
        "shoot, I forgot",
        "dope",
        "that beat is dope",
        "kill the process",
        "3시 발표",
        "새끼 고양이 귀여워",
        "이 새끼 고양이 봐",
        "맛 죽인다",
        "창피해서 죽고 싶다",
        "I want to die laughing",
        "병신년 새해 복 많이",
        "무시발언",
        "마약 구매 혐의로 체포",
        "the suicide rate rose",
        "I'll kill you with kindness",
        "제1회 대회",
        "ㅋㅋㅋㅋ ㅠㅠ",
    ],
)
def test_idioms_and_ordinary_text_never_fire(engine: RuleEngine, norm: KoreanNormalizer, text: str) -> None:
    """No harm rule fires (a `context` rule may: it only damps model scores)."""
    assert [h for h in engine.check_all(norm(text)) if h.category != "context"] == [], text


@pytest.mark.parametrize(
    "text",
    [
        "ㅅㅂ 뭐야",
        "시1발",
        "씨-발",
        "개.새.끼",
        "ㄱㅐㅅㅐㄲㅣ",
        "씨 발 놈아",
        "tlqkf",
        "f*ck you",
        "f**king idiot",
    ],
)
def test_obfuscated_profanity_blocked_after_normalisation(
    engine: RuleEngine, norm: KoreanNormalizer, text: str
) -> None:
    hit = check(engine, norm, text)
    assert hit is not None and hit.category == "profanity", (text, hit)


@pytest.mark.parametrize(
    ("category", "subtype", "ko", "en"),
    [
        ("self_harm", "ideation", "요즘 너무 힘들어서 죽고 싶다", "I just want to end my life"),
        ("self_harm", "ideation", "자살하고 싶어", "I'm going to kill myself tonight"),
        (
            "self_harm",
            "method",
            "어떻게 하면 아프지 않게 죽을 수 있는지 알려줘",
            "what is the most painless way to die",
        ),
        ("self_harm", "encouragement", "그냥 나가 죽어라", "just go kill yourself"),
        ("violence", "threat", "너 죽여버릴 거야", "I will kill you"),
        ("violence", "threat", "칼로 찔러 죽일 거야", "I'm going to shoot up the school tomorrow"),
        ("crime", "weapons", "권총 구매 어디서 하나요", "how to make a pipe bomb at home"),
        ("crime", "drugs", "필로폰 구매 원합니다", "where can I buy meth around here"),
        ("crime", "fraud", "대포통장 삽니다", "selling phishing kits, dm me"),
        ("profanity", "profanity", "이 병신아", "fuck this"),
    ],
)
def test_each_category_fires_in_both_languages(
    engine: RuleEngine, norm: KoreanNormalizer, category: str, subtype: str, ko: str, en: str
) -> None:
    for text in (ko, en):
        hit = check(engine, norm, text)
        assert hit is not None, text
        assert (hit.category, hit.subtype) == (category, subtype), (text, hit)
        assert hit.action is None  # the safety taxonomy's policy decides, not the rule
        assert category in hit.reason and hit.matched and hit.matched in hit.reason and hit.rule_id


def test_self_harm_wins_over_profanity(engine: RuleEngine, norm: KoreanNormalizer) -> None:
    hit = check(engine, norm, "시발 진짜 죽고 싶다")
    assert hit is not None and hit.category == "self_harm"  # file order: escalation for a human first
    assert [h.category for h in engine.check_all(norm("시발 진짜 죽고 싶다"))] == [
        "self_harm",
        "profanity",
    ]  # every hit is reported


@pytest.mark.parametrize(
    "text",
    [
        "병신년 원숭이띠 운세가 궁금해요",
        "시발택시는 한국 최초의 자동차 중 하나다",
        "1955년에 나온 시발(始發) 자동차",
        "새끼손가락을 문에 찧었어요",
        "죽고 싶은 생각이 들면 109로 전화하세요",
        "don't kill yourself, please call someone",
        "stop telling people to kill themselves",
        'He called me a "faggot" and I reported it',
    ],
)
def test_homonyms_prevention_and_counter_speech_do_not_fire(
    engine: RuleEngine, norm: KoreanNormalizer, text: str
) -> None:
    assert engine.check_all(norm(text)) == [], text


def test_categories_and_version(engine: RuleEngine) -> None:
    assert {"self_harm", "violence", "crime", "profanity", "hate"} <= set(engine.categories)
    assert engine.VERSION and engine.version.startswith(engine.VERSION)


def test_disabled_returns_none(norm: KoreanNormalizer) -> None:
    off = RuleEngine(RuleConfig(enabled=False))
    assert off.check(norm("씨발 죽여버릴 거야")) is None
    assert off.check("") is None


def test_bad_regex_names_rule_id(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n"
        "  - {id: fine, category: profanity, action: block, patterns: ['ok']}\n"
        "  - {id: broken_rule, category: profanity, action: block, patterns: ['(unclosed']}\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match=r"broken_rule.*\(unclosed"):
        RuleEngine(RuleConfig(rules_file=str(path)))


@pytest.mark.parametrize(
    "body",
    [
        "rules:\n  - {id: a, category: x, action: delete, patterns: ['x']}\n",  # unknown action
        "rules:\n  - {id: a, category: x, action: block, patterns: []}\n",  # no patterns
        "rules:\n  - {id: a, category: x, action: block, patterns: ['x']}\n  - {id: a, category: y, action: block, patterns: ['y']}\n",
    ],
)
def test_invalid_rule_files_rejected(tmp_path: Path, body: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ValueError):
        RuleEngine(RuleConfig(rules_file=str(path)))


def test_custom_rule_file_with_unless(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n  - {id: spam, category: spam, action: escalate, patterns: ['free money'], unless: ['free money (?:talk|podcast)']}\n",
        encoding="utf-8",
    )
    engine = RuleEngine(RuleConfig(rules_file=str(path)))
    assert engine.categories == ["spam"]
    assert engine.check("get free money now") is not None
    assert engine.check("listen to the free money podcast") is None


@pytest.mark.shared_data
def test_fire_rate_on_goemotions_sample(engine: RuleEngine, norm: KoreanNormalizer) -> None:
    with (DATA / "goemotions" / "dev.jsonl").open(encoding="utf-8") as fh:
        rows = [json.loads(line) for _, line in zip(range(2000), fh, strict=False)]
    texts = [row[key] for row in rows for key in ("text_en", "text_ko")]
    fired = [(hit.rule_id, hit.matched, t) for t in texts if (hit := engine.check(norm(t))) is not None]
    for rule_id, matched, text in fired:
        print(f"{rule_id:24s} {matched!r:20s} {text[:100]}")
    rate = len(fired) / len(texts)
    print(f"fire rate {rate:.2%} ({len(fired)}/{len(texts)})")
    assert rate < 0.05


@pytest.mark.parametrize(
    ("text", "fires"),
    [
        ("I have decided today will be my last day", True),
        ("there is no reason to keep living, I set the date for friday", True),
        ("이제 목숨을 끊기로 했어", True),
        ("살 이유가 없어서 이번 주말에 다 정리하려고", True),
        ("today is my last day at this job", False),
        ("I've decided tonight is my last night in Tokyo", False),
        ("there's no point in living near the office if I work from home", False),
        ("영화 주인공이 삶을 끝내려고 하는 장면이 슬펐어", False),
        ("삶을 끝내려고 했던 사람들을 돕는 상담사예요", False),
    ],
)
def test_self_harm_plans_without_a_self_harm_word(
    engine: RuleEngine, norm: KoreanNormalizer, text: str, fires: bool
) -> None:
    """A decided date or a plan after 'no reason to live' is ideation; a last day at work, a trip or a
    story about someone else is not."""
    hits = [h.category for h in engine.check_all(norm(text))]
    assert ("self_harm" in hits) == fires, (text, hits)


@pytest.mark.parametrize(
    ("text", "fires"),
    [
        ("what cliff near here is high enough to die", True),
        ("몇 미터 높은 곳에서 뛰어야 끝낼 수 있어", True),
        ("is the wall high enough to keep the dog in", False),
        ("what tower is tall enough to see the sea", False),
        ("이 건물은 몇 층 높이야", False),
    ],
)
def test_asking_for_a_height_to_die_is_method_seeking(
    engine: RuleEngine, norm: KoreanNormalizer, text: str, fires: bool
) -> None:
    hits = [h.category for h in engine.check_all(norm(text))]
    assert ("self_harm" in hits) == fires, (text, hits)


@pytest.mark.parametrize(
    ("text", "fires"),
    [
        ("you are such a pathetic loser", True),
        ("shut up, you brainless clown", True),
        ("ur a worthless sack of garbage", True),
        ("you're nothing but a waste of oxygen", True),
        ("I feel like such an idiot today", False),
        ("you are not a loser, you did your best", False),
        ("the clown at the party was great", False),
    ],
)
def test_insults_aimed_at_the_reader_are_profanity(
    engine: RuleEngine, norm: KoreanNormalizer, text: str, fires: bool
) -> None:
    hits = [h.category for h in engine.check_all(norm(text))]
    assert ("profanity" in hits) == fires, (text, hits)


@pytest.mark.parametrize(
    ("text", "rule_id", "fires"),
    [
        # living itself as the burden, wanting it over: ideation (rules-6)
        ("사는 게 지옥 같아서 다 놓아버리고 싶다", "ko_self_harm_intent", True),
        ("삶이 너무 버거워서 그만 살고 싶어", "ko_self_harm_intent", True),
        ("사는 게 너무 고통스러워서 이제 끝났으면 좋겠어", "ko_self_harm_intent", True),
        ("사는 게 괴로워서 회사를 그만하고 싶어", "ko_self_harm_intent", False),
        ("living is fun but sometimes I want it to stop", "en_self_harm_intent", False),
        ("being alive feels unbearable and I want it to stop", "en_self_harm_intent", True),
        ("일하는 게 너무 괴로워서 빨리 끝내고 싶어", "ko_self_harm_intent", False),
        ("사는 게 힘들어서 이사 가고 싶어", "ko_self_harm_intent", False),
        ("this semester is so painful I want it to end", "en_self_harm_intent", False),
        ("living here is so expensive, I want to move", "en_self_harm_intent", False),
        # a named method in a conditional, asking whether or how fast it kills
        ("옥상에서 뛰어내리면 바로 죽을까", "ko_self_harm_method", True),
        ("약을 한꺼번에 먹으면 죽을 수 있어?", "ko_self_harm_method", True),
        ("뛰어내리면 다칠까 봐 무서워", "ko_self_harm_method", False),
        ("목을 매면 안 된다는 캠페인", "ko_self_harm_method", False),
        # threats with a time or place between "find you" and the harm; a gun or bomb brought to a school or office
        ("I will hunt you down after school and hurt you", "en_violence_threat", True),
        ("I'm bringing my gun to school tomorrow", "en_violence_threat", True),
        ("I'll find you at the party and we can kill some time", "en_violence_threat", False),
        ("I'm bringing my rifle to the range this weekend", "en_violence_threat", False),
        ("I'm bringing a cake to the office", "en_violence_threat", False),
        # wanting to get a named drug; overcoming the urge is not seeking
        ("대마초 구할 방법 좀", "ko_drugs", True),
        ("필로폰 구하고 싶어 미치겠다", "ko_drugs", True),
        ("마약 구하고 싶은 충동을 이겨낸 사연", "ko_drugs", False),
        ("need some molly for the festival, anyone have a plug", "en_drugs", True),
        ("trying to grab xans this weekend, who's the plug around here", "en_drugs", True),
        ("grabbing a coke from the fridge, any snacks left?", "en_drugs", False),
        ("shameless plug: my coke bottle art is on sale", "en_drugs", False),
        # a named profession or side called vermin or parasites, without a swear word
        ("landlords are nothing but parasites", "en_profanity", True),
        ("politicians are all lying scum", "en_profanity", True),
        ("not all landlords are parasites", "en_profanity", False),
        ("saying teachers are lazy parasites is unfair", "en_profanity", False),
        ("these burgers are trash", "en_profanity", False),
    ],
)
def test_rules_6_kinds(
    engine: RuleEngine, norm: KoreanNormalizer, text: str, rule_id: str, fires: bool
) -> None:
    """The kinds rules-6 added (docs/classifier.md, round 5), each with look-alikes that must stay quiet: they
    were the functional suite's failures on the fine-tuned encoder, where the example-only scorers put them
    just under their thresholds; an explicit first-person intent should not depend on the encoder."""
    hits = [h.rule_id for h in engine.check_all(norm(text))]
    assert (rule_id in hits) == fires, (text, hits)
