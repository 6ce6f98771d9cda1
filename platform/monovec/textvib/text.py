"""The text side: descriptions of each window built from its metadata, embedded once by the frozen encoder.

A window's text says where the defect is, how large, and the operating point (rpm, load), in several
English and Korean phrasings. The platform text encoder (USE multilingual by default) is frozen, so
every distinct text is embedded once per run and a small trainable adapter works on the cached rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monovec.embed.text import EncoderConfig
from monovec.textvib.data import FaultMeta, parse_class

_LOC_EN = {"inner": "inner race", "outer": "outer race", "ball": "rolling ball"}
_LOC_KO = {"inner": "내륜", "outer": "외륜", "ball": "볼(전동체)"}
_SIZE_EN = {7: "small", 14: "medium", 21: "large", 28: "very large"}

FAULT_TEMPLATES = {
    "en": [
        "Vibration of a bearing with a {size} {loc} fault at {rpm} rpm under {hp} horsepower load.",
        "{Loc} defect, {mils} mil ({mm} mm) diameter, motor running at {rpm} rpm.",
        "Drive-end accelerometer signal: {loc} damage of {inch} inch, motor load {hp} HP.",
        "A {loc} fault of diameter {inch} in, recorded at a shaft speed of {rpm} rpm.",
    ],
    "ko": [
        "{rpm} rpm, {hp}마력 부하에서 {loc_ko} 결함(직경 {inch}인치)이 있는 베어링의 진동",
        "{loc_ko} 손상, 결함 크기 {mils} mil, 회전 속도 {rpm} rpm",
        "구동단 가속도계 신호: {loc_ko} 결함 {mm} mm, 부하 {hp}마력",
        "축 회전수 {rpm} rpm에서 측정한 {loc_ko} 결함 {inch}인치 베어링 진동 신호",
    ],
}
NORMAL_TEMPLATES = {
    "en": [
        "Vibration of a healthy bearing without any fault at {rpm} rpm under {hp} horsepower load.",
        "Normal bearing, no defect, motor running at {rpm} rpm.",
        "Drive-end accelerometer signal of an undamaged bearing, motor load {hp} HP.",
        "A fault-free bearing recorded at a shaft speed of {rpm} rpm.",
    ],
    "ko": [
        "{rpm} rpm, {hp}마력 부하에서 결함이 없는 정상 베어링의 진동",
        "정상 베어링, 손상 없음, 회전 속도 {rpm} rpm",
        "구동단 가속도계 신호: 결함 없는 베어링, 부하 {hp}마력",
        "축 회전수 {rpm} rpm에서 측정한 정상 베어링 진동 신호",
    ],
}


def describe(
    meta: FaultMeta, rpm: float, load_hp: float | None, languages: Sequence[str] = ("en", "ko")
) -> list[tuple[str, str]]:
    """(language, text) for every template of this class at this operating point."""
    mils = meta.diameter_mils or 0.0
    loc = _LOC_EN.get(meta.location, meta.location)
    values = {
        "rpm": f"{rpm:.0f}",
        "hp": "unknown" if load_hp is None else f"{load_hp:g}",
        "loc": loc + (f" (centred at {meta.clock}:00)" if meta.clock else ""),
        "Loc": loc[:1].upper() + loc[1:],
        "loc_ko": _LOC_KO.get(meta.location, meta.location)
        + (f"({meta.clock}시 방향)" if meta.clock else ""),
        "size": _SIZE_EN.get(round(mils), f"{mils:g}-mil"),
        "mils": f"{mils:g}",
        "inch": f"{mils / 1000:.3f}",
        "mm": f"{mils * 0.0254:.3f}",
    }
    templates = NORMAL_TEMPLATES if meta.location == "normal" else FAULT_TEMPLATES
    return [(lang, t.format(**values)) for lang in languages for t in templates[lang]]


@dataclass
class TextTable:
    """Every distinct description with its frozen embedding; `rows(domain, class)` finds a class's texts."""

    texts: list[str]
    langs: list[str]
    domains: list[str]
    classes: list[str]
    emb: np.ndarray  # (U, E) float32, L2-normalised

    def rows(self, domain: str, label: str) -> np.ndarray:
        return np.array(
            [
                i
                for i, (d, c) in enumerate(zip(self.domains, self.classes, strict=True))
                if d == domain and c == label
            ],
            dtype=np.int64,
        )

    def class_rows(self, domain: str, classes: Sequence[str]) -> list[np.ndarray]:
        out = [self.rows(domain, c) for c in classes]
        missing = [c for c, r in zip(classes, out, strict=True) if len(r) == 0]
        if missing:
            raise KeyError(f"text table has no descriptions for domain {domain!r}, classes {missing}")
        return out

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            path,
            texts=np.array(self.texts),
            langs=np.array(self.langs),
            domains=np.array(self.domains),
            classes=np.array(self.classes),
            emb=self.emb,
        )
        return path

    @classmethod
    def load(cls, path: str | Path) -> TextTable:
        with np.load(path) as z:
            return cls(
                [str(t) for t in z["texts"]],
                [str(t) for t in z["langs"]],
                [str(t) for t in z["domains"]],
                [str(t) for t in z["classes"]],
                z["emb"].astype(np.float32),
            )

    def merged(self, other: TextTable) -> TextTable:
        return TextTable(
            self.texts + other.texts,
            self.langs + other.langs,
            self.domains + other.domains,
            self.classes + other.classes,
            np.concatenate([self.emb, other.emb]),
        )


def build_text_table(
    operating_points: Iterable[tuple[str, float, float | None]],
    classes: Sequence[str],
    languages: Sequence[str],
    encoder: EncoderConfig,
    cache_dir: str | Path | None = None,
) -> TextTable:
    """Describe every (domain, class) and embed the distinct texts once (cached by encoder + texts)."""
    from monovec.embed.cache import embed_texts

    texts, langs, doms, labels = [], [], [], []
    for domain, rpm, load_hp in operating_points:
        for label in classes:
            for lang, text in describe(parse_class(label), rpm, load_hp, languages):
                texts.append(text)
                langs.append(lang)
                doms.append(domain)
                labels.append(label)
    emb = embed_texts(texts, encoder, cache_dir, num_shards=1)
    return TextTable(texts, langs, doms, labels, np.asarray(emb, dtype=np.float32))
