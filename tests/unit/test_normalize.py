"""KoreanNormalizer: NFC (not NFKC), squashing, emoji, obfuscation repair, and what it must not touch."""

from __future__ import annotations

import unicodedata

import pytest

from monovec.classify.normalize import KoreanNormalizer, NormalizeConfig, compose_jamo


@pytest.fixture(scope="module")
def norm() -> KoreanNormalizer:
    return KoreanNormalizer()


def test_nfc_not_nfkc_keeps_compatibility_jamo(norm: KoreanNormalizer) -> None:
    out = norm("ㅋㅋ 웃기다")
    assert out == "ㅋㅋ 웃기다"
    assert "\u314b" in out  # compatibility ㅋ; NFKC would turn it into conjoining U+110F
    decomposed = unicodedata.normalize("NFD", "한국어")
    assert norm(decomposed) == "한국어"


def test_whitespace_and_empty(norm: KoreanNormalizer) -> None:
    assert norm("") == ""
    assert norm("   \n\t ") == ""
    assert norm("  안녕   하세요\n\n반가워요 ") == "안녕 하세요 반가워요"


def test_squash_repeats(norm: KoreanNormalizer) -> None:
    assert norm("ㅋㅋㅋㅋㅋㅋ") == "ㅋㅋㅋ"
    assert norm("대박!!!!!") == "대박!!!"
    assert norm("soooooo good") == "sooo good"
    assert norm("1000000원") == "1000000원"  # digits never squashed
    assert KoreanNormalizer(NormalizeConfig(squash_repeats=0))("ㅋㅋㅋㅋㅋ") == "ㅋㅋㅋㅋㅋ"
    assert KoreanNormalizer(NormalizeConfig(squash_repeats=2))("ㅋㅋㅋㅋㅋ") == "ㅋㅋ"


def test_emoji_and_emoticons(norm: KoreanNormalizer) -> None:
    assert norm("좋아요 😂😂") == "좋아요 :laugh: :laugh:"
    assert norm("great job 👍🏽") == "great job :thumbs_up:"
    assert norm("좋아^^") == "좋아 :smile:"
    assert norm("thanks :)") == "thanks :smile:"
    assert norm("so sad :(") == "so sad :sad:"
    assert norm("I <3 you") == "I :love: you"
    assert norm("슬퍼 ㅜㅜ") == "슬퍼 ㅠㅠ"  # crying jamo canonicalised, still jamo
    assert norm("see http://example.com") == "see http://example.com"  # ':/' in a URL is not an emoticon
    assert KoreanNormalizer(NormalizeConfig(emoji=False))("좋아 😂") == "좋아 😂"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ㅅㅂ 뭐야", "시발 뭐야"),
        ("시1발 진짜", "시발 진짜"),
        ("씨-발", "씨발"),
        ("개.새.끼", "개새끼"),
        ("ㄱㅐㅅㅐㄲㅣ", "개새끼"),
        ("ㄱㅐㅅㅐㄲㅣㅋㅋㅋ", "개새끼ㅋㅋㅋ"),
        ("씨 발 놈", "씨발 놈"),
        ("병.신", "병신"),
        ("tlqkf", "시발"),
    ],
)
def test_obfuscations_repaired(norm: KoreanNormalizer, raw: str, expected: str) -> None:
    assert norm(raw) == expected


@pytest.mark.parametrize(
    "text",
    [
        "ㅋㅋㅋ",
        "ㅎㅎ",
        "ㅠㅠ",
        "ㅋㅋㅋㅠㅠ",
        "2024년 3시에 만나요",
        "제1회 대회",
        "남-북 관계",
        "3시 발표",
        "나 너 좋아",
        "감시.발견",
        "mp3 b2b h2o covid19",
        "가격은 1,500원",
        "새끼줄을 꼬았다",
    ],
)
def test_ordinary_text_untouched(norm: KoreanNormalizer, text: str) -> None:
    assert norm(text) == text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("시발점에서 출발", "출발점에서 출발"),
        ("새끼 오리들이 헤엄쳐", "아기 오리들이 헤엄쳐"),
        ("고양이 새끼 세 마리", "고양이 아기 세 마리"),
        ("새끼발가락이 아파", "작은 발가락이 아파"),
        ("병신년 운세 보러 가자", "丙申년 운세 보러 가자"),
        ("시발택시 사진", "始發택시 사진"),
        ("leave the hoe by the vegetable beds", "leave the weeding tool by the vegetable beds"),
        ("a garden hoe with a long handle", "a garden weeding tool with a long handle"),
    ],
)
def test_homonyms_of_profanity_rewritten(norm: KoreanNormalizer, raw: str, expected: str) -> None:
    """Innocent homonyms become an unambiguous synonym, so rules, n-grams and encoder never see the swear word."""
    assert norm(raw) == expected
    assert KoreanNormalizer(NormalizeConfig(homonyms=False))(raw) == raw


