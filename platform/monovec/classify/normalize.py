"""Korean-aware text normalisation, run before the rules and the encoder.

Why: both later stages see only what this returns, and Korean users dodge filters with loose
jamo (ㄱㅐㅅㅐㄲㅣ), consonant abbreviations (ㅅㅂ), separators (개.새.끼) and digits (시1발).
Repairs that could damage ordinary text (removing a separator or digit) are gated on a word
list, so "제1회", "2024년" and "남-북" come out unchanged. Every step is a precompiled regex or a
table lookup (it runs over ~100k texts) and holds no state, so the output is deterministic.
Unicode is NFC, never NFKC: NFKC turns compatibility jamo (ㅋ) into conjoining jamo.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from monovec.classify.confusables import fold_to_latin
from monovec.config import StrictModel
from monovec.paths import resource_path

_CHO = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"  # Unicode order of leading consonants (19)
_JUNG = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"  # vowels (21)
_JONG = " ㄱㄲㄳㄴㄵㄶㄷㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅄㅅㅆㅇㅈㅊㅋㅌㅍㅎ"  # finals (28, index 0 = none)
_CHO_I, _JUNG_I = {c: i for i, c in enumerate(_CHO)}, {c: i for i, c in enumerate(_JUNG)}
_JONG_I = {c: i for i, c in enumerate(_JONG) if i}
_VOWEL_PAIRS = {
    "ㅗㅏ": "ㅘ",
    "ㅗㅐ": "ㅙ",
    "ㅗㅣ": "ㅚ",
    "ㅜㅓ": "ㅝ",
    "ㅜㅔ": "ㅞ",
    "ㅜㅣ": "ㅟ",
    "ㅡㅣ": "ㅢ",
}
_FINAL_PAIRS = {
    "ㄱㅅ": "ㄳ",
    "ㄴㅈ": "ㄵ",
    "ㄴㅎ": "ㄶ",
    "ㄹㄱ": "ㄺ",
    "ㄹㅁ": "ㄻ",
    "ㄹㅂ": "ㄼ",
    "ㄹㅅ": "ㄽ",
    "ㄹㅌ": "ㄾ",
    "ㄹㅍ": "ㄿ",
    "ㄹㅎ": "ㅀ",
    "ㅂㅅ": "ㅄ",
}

_EMOJI = {  # canonical token -> the emoji that map to it (variation selectors, skin tones stripped)
    "laugh": "😂🤣😆😹😄😁😅",
    "smile": "🙂😊😀☺😃😸😇",
    "love": "😍🥰😘❤♥💕💖💗💓💞💘💝😻",
    "sad": "😢😞😔😟☹🙁😿💔",
    "cry": "😭😥😪",
    "angry": "😡😠🤬👿💢",
    "surprise": "😮😲😯😱🙀😳",
    "fear": "😨😰",
    "disgust": "🤢🤮",
    "thumbs_up": "👍",
    "thumbs_down": "👎",
    "fire": "🔥",
    "skull": "💀☠",
    "clap": "👏",
    "pray": "🙏",
    "think": "🤔",
    "wink": "😉",
    "tongue": "😛😜😝😋",
    "neutral": "😐😑😶",
    "eyeroll": "🙄",
    "cool": "😎",
    "party": "🎉🥳",
    "hug": "🤗",
    "shrug": "🤷",
    "facepalm": "🤦",
    "middle_finger": "🖕",
}
_EMOJI_OF = {ch: name for name, chars in _EMOJI.items() for ch in chars}
_EMOJI_RE = re.compile(
    "[" + "".join(sorted(_EMOJI_OF)) + "][\ufe0f\U0001f3fb-\U0001f3ff]*(?:\u200d[\u2640\u2642]\ufe0f?)?"
)
_NB, _NA = r"(?<![A-Za-z0-9:;=<>/])", r"(?![A-Za-z0-9])"  # an emoticon is not part of a word/URL
_EMOTICON_LIST = [
    (_NB + r"[:=]-?\)+", "smile"),
    (_NB + r"[:=]'-?\(+", "cry"),
    (_NB + r"[:=]-?\(+", "sad"),
    (_NB + r";-?\)+", "wink"),
    (_NB + r"[:=]-?D+" + _NA, "laugh"),
    (_NB + r"[xX]D+" + _NA, "laugh"),
    (_NB + r"[:=]-?[pP]+" + _NA, "tongue"),
    (_NB + r"[:=]-?[oO]" + _NA, "surprise"),
    (_NB + r"[:=]-?[/\\](?![/\w])", "unsure"),
    (_NB + r"<3+(?![0-9])", "love"),
    (r"\^[_.\-]?\^+", "smile"),
    (_NB + r"[Tㅠㅜ][_.][Tㅠㅜ]" + _NA, "cry"),
    (r";_;", "cry"),
    (r"-_-;*", "annoyed"),
    (r">_<", "frustrated"),
    (_NB + r"[oO]_[oO]" + _NA, "surprise"),
]
_EMOTICON_NAMES = {f"e{i}": f" :{name}: " for i, (_, name) in enumerate(_EMOTICON_LIST)}
_EMOTICONS = re.compile(  # one scan; the lookahead skips positions that cannot start an emoticon
    r"(?=[:;=<^Tㅠㅜ\-xXoO>])(?:"
    + "|".join(f"(?P<e{i}>{p})" for i, (p, _) in enumerate(_EMOTICON_LIST))
    + ")"
)
_MAY_HAVE_EMOJI = re.compile("[\u2600-\u27bf\U0001f300-\U0001faff]")
_MAY_HAVE_LEET = re.compile(r"[A-Za-z][0-9@$*!|+(]|[0-9@$*!|+(][A-Za-z]")
_CRYING = re.compile(r"(?<![ㄱ-ㅎ])[ㅠㅜ]{2,}")  # ㅜㅜ / ㅠㅜ / ㅠㅠㅠ -> the canonical ㅠㅠ

_TRANSLATE = {0xFF01 + i: 0x21 + i for i in range(94)}  # fullwidth ASCII (ｆｕｃｋ) -> ASCII
_TRANSLATE.update(
    {
        0x3000: 0x20,
        0x200B: None,
        0x200C: None,
        0x2060: None,
        0xFEFF: None,
        0x00AD: None,
        0x2018: 0x27,
        0x2019: 0x27,
        0x201C: 0x22,
        0x201D: 0x22,
    }
)  # curly quotes -> ASCII
_WS = re.compile(r"\s+")
_JAMO_RUN = re.compile(r"[ㄱ-ㅣ]{2,}")
_LAUGH_EDGES = re.compile(r"^((?:[ㅋㅎㄷ]{2,}|[ㅠㅜ]{2,})*)(.*?)((?:[ㅋㅎㄷ]{2,}|[ㅠㅜ]{2,})*)$", re.S)
_LAUGH_ONLY = frozenset("ㅋㅎㅠㅜㅡㄷㅇ")
_SPACED_SYLLABLES = re.compile(r"(?<!\w)[가-힣](?: [가-힣])+(?!\w)")
_SEPARATORS, _LEET_SYMBOLS = r".\-_~·|/,'\"`", r"0-9*!@#$%^&+="
_LEET = {
    "a": "a4@",
    "b": "b8",
    "c": "c(",
    "e": "e3",
    "g": "g9",
    "i": "i1!|l",
    "l": "l1|",
    "o": "o0",
    "s": "s5$z",
    "t": "t7+",
    "u": "uv",
}
_HONORIFICS = [
    (re.compile(p + r"(?=[\s.,!?~]|$)"), r)
    for p, r in [
        (r"했습니다", "했다"),
        (r"합니다", "한다"),
        (r"입니다", "이다"),
        (r"습니다", "다"),
        (r"이에요", "이야"),
        (r"예요", "야"),
        (r"([해어아네데까게지래대봐줘와워])요", r"\1"),
        (r"죠", "지"),
    ]
]
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,!?])(?=\s|$)")
_SPACE_AFTER_PUNCT = re.compile(r"(?<=[가-힣])([.!?]+)(?=[가-힣])")
_MIXED_PUNCT = re.compile(r"[?!]{2,}")
# leetspeak inside any word: a run of look-alike digits/symbols with a letter on both sides (h4te,
# n1gg3r, b!tch, id10t); numbers, units and tags (mp3, covid19, 4chan, @user, 2nd) have no such run
# Korean typed with the keyboard in English mode inside a Hangul word (tl발, 시qkf, 개toRl): the
# Latin run is read through the standard 2-set (dubeolsik) layout and kept only if it composes
_DUBEOLSIK = dict(
    zip(
        "qwertyuiopasdfghjklzxcvbnmQWERTOP",
        "ㅂㅈㄷㄱㅅㅛㅕㅑㅐㅔㅁㄴㅇㄹㅎㅗㅓㅏㅣㅋㅌㅊㅍㅠㅜㅡㅃㅉㄸㄲㅆㅒㅖ",
        strict=True,
    )
)
_HYBRID = re.compile(r"(?=\S*[가-힣])(?=\S*[A-Za-z])[가-힣A-Za-z]+")
_LATIN_RUN = re.compile(r"[A-Za-z]+")
_HANGUL_AND_LATIN = re.compile(r"[가-힣][A-Za-z]|[A-Za-z][가-힣]")
_LEET_CHARS = {
    "0": "o",
    "1": "i",
    "3": "e",
    "4": "a",
    "5": "s",
    "7": "t",
    "@": "a",
    "$": "s",
    "!": "i",
    "|": "l",
}
_LEET_TOKEN = re.compile(r"(?<![A-Za-z0-9@$!|])[A-Za-z0-9@$!|]*[A-Za-z][013457@$!|]+[A-Za-z][A-Za-z0-9@$!|]*")
_LEET_RUN = re.compile(
    r"(?<=[A-Za-z])[013457@$!|]+(?=[A-Za-z])|(?<=[A-Za-z][013457@$!|])[013457]+(?![A-Za-z0-9])"
)
# s p a c e d  or d.o.t.t.e.d single letters (k i l l, f.u.c.k): three or more are joined
_SPACED_LETTERS = re.compile(r"(?<![A-Za-z])[A-Za-z](?:([ .\-_*])[A-Za-z])(?:\1[A-Za-z])+(?![A-Za-z])")


def compose_jamo(run: str) -> str | None:
    """Compose compatibility jamo into syllables (ㄱㅐㅅㅐㄲㅣ -> 개새끼, ㄷㅏㄹㄱ -> 닭).

    Returns None unless the whole run parses as (consonant vowel [final]) blocks: a partial parse
    would turn laughter such as ㅋㅋㅋㅠㅠ into nonsense syllables. A consonant followed by a vowel
    starts the next syllable; otherwise it is the final (compound finals such as ㄺ included).
    """
    out, i, n = [], 0, len(run)
    while i < n:
        cho = _CHO_I.get(run[i])
        if cho is None or i + 1 >= n or run[i + 1] not in _JUNG_I:
            return None
        vowel, i = run[i + 1], i + 2
        if i < n and vowel + run[i] in _VOWEL_PAIRS:
            vowel, i = _VOWEL_PAIRS[vowel + run[i]], i + 1
        jong = 0
        if i < n and run[i] in _JONG_I and not (i + 1 < n and run[i + 1] in _JUNG_I):
            final, i = run[i], i + 1
            if i < n and final + run[i] in _FINAL_PAIRS and not (i + 1 < n and run[i + 1] in _JUNG_I):
                final, i = _FINAL_PAIRS[final + run[i]], i + 1
            jong = _JONG_I[final]
        out.append(chr(0xAC00 + (cho * 21 + _JUNG_I[vowel]) * 28 + jong))
    return "".join(out)


class NormalizeConfig(StrictModel):
    """Which normalisation steps run; NFC and whitespace collapsing always do."""

    squash_repeats: int = Field(
        3,
        ge=0,
        description="longest run of one repeated character kept (ㅋㅋㅋㅋㅋ -> ㅋㅋㅋ, !!!!! -> !!!); digits are never squashed; 0 disables",
    )
    emoji: bool = Field(
        True,
        description="map emoji and emoticons (:) ^^ T_T) to canonical tokens such as ':laugh:'; crying jamo (ㅜㅜ) becomes ㅠㅠ",
    )
    jamo_repair: bool = Field(
        True,
        description="compose loose jamo (ㄱㅐㅅㅐㄲㅣ -> 개새끼) and remove separators splitting a listed word (개.새.끼, 씨-발, 시 발); laughter jamo (ㅋㅋ ㅎㅎ ㅠㅠ) is left alone",
    )
    leetspeak: bool = Field(
        True,
        description="remove digits/symbols splitting a listed Korean word (시1발) and decode Latin leetspeak of listed words (sh1t, f*ck); ordinary numbers (2024년, 3시) are untouched",
    )
    confusables: bool = Field(
        True,
        description="fold styled and look-alike letters (𝐤𝐢𝐥𝐥, ⓚⓘⓛⓛ, ᴋɪʟʟ, Cyrillic і) to Latin; Hangul runs are never touched (see classify/confusables.py)",
    )
    leet_words: bool = Field(
        True,
        description="with leetspeak on: decode leetspeak inside any Latin word when a digit/symbol run sits between letters (h4te -> hate, b!tch -> bitch); and join spaced single letters (k i l l -> kill)",
    )
    honorifics: bool = Field(
        False,
        description="map common polite sentence endings to the plain form (합니다 -> 한다, 좋아요 -> 좋아)",
    )
    spacing: bool = Field(
        False,
        description="also tidy punctuation spacing: no space before . , ! ?, a space after sentence punctuation between Hangul, ?!?! -> ?!",
    )
    slang: dict[str, str] = Field(
        default_factory=dict,
        description="extra slang entries (key -> replacement), merged over the packaged dictionary and slang_file",
    )
    slang_file: str | None = Field(
        None,
        description="optional YAML file of slang entries: a flat mapping, or {slang: {...}, targets: {ko: [...], en: [...]}, homonyms: {regex: replacement}}",
    )
    homonyms: bool = Field(
        True,
        description="rewrite innocent homonyms of profanity to an unambiguous synonym (새끼 오리 -> 아기 오리, 병신년 원숭이띠 -> 丙申년 원숭이띠, 시발점 -> 출발점); the `homonyms` table of the slang files",
    )


def _read_slang_file(path: str) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """Parse a slang YAML: a flat mapping, or {slang: mapping, targets: {lang: [words]}}."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"slang file not found: {p}")
    return _parse_slang_file(str(p), p.stat().st_mtime_ns)[:2]


