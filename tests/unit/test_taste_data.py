"""The CQI item table and its seeded tasting notes (real data, no model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from monovec.taste.data import SCORE_FIELDS, Catalogue, load_catalogue
from monovec.taste.vocab import TERM_FAMILY, TERMS, TREND_TERMS, all_terms


@pytest.fixture(scope="module")
def coffee(data_dir: Path) -> Path:
    return data_dir / "coffee"


@pytest.fixture(scope="module")
def full(coffee: Path) -> Catalogue:
    return load_catalogue(coffee)


def test_catalogue_has_every_real_lot_with_clean_fields(full: Catalogue) -> None:
    cat = full
    assert len(cat) == 1311 + 28 and len(set(cat.ids)) == len(cat)
    assert cat.scores.shape == (len(cat), len(SCORE_FIELDS)) and not np.isnan(cat.scores).any()
    alt = cat.scores[:, SCORE_FIELDS.index("altitude_m")]
    assert alt.min() >= 100 and alt.max() <= 4000  # feet converted, typos (190,164 m) imputed
    first = cat.meta[cat.index["arabica-1"]]
    assert (
        first["country"] == "Ethiopia"
        and first["process"] == "washed"
        and first["total"] == pytest.approx(90.58)
    )
    assert cat.meta[cat.index["robusta-1"]]["species"] == "robusta"


def test_notes_are_seeded_bilingual_flavour_wheel_terms(coffee: Path, full: Catalogue) -> None:
    a, b, c = full, load_catalogue(coffee), load_catalogue(coffee, seed=1)
    assert a.notes == b.notes and a.texts == b.texts and a.fingerprint() == b.fingerprint()
    assert a.notes != c.notes
    terms = [t for notes in a.notes for t in notes]
    assert set(terms) <= set(all_terms()) and not set(terms) & {
        t for p in TREND_TERMS.values() for pair in p for t in pair
    }
    korean = [t for t in terms if any("\uac00" <= ch <= "\ud7a3" for ch in t)]
    assert 0.3 < len(korean) / len(terms) < 0.5  # p(Korean) = 0.4 per term
    assert all(2 <= len(n) <= 4 for n in a.notes)
    # notes follow the attributes: natural-process lots lean to berry/winey/tropical more than washed ones
    fruity = {"berry", "winey", "tropical"}

    def share(process: str) -> float:
        rows = [n for n, m in zip(a.notes, a.meta, strict=True) if m["process"] == process]
        return float(np.mean([sum(TERM_FAMILY[t] in fruity for t in n) / len(n) for n in rows]))

    assert share("natural") > share("washed") + 0.1
    assert "citrus" in TERMS and all(len(pairs) == 4 for pairs in TERMS.values())


def test_subset_keeps_the_full_catalogues_notes(coffee: Path, full: Catalogue) -> None:
    sub = load_catalogue(coffee, max_items=50)
    assert len(sub) == 50
    for i, item_id in enumerate(sub.ids):
        j = full.index[item_id]
        assert sub.notes[i] == full.notes[j] and sub.meta_tokens[i] == full.meta_tokens[j]
        assert sub.tokens(i) == sub.notes[i] + sub.meta_tokens[i]
