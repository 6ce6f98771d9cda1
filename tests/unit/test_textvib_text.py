"""Text descriptions of windows: several templates per class, English and Korean, metadata in the text."""

from __future__ import annotations

import numpy as np

from monovec.textvib.data import parse_class
from monovec.textvib.text import TextTable, describe


def test_describe_uses_metadata_in_both_languages() -> None:
    texts = describe(parse_class("OR@6_14"), 1772, 1)
    langs = [lang for lang, _ in texts]
    assert langs.count("en") == 4 and langs.count("ko") == 4
    assert len({t for _, t in texts}) == 8
    en = " ".join(t for lang, t in texts if lang == "en")
    ko = " ".join(t for lang, t in texts if lang == "ko")
    assert "outer race" in en and "1772" in en and "0.014" in en and "1 HP" in en
    assert "외륜" in ko and "1772" in ko and "마력" in ko
    healthy = describe(parse_class("Normal"), 1797, 0, ["en"])
    assert all("fault" not in t or "without" in t or "fault-free" in t for _, t in healthy)


def test_text_table_round_trip_and_rows(tmp_path) -> None:
    t = TextTable(
        ["a", "b", "c"],
        ["en", "ko", "en"],
        ["1797", "1797", "1772"],
        ["IR_7", "IR_7", "IR_7"],
        np.eye(3, dtype=np.float32),
    )
    assert t.rows("1797", "IR_7").tolist() == [0, 1]
    again = TextTable.load(t.save(tmp_path / "t.npz"))
    assert again.texts == t.texts and again.domains == t.domains
    np.testing.assert_array_equal(again.emb, t.emb)
    assert t.merged(again).rows("1772", "IR_7").tolist() == [2, 5]