@pytest.mark.parametrize(
    "text",
    [
        "이 새끼 진짜 짜증나",
        "개새끼 꺼져",
        "병신 같은 놈",
        "시발 뭐야",
        "이 새끼 고양이 같은 게",
        "shut up you dumb hoe",
    ],
)
def test_profanity_next_to_homonym_contexts_kept(norm: KoreanNormalizer, text: str) -> None:
    assert norm(text) == text


def test_compose_jamo_arithmetic() -> None:
    assert compose_jamo("ㄱㅐㅅㅐㄲㅣ") == "개새끼"
    assert compose_jamo("ㄷㅏㄹㄱ") == "닭"  # compound final ㄺ
    assert compose_jamo("ㄱㅗㅏㄴ") == "관"  # compound vowel ㅘ
    assert compose_jamo("ㅋㅋㅋ") is None  # no vowel: laughter, not a word
    assert compose_jamo("ㅋㅋㅠㅠ") is None  # partial parse refused


def test_leetspeak(norm: KoreanNormalizer) -> None:
    assert norm("sh1t happens") == "shit happens"
    assert norm("what the f*ck") == "what the fuck"
    assert norm("f**king hell") == "fucking hell"
    assert norm("$h!t") == "shit"
    assert norm("ｆｕｃｋ") == "fuck"  # fullwidth
    off = KoreanNormalizer(NormalizeConfig(leetspeak=False))
    assert off("시1발") == "시1발"
    assert off("sh1t") == "sh1t"


def test_jamo_repair_off() -> None:
    off = KoreanNormalizer(NormalizeConfig(jamo_repair=False))
    assert off("ㄱㅐㅅㅐㄲㅣ") == "ㄱㅐㅅㅐㄲㅣ"
    assert off("개.새.끼") == "개.새.끼"


def test_slang_override_from_config_and_file(tmp_path) -> None:
    cfg = NormalizeConfig(slang={"ㅇㅈ": "인정합니다", "갓겜": "좋은 게임"})
    norm = KoreanNormalizer(cfg)
    assert norm("ㅇㅈ 갓겜") == "인정합니다 좋은 게임"
    path = tmp_path / "slang.yaml"
    path.write_text("ㄹㅇ: 정말\nㅇㅈ: 파일값\n", encoding="utf-8")
    from_file = KoreanNormalizer(NormalizeConfig(slang_file=str(path), slang={"ㅇㅈ": "설정값"}))
    assert from_file("ㄹㅇ ㅇㅈ") == "정말 설정값"  # config beats file beats packaged
    with pytest.raises(FileNotFoundError):
        KoreanNormalizer(NormalizeConfig(slang_file=str(tmp_path / "missing.yaml")))


def test_consonant_abbreviation_not_inside_longer_runs(norm: KoreanNormalizer) -> None:
    assert norm("ㅇㅇ") == "응응"
    assert norm("ㅇㅇㅇ") == "ㅇㅇㅇ"
    assert norm("ㅅㅂㅋㅋ") == "시발ㅋㅋ"


def test_optional_honorifics_and_spacing() -> None:
    norm = KoreanNormalizer(NormalizeConfig(honorifics=True, spacing=True))
    assert norm("감사합니다 . 좋아요!?!?") == "감사한다. 좋아?!"
    assert norm("필요 중요") == "필요 중요"  # 요 inside nouns is not an ending


def test_deterministic(norm: KoreanNormalizer) -> None:
    text = "ㅅㅂ 😂😂 시1발 개.새.끼 ㄱㅐㅅㅐㄲㅣ f*ck ㅋㅋㅋㅋㅋ"
    first = norm(text)
    assert all(norm(text) == first for _ in range(5))
    assert KoreanNormalizer()(text) == first
    assert KoreanNormalizer.VERSION