def _read_homonyms(path: str) -> dict[str, str]:
    """The `homonyms` table (regex -> replacement) of a structured slang file ({} when it has none)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"slang file not found: {p}")
    return _parse_slang_file(str(p), p.stat().st_mtime_ns)[2]


@lru_cache(maxsize=8)
def _parse_slang_file(
    path: str, mtime_ns: int
) -> tuple[dict[str, str], dict[str, tuple[str, ...]], dict[str, str]]:
    """Cached on (path, mtime): the packaged file is read once per process, edits are still seen."""
    p = Path(path)
    data: Any = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"slang file {p} must hold a mapping, got {type(data).__name__}")
    structured = "slang" in data or "targets" in data or "homonyms" in data
    entries = (data.get("slang") or {}) if structured else data
    targets = (data.get("targets") or {}) if structured else {}
    homonyms = (data.get("homonyms") or {}) if structured else {}
    if not isinstance(entries, dict) or not isinstance(targets, dict) or not isinstance(homonyms, dict):
        raise ValueError(
            f"slang file {p}: 'slang' and 'homonyms' must be mappings and 'targets' a mapping of lists"
        )
    for pattern in homonyms:
        try:
            re.compile(str(pattern))
        except re.error as exc:
            raise ValueError(f"slang file {p}: homonym pattern {pattern!r} does not compile: {exc}") from None
    slang = {str(k): str(v) for k, v in entries.items()}
    return (
        slang,
        {str(k): tuple(str(w) for w in v or ()) for k, v in targets.items()},
        {str(k): str(v) for k, v in homonyms.items()},
    )


def _alternation(words: Iterable[str]) -> str:
    """Longest-first alternation so 'ㄱㅅㄲ' wins over 'ㄱㅅ'."""
    return "|".join(re.escape(w) for w in sorted(set(words), key=lambda w: (-len(w), w)))


def _leet_word(word: str) -> str:
    """Regex for one word where each letter may be a look-alike and inner letters may be '*'."""
    parts = []
    for k, ch in enumerate(word.lower()):
        cls = "[" + re.escape(_LEET[ch]) + "]" if ch in _LEET else re.escape(ch)
        parts.append(cls if k == 0 else f"(?:{cls}|\\*)")
    return "".join(parts)


def _keyboard_run(m: re.Match[str]) -> str:
    run = m.group(0)
    jamo = "".join(_DUBEOLSIK.get(c, _DUBEOLSIK.get(c.lower(), "")) for c in run)
    composed = compose_jamo(jamo) if len(jamo) == len(run) else None
    return composed if composed else run


def _repair_hybrid(m: re.Match[str]) -> str:
    """A Hangul-Latin token (tl발): each Latin run becomes the syllables it types, when it composes."""
    return _LATIN_RUN.sub(_keyboard_run, m.group(0))


def _decode_leet_token(m: re.Match[str]) -> str:
    token = m.group(0)
    return _LEET_RUN.sub(lambda r: "".join(_LEET_CHARS[c] for c in r.group(0)), token)


class KoreanNormalizer:
    """Callable text -> normalised text; build once (it compiles its regexes), call many times."""

    VERSION = "norm-3"

    def __init__(self, config: NormalizeConfig | None = None) -> None:
        self.config = cfg = config or NormalizeConfig()
        slang, targets = _read_slang_file(str(resource_path("slang_ko.yaml")))
        slang, targets = dict(slang), {k: list(v) for k, v in targets.items()}
        if cfg.slang_file:
            extra, extra_targets = _read_slang_file(str(Path(cfg.slang_file).expanduser().resolve()))
            slang.update(extra)
            for lang, words in extra_targets.items():
                targets.setdefault(lang, []).extend(words)
        slang.update(cfg.slang)
        homonyms = dict(_read_homonyms(str(resource_path("slang_ko.yaml"))))
        if cfg.slang_file:
            homonyms.update(_read_homonyms(str(Path(cfg.slang_file).expanduser().resolve())))
        self._homonyms = [(re.compile(k), v) for k, v in homonyms.items()] if cfg.homonyms else []
        self._targets_ko = sorted({w for w in targets.get("ko", []) if len(w) > 1}, key=len, reverse=True)
        self._targets_en = [w.lower() for w in targets.get("en", []) if w.isalpha()]
        n = cfg.squash_repeats
        self._squash = re.compile(rf"([^\d\s])\1{{{n},}}") if n else None
        noise = (_SEPARATORS if cfg.jamo_repair else "") + (_LEET_SYMBOLS if cfg.leetspeak else "")
        self._chain = re.compile(rf"[가-힣]+(?:[{noise}]+[가-힣]+)+") if noise else None
        self._noise_split = re.compile(rf"([{noise}]+)") if noise else None
        self._leet_words = sorted(self._targets_en, key=len, reverse=True)
        self._leet = self._compile_leet(self._leet_words) if cfg.leetspeak and self._leet_words else None
        self._slang_passes = self._compile_slang(slang)

    # -- construction -------------------------------------------------------------------------
    @staticmethod
    def _compile_leet(words: list[str]) -> re.Pattern[str]:
        body = "|".join(f"(?P<w{i}>{_leet_word(w)})" for i, w in enumerate(words))
        return re.compile(rf"(?<![A-Za-z0-9])(?:{body})[a-z]*(?![A-Za-z0-9])", re.IGNORECASE)

    @staticmethod
    def _compile_slang(slang: dict[str, str]) -> list[tuple[re.Pattern[str], Callable[[str], str]]]:
        """One regex per key script: jamo keys must not be glued to other jamo (ㅋ ㅎ ㅜ ㅠ aside),
        Latin keys match whole words case-insensitively, Hangul keys must not touch digits."""
        jamo = {k: v for k, v in slang.items() if k and all("ㄱ" <= c <= "ㅣ" for c in k)}
        latin = {k.lower(): v for k, v in slang.items() if k and k.isascii()}
        hangul = {k: v for k, v in slang.items() if k and k not in jamo and not k.isascii()}
        glue = "[ㄱ-ㅊㅌㅍㅏ-ㅛㅝ-ㅟㅡ-ㅣ]"
        passes = []
        for table, pattern, flags in [
            (jamo, rf"(?<!{glue})(?:{{}})(?!{glue})", 0),
            (hangul, r"(?<![0-9])(?:{})(?![0-9])", 0),
            (latin, r"(?<![A-Za-z0-9])(?:{})(?![A-Za-z0-9])", re.IGNORECASE),
        ]:
            if table:
                lookup = table.get if table is not latin else (lambda s, t=table: t.get(s.lower()))
                passes.append((re.compile(pattern.format(_alternation(table)), flags), lookup))
        return passes

    # -- steps --------------------------------------------------------------------------------
    @staticmethod
    def _repair_jamo_run(m: re.Match[str]) -> str:
        """Compose a loose-jamo run only when it parses cleanly; keep laughter/crying at its edges."""
        run = m.group(0)
        if set(run) <= _LAUGH_ONLY:
            return run
        head, core, tail = _LAUGH_EDGES.match(run).groups()  # type: ignore[union-attr]
        composed = compose_jamo(core) if len(core) >= 2 else None
        return run if composed is None else head + composed + tail

    def _join_targets(self, tokens: list[str], noises: list[str], strict: bool) -> str:
        """Drop the noise between tokens where it splits a target word.

        strict (spaced single syllables) joins any spanning occurrence; otherwise the word must
        start at a token start or end at a token end, so "감시.발견" does not become a match."""
        joined = "".join(tokens)
        starts, pos = [], 0
        for tok in tokens:
            starts.append(pos)
            pos += len(tok)
        ends = set(starts[1:]) | {pos}
        drop = [False] * len(noises)
        for word in self._targets_ko:
            i = joined.find(word)
            while i >= 0:
                j = i + len(word)
                if strict or i in starts or j in ends:
                    for b, start in enumerate(starts[1:]):
                        if i < start < j:
                            drop[b] = True
                i = joined.find(word, i + 1)
        if not any(drop):
            return "".join(t + n for t, n in zip(tokens, noises + [""], strict=True))
        return "".join(
            t + ("" if d else n) for t, n, d in zip(tokens, noises + [""], drop + [False], strict=True)
        )

    def _join_chain(self, m: re.Match[str]) -> str:
        parts = self._noise_split.split(m.group(0))  # type: ignore[union-attr]
        return self._join_targets(parts[0::2], parts[1::2], strict=False)

    def _join_spaced(self, m: re.Match[str]) -> str:
        tokens = m.group(0).split(" ")
        return self._join_targets(tokens, [" "] * (len(tokens) - 1), strict=True)

    def _decode_leet(self, m: re.Match[str]) -> str:
        text = m.group(0)
        if text.isalpha():
            return text
        for name, value in m.groupdict().items():
            if value is not None:
                return self._leet_words[int(name[1:])] + text[len(value) :].lower()
        return text

    def __call__(self, text: str) -> str:
        """Normalise one text; '' for empty or whitespace-only input."""
        if not text:
            return ""
        cfg = self.config
        t = _WS.sub(" ", unicodedata.normalize("NFC", text).translate(_TRANSLATE)).strip()
        if cfg.confusables:
            t = fold_to_latin(t)
        if cfg.leet_words and cfg.leetspeak and _MAY_HAVE_LEET.search(t):
            t = _LEET_TOKEN.sub(_decode_leet_token, t)
        if cfg.leet_words:
            t = _SPACED_LETTERS.sub(lambda m: re.sub(r"[^A-Za-z]", "", m.group(0)), t)
        if self._squash is not None:
            t = self._squash.sub(lambda m: m.group(1) * cfg.squash_repeats, t)
        if cfg.emoji:
            if _MAY_HAVE_EMOJI.search(t):
                t = _EMOJI_RE.sub(lambda m: f" :{_EMOJI_OF[m.group(0)[0]]}: ", t)
            t = _EMOTICONS.sub(lambda m: _EMOTICON_NAMES[m.lastgroup or ""], t)
            t = _CRYING.sub(lambda m: "ㅠ" * len(m.group(0)), t)
        if cfg.jamo_repair:
            t = _JAMO_RUN.sub(self._repair_jamo_run, t)
            if _HANGUL_AND_LATIN.search(t):
                t = _HYBRID.sub(_repair_hybrid, t)
        if self._chain is not None:
            t = self._chain.sub(self._join_chain, t)
        if cfg.jamo_repair:
            t = _SPACED_SYLLABLES.sub(self._join_spaced, t)
        if self._leet is not None and _MAY_HAVE_LEET.search(t):
            t = self._leet.sub(self._decode_leet, t)
        for pattern, lookup in self._slang_passes:
            t = pattern.sub(lambda m, f=lookup: f(m.group(0)) or m.group(0), t)
        for pattern, repl in self._homonyms:
            t = pattern.sub(repl, t)
        if cfg.honorifics:
            for pattern, repl in _HONORIFICS:
                t = pattern.sub(repl, t)
        if cfg.spacing:
            t = _MIXED_PUNCT.sub(
                lambda m: "?!" if "?" in m.group(0) and "!" in m.group(0) else m.group(0)[0], t
            )
            t = _SPACE_AFTER_PUNCT.sub(r"\1 ", _SPACE_BEFORE_PUNCT.sub(r"\1", t))
        return _WS.sub(" ", t).strip()
