"""Protected-group targets for the `hate` category, from resources/safety/targets.yaml.

Why: hate, as the taxonomy defines it, is aimed at a protected group. The data sets' hate labels
also cover harsh insults at people ("you are a pathetic loser") and abuse of non-protected groups
(lawyers, journalists); the learned hate score follows them. Requiring a named group keeps `hate`
sharp (the insult keeps its profanity score) and names the target (the hate subtype).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import yaml

from monovec.paths import resource_path


class TargetLexicon:
    """group -> compiled regex per language; `find(text, lang)` -> first group named, or None."""

    def __init__(self, path: str | Path | None = None) -> None:
        p = Path(path) if path else resource_path("safety/targets.yaml")
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        self.version = str(data.get("version", "targets"))
        self._rx: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
        self._bare: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
        self._plain: list[tuple[str, str]] = []  # (group, plain English term) for one-typo matching
        for lang in ("en", "ko"):
            groups = data.get(lang) or {}
            compiled = []
            for group, terms in groups.items():
                body = "|".join(f"(?:{t})" for t in terms)
                pattern = rf"(?<![A-Za-z])(?:{body})(?![A-Za-z])" if lang == "en" else f"(?:{body})"
                if lang == "en":
                    bases = [re.sub(r"s\?$", "", t) for t in terms]  # immigrants? -> immigrant
                    self._plain += [(str(group), b) for b in bases if re.fullmatch(r"[a-z]{5,}", b)]
                    self._bare.setdefault(lang, []).append(
                        (str(group), re.compile(f"(?:{body})", re.IGNORECASE))
                    )
                try:
                    compiled.append((str(group), re.compile(pattern, re.IGNORECASE)))
                except re.error as exc:
                    raise ValueError(
                        f"targets file {p}: group {group!r} ({lang}) does not compile: {exc}"
                    ) from None
            self._rx[lang] = compiled
        by_len: dict[int, list[tuple[str, str]]] = {}  # plain terms and their plurals by length
        for group, term in self._plain:
            for t in (term, term + "s"):
                by_len.setdefault(len(t), []).append((group, t))
        # a token of length n can be one edit from terms of length n - 1, n, n + 1 only
        self._near = {
            n: by_len.get(n - 1, []) + by_len.get(n, []) + by_len.get(n + 1, [])
            for n in range(min(by_len, default=1) - 1, max(by_len, default=0) + 2)
        }
        self._token_group = lru_cache(maxsize=1 << 16)(self._english_token)  # per lexicon

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_token_group"}  # a cache does not pickle

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._token_group = lru_cache(maxsize=1 << 16)(self._english_token)

    def find(self, text: str, lang: str) -> str | None:
        """The first group named in `text`: as written; in Korean also with spaces and separators
        removed (조 선 족, 여.자.들); in English also inside glued words (womenarestupid) and with
        one typo in a word of seven letters or more (imigrants), one swap in a shorter one (wmoen)."""
        for group, rx in self._rx.get(lang, []):
            if rx.search(text):
                return group
        if lang == "ko":
            squeezed = _SEPARATORS.sub("", text)
            return next((g for g, rx in self._rx["ko"] if rx.search(squeezed)), None)
        for token in _WORD.findall(text):
            hit = self._token_group(token.lower())
            if hit:
                return hit
        return None

    def _english_token(self, token: str) -> str | None:
        """The group one lowercased English word names when glued, long or one typo away, or None.
        Depends on the word alone, so `_token_group` caches it: a build looks up ~170k words, ~15k of them
        distinct, and the one-edit scan over every term of a similar length is most of the cost."""
        stem = _GLUED_PEOPLE.sub("", token)  # gayppl, blackpeople, muslimfolks
        if stem != token and len(stem) >= 3:
            hit = next((g for g, rx in self._rx.get("en", []) if rx.fullmatch(stem)), None)
            if hit:
                return hit
        if len(token) >= 12:
            hit = next((g for g, rx in self._bare.get("en", []) if rx.search(token)), None)
            if hit:
                return hit
        if len(token) >= 4:
            # one typo; in words of four to six letters only a swap (wmoen) or a dropped vowel (womn,
            # muslms), since other edits turn real words into group words (while -> white, bigger ->
            # a slur, artist -> autist)
            short = len(token) <= 6
            return next(
                (
                    g
                    for g, t in self._near.get(len(token), [])
                    if _one_edit(token, t, swap_only=short) or (short and _dropped_vowel(token, t))
                ),
                None,
            )
        return None


_SEPARATORS = re.compile(r"[\s.\-_·,*/|]+")
_WORD = re.compile(r"[A-Za-z]+")
_GLUED_PEOPLE = re.compile(r"(?:ppl|people|peeps|folks?)$")


def _dropped_vowel(token: str, term: str) -> bool:
    """True when `token` is `term` with one vowel left out (womn, muslms), not its first letter."""
    if len(term) != len(token) + 1:
        return False
    i = next((k for k in range(len(token)) if token[k] != term[k]), len(token))
    return i > 0 and term[i] in "aeiou" and token[i:] == term[i + 1 :]


def _one_edit(a: str, b: str, swap_only: bool = False) -> bool:
    """True when a and b differ by exactly one insertion, deletion, substitution or adjacent swap
    (`swap_only`: by one adjacent swap)."""
    if a == b or abs(len(a) - len(b)) > 1 or (swap_only and len(a) != len(b)):
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        swap = (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )
        return swap or (len(diff) == 1 and not swap_only)
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = next((k for k in range(len(short)) if short[k] != long_[k]), len(short))
    return short[i:] == long_[i + 1 :]


@lru_cache(maxsize=4)
def target_lexicon(path: str | None = None) -> TargetLexicon:
    return TargetLexicon(path)
