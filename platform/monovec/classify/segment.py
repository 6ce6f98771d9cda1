"""Sentence segments and the script-level language of a text, for segment-level harm.

Why segments: a hateful sentence padded with friendly ones ("Nice weather today, the coffee is
great. Women are too stupid for politics.") is diluted in one sentence embedding; scoring each
sentence and taking the worst keeps it visible. Emotion stays a whole-text judgement.

Quotations are never split, and a segment that is only a quotation is not scored on its own:
counter-speech that quotes hate ('"X are vermin" is a vile thing to say') must be read whole.
"""

from __future__ import annotations

import re

_HANGUL = re.compile(r"[가-힣ㄱ-ㅣ]")
_QUOTES = {'"': '"', "“": "”", "‘": "’", "「": "」", "『": "』", "«": "»"}
_BREAK = re.compile(r"(?<=[.!?。！？…])\s+|\n+|(?<=[다요죠네음])[.!?~]*\s+(?=\S{2,}\s\S)")
_ONLY_QUOTE = re.compile(r'^\W*["“‘「『«].*["”’」』»]\W*$', re.S)


def language_of(text: str) -> str:
    """'ko' when the text has any Hangul (syllables or jamo), else 'en' (the two trained languages)."""
    return "ko" if _HANGUL.search(text) else "en"


def _mask_quotes(text: str) -> str:
    """The text with every quoted span's inner whitespace/punctuation replaced by '_' (same length),
    so the break regex cannot split inside a quotation."""
    out, i, n = list(text), 0, len(text)
    while i < n:
        close = _QUOTES.get(text[i])
        if close is not None:
            j = text.find(close, i + 1)
            if j > i:
                for k in range(i + 1, j):
                    if not text[k].isalnum():
                        out[k] = "_"
                i = j + 1
                continue
        i += 1
    return "".join(out)


def split_segments(text: str, max_segments: int = 8, min_chars: int = 6) -> list[str]:
    """Sentences of `text` worth scoring alone: [] when there are fewer than two.

    Pieces shorter than `min_chars` are merged into the previous one; quotation-only pieces are
    dropped; at most `max_segments` (the longest kept, in text order) to bound the encoder's cost.
    """
    masked = _mask_quotes(text)
    pieces, start = [], 0
    for m in _BREAK.finditer(masked):
        pieces.append(text[start : m.start()].strip())
        start = m.end()
    pieces.append(text[start:].strip())
    merged: list[str] = []
    for p in pieces:
        if not p:
            continue
        if merged and (len(p) < min_chars or len(merged[-1]) < min_chars):
            merged[-1] = f"{merged[-1]} {p}"
        else:
            merged.append(p)
    segs = [s for s in merged if not _ONLY_QUOTE.match(s)]
    if len(merged) < 2 or not segs:
        return []
    if len(segs) > max_segments:
        keep = sorted(sorted(range(len(segs)), key=lambda i: -len(segs[i]))[:max_segments])
        segs = [segs[i] for i in keep]
    return segs
