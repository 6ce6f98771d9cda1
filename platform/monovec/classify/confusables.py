"""Fold look-alike and styled letters to plain Latin, leaving Hangul alone.

Why: a single Cyrillic `і` in "kill", or an insult typed in 𝐌𝐚𝐭𝐡 𝐁𝐨𝐥𝐝, ⓒⓘⓡⓒⓛⓔⓓ or ꜱᴍᴀʟʟ ᴄᴀᴘɪᴛᴀʟ
letters, defeats both the regex rules and the char n-gram channel, and the sentence encoder reads it
as noise. The table is derived, not hand-written:

1. NFKC, applied only to runs *without* Hangul or jamo (NFKC turns compatibility jamo ㅋ into
   conjoining jamo): covers Mathematical Alphanumerics, fullwidth, circled, parenthesised,
   squared, superscript and subscript letters.
2. Unicode's confusables data (`confusable-homoglyphs`, a copy of UTS #39 confusables.txt): every
   non-ASCII character from which an ASCII letter is reachable in the confusable graph (Cyrillic
   а е о р с х і ѕ ј, Greek ο ρ ν ι, Cherokee Ꭺ ...), keeping the letter's case.
3. Unicode character names for what (1) and (2) miss: LATIN LETTER SMALL CAPITAL K -> k, letters
   WITH a diacritic -> the base letter (zalgo and accent obfuscation).

Measured by `bench/safety_normalize.py` (coverage of styled/homoglyph spellings, cost per text).
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

_HANGUL_RUN = re.compile(r"[\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff]+")
_NEEDS_FOLD = re.compile(r"[^\x00-\x7f\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff]")
# scripts whose letters are never folded: they are real text in our languages (or CJK)
_KEEP_PREFIXES = ("HANGUL", "CJK", "HIRAGANA", "KATAKANA", "IDEOGRAPHIC", "HALFWIDTH HANGUL")
_NAME_LETTER = re.compile(
    r"^(?:NEGATIVE (?:SQUARED|CIRCLED) )?LATIN (?:(CAPITAL|SMALL) LETTER|LETTER SMALL CAPITAL|SMALL CAPITAL LETTER) ([A-Z])(?: WITH .*)?$"
)
_LAST_LETTER = re.compile(r" ([A-Z])$")  # CYRILLIC CAPITAL LETTER BYELORUSSIAN-UKRAINIAN I


def _ascii_letter(s: str) -> bool:
    return len(s) == 1 and s.isascii() and s.isalpha()


def _graph() -> dict[str, list[str]]:
    import confusable_homoglyphs

    path = Path(confusable_homoglyphs.__file__).with_name("confusables.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    return {ch: [h["c"] for h in items if len(h["c"]) == 1] for ch, items in data.items()}


def _reachable_letters(graph: dict[str, list[str]], start: str, depth: int = 3) -> list[str]:
    """ASCII letters at the smallest graph distance from `start` (breadth-first)."""
    seen, frontier = {start}, [start]
    for _ in range(depth):
        found, nxt = [], []
        for c in frontier:
            for h in graph.get(c, ()):
                if _ascii_letter(h):
                    found.append(h)
                elif h not in seen and not h.isascii():
                    seen.add(h)
                    nxt.append(h)
        if found:
            return found
        frontier = nxt
    return []


def _pick(letters: list[str], upper: bool) -> str | None:
    if not letters:
        return None
    same = [c for c in letters if c.isupper() == upper]
    return (same or letters)[0].upper() if upper else (same or letters)[0].lower()


@lru_cache(maxsize=1)
def latin_fold_table() -> dict[int, str]:
    """code point -> ASCII letter, for `str.translate` (built once per process, ~0.2 s)."""
    graph = _graph()
    table: dict[int, str] = {}
    ranges = [(0x80, 0x2C00), (0xA720, 0xA800), (0xAB30, 0xABC0), (0x1F130, 0x1F18A)]
    candidates = set(graph) | {chr(cp) for lo, hi in ranges for cp in range(lo, hi)}
    for ch in candidates:
        if len(ch) != 1 or ch.isascii():
            continue
        name = unicodedata.name(ch, "")
        if not name or name.startswith(_KEEP_PREFIXES):
            continue
        m = _NAME_LETTER.match(name)
        if m:
            table[ord(ch)] = m.group(2) if m.group(1) == "CAPITAL" else m.group(2).lower()
            continue
        if not ch.isalpha():
            continue
        upper = "CAPITAL" in name
        reachable = _reachable_letters(graph, ch)
        last = _LAST_LETTER.search(name)
        if last and reachable and last.group(1).lower() in {c.lower() for c in reachable} | {"i"}:
            reachable = [last.group(1)]  # the name says which of I / l it is
        letter = _pick(reachable, upper)
        if letter is None:  # e.g. Cyrillic к reaches only kra; its capital К reaches K
            swapped = ch.upper() if ch.islower() else ch.lower()
            if swapped != ch and len(swapped) == 1:
                letter = _pick(_reachable_letters(graph, swapped), not upper)
                letter = None if letter is None else (letter.upper() if upper else letter.lower())
        if letter is not None:
            table[ord(ch)] = letter
    return table


def _fold_run(run: str) -> str:
    t = unicodedata.normalize("NFKC", run)
    if t.isascii():
        return t
    t = t.translate(latin_fold_table())
    if t.isascii():
        return t
    # strip combining marks left on Latin letters (k̸i̶l̷l, café): NFD, drop Mn after ASCII letters
    out: list[str] = []
    for ch in unicodedata.normalize("NFD", t):
        if unicodedata.category(ch) == "Mn" and out and out[-1].isascii():
            continue
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def fold_to_latin(text: str) -> str:
    """Text with styled and look-alike letters folded to ASCII Latin; Hangul runs untouched (NFC).

    Cheap on ordinary input: a text with only ASCII and Hangul returns after one regex scan.
    """
    if not _NEEDS_FOLD.search(text):
        return text
    out, pos = [], 0
    for m in _HANGUL_RUN.finditer(text):
        if m.start() > pos:
            out.append(_fold_run(text[pos : m.start()]))
        out.append(m.group(0))
        pos = m.end()
    if pos < len(text):
        out.append(_fold_run(text[pos:]))
    return "".join(out)
