"""Obfuscation coverage and cost of the normaliser's confusable folding.

    python bench/safety_normalize.py [--n 2000]

Coverage: words spelled with styled letters (Mathematical Alphanumerics, fullwidth, circled, small
capitals, fraktur ...), Cyrillic/Greek look-alikes and combining marks; a spelling is covered when the
normaliser turns it back into the plain word. Three variants in the same run: NFKC on non-Hangul runs
only, + Unicode's confusables data (confusable-homoglyphs), + character names (the shipped fold).
Cost: microseconds per text of the whole normaliser with and without folding, on real GoEmotions
dev texts (English and Korean).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import unicodedata

WORDS = [
    "kill",
    "idiot",
    "stupid",
    "bitch",
    "hate",
    "women",
    "muslims",
    "shoot",
    "die",
    "loser",
    "trash",
    "scum",
]
STYLES = [
    "MATHEMATICAL BOLD SMALL {}",
    "MATHEMATICAL ITALIC SMALL {}",
    "MATHEMATICAL SANS-SERIF BOLD SMALL {}",
    "MATHEMATICAL MONOSPACE SMALL {}",
    "MATHEMATICAL FRAKTUR SMALL {}",
    "MATHEMATICAL SCRIPT SMALL {}",
    "MATHEMATICAL DOUBLE-STRUCK SMALL {}",
    "CIRCLED LATIN SMALL LETTER {}",
    "FULLWIDTH LATIN SMALL LETTER {}",
    "PARENTHESIZED LATIN SMALL LETTER {}",
    "LATIN LETTER SMALL CAPITAL {}",
    "NEGATIVE SQUARED LATIN CAPITAL LETTER {}",
]
# look-alikes used by evaders (test data for the bench, not the folding table)
HOMOGLYPHS = {
    "a": "аɑα",
    "c": "сϲ",
    "d": "ԁ",
    "e": "еҽ",
    "h": "һ",
    "i": "іɩι",
    "j": "ј",
    "k": "κк",
    "l": "ӏ",
    "m": "м",
    "n": "ո",
    "o": "оοσ",
    "p": "рρ",
    "s": "ѕ",
    "t": "т",
    "u": "υս",
    "w": "ԝ",
    "x": "хχ",
    "y": "уγ",
}


def styled(word: str, style: str) -> str | None:
    out = []
    for ch in word:
        try:
            out.append(unicodedata.lookup(style.format(ch.upper())))
        except KeyError:
            if (
                "SMALL CAPITAL" in style
                or "MATHEMATICAL SCRIPT" in style
                or "FRAKTUR" in style
                or "DOUBLE-STRUCK" in style
            ):
                out.append(
                    ch
                )  # a few letters live in Letterlike Symbols under other names; keep the plain letter
            else:
                return None
    return "".join(out)


def spellings() -> list[tuple[str, str, str]]:
    rows = []
    for w in WORDS:
        for style in STYLES:
            s = styled(w, style)
            if s and s != w:
                rows.append((style.replace(" {}", "").lower(), w, s))
        for i, ch in enumerate(w):
            for g in HOMOGLYPHS.get(ch, ""):
                rows.append(
                    ("look-alike " + unicodedata.name(g).split()[0].lower(), w, w[:i] + g + w[i + 1 :])
                )
        rows.append(("combining marks", w, "".join(c + "\u0336" for c in w)))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000, help="real texts timed (half English, half Korean)")
    args = parser.parse_args()
    from monovec.classify import confusables
    from monovec.classify.normalize import KoreanNormalizer, NormalizeConfig
    from monovec.paths import data_dir

    def nfkc_only(t: str) -> str:
        return (
            confusables._HANGUL_RUN.sub(lambda m: m.group(0), unicodedata.normalize("NFKC", t))
            if not confusables._HANGUL_RUN.search(t)
            else t
        )

    graph = confusables._graph()

    def with_data(t: str) -> str:  # NFKC + confusables graph only (no names)
        t = unicodedata.normalize("NFKC", t)
        out = []
        for ch in t:
            letters = [] if ch.isascii() else confusables._reachable_letters(graph, ch)
            out.append(letters[0].lower() if letters else ch)
        return "".join(out)

    variants = {"nfkc": nfkc_only, "nfkc+confusables": with_data, "shipped fold": confusables.fold_to_latin}
    rows = spellings()
    print(f"{len(rows)} obfuscated spellings of {len(WORDS)} words")
    by_kind: dict[str, dict[str, list[bool]]] = {}
    for kind, word, s in rows:
        for name, fn in variants.items():
            by_kind.setdefault(kind, {}).setdefault(name, []).append(fn(s).lower() == word)
    print(f"{'spelling':<34}" + "".join(f"{n:>18}" for n in variants))
    totals = {n: [] for n in variants}
    for kind, res in sorted(by_kind.items()):
        print(f"{kind:<34}" + "".join(f"{sum(res[n]) / len(res[n]):>18.2f}" for n in variants))
        for n in variants:
            totals[n] += res[n]
    print(f"{'all':<34}" + "".join(f"{sum(totals[n]) / len(totals[n]):>18.3f}" for n in variants))
    texts: list[str] = []
    with (data_dir() / "goemotions" / "dev.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            texts += [rec["text_en"], rec["text_ko"]]
            if len(texts) >= args.n:
                break
    timing = {}
    for name, cfg in (
        ("normaliser without folding", NormalizeConfig(confusables=False)),
        ("normaliser (shipped)", NormalizeConfig()),
    ):
        norm = KoreanNormalizer(cfg)
        norm(texts[0])
        t0 = time.perf_counter()
        for t in texts:
            norm(t)
        timing[name] = (time.perf_counter() - t0) / len(texts) * 1e6
        print(f"{name:<30} {timing[name]:8.1f} us/text")
    ratio = timing["normaliser (shipped)"] / timing["normaliser without folding"]
    print(
        f"folding cost ratio {ratio:.2f}x; coverage {sum(totals['shipped fold']) / len(totals['shipped fold']):.3f} (NFKC alone {sum(totals['nfkc']) / len(totals['nfkc']):.3f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
