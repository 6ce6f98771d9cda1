"""The item table: real Coffee Quality Institute lots (shared/data/coffee) with seeded tasting notes.

CQI gives cupping scores, origin, variety, process and altitude but no flavour words. Notes are generated
from each lot's own attributes by a documented, seeded procedure (docs/taste2vec.md, "Tasting notes"):

1. z-score the lot's attributes over the catalogue (acidity, body, sweetness+balance+aftertaste, aroma+flavor,
   total, log defects, altitude) and add one-hots for process, continent and species;
2. family affinity = `AFFINITY` weights . features + N(0, 0.5^2) noise (the lot's "true" flavour profile,
   also what simulated users react to);
3. pick 3 families (2 for lots below the median total) by Gumbel-top-k on affinity / 0.5, one term per
   family (two for the first with p = 0.5), each term in Korean with p = 0.4, else English.

The same seed and data give the same notes byte for byte. Altitude cleaning: values above 4,000 that fit
feet (< 13,000) are converted, other out-of-range values (< 100 or absurd) count as missing and take the
median of the lot's country (else of the catalogue).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from monovec.taste.vocab import FAMILIES, TERMS

SCORE_FIELDS: tuple[str, ...] = (
    "aroma",
    "flavor",
    "aftertaste",
    "acidity",
    "body",
    "balance",
    "uniformity",
    "clean_cup",
    "sweetness",
    "cupper_points",
    "total",
    "moisture",
    "defects",
    "altitude_m",
)

_ARABICA = {
    "Aroma": "aroma",
    "Flavor": "flavor",
    "Aftertaste": "aftertaste",
    "Acidity": "acidity",
    "Body": "body",
    "Balance": "balance",
    "Uniformity": "uniformity",
    "Clean.Cup": "clean_cup",
    "Sweetness": "sweetness",
    "Cupper.Points": "cupper_points",
    "Total.Cup.Points": "total",
    "Moisture": "moisture",
}
_ROBUSTA = {
    "Fragrance...Aroma": "aroma",
    "Flavor": "flavor",
    "Aftertaste": "aftertaste",
    "Salt...Acid": "acidity",
    "Mouthfeel": "body",
    "Balance": "balance",
    "Uniform.Cup": "uniformity",
    "Clean.Cup": "clean_cup",
    "Bitter...Sweet": "sweetness",
    "Cupper.Points": "cupper_points",
    "Total.Cup.Points": "total",
    "Moisture": "moisture",
}

CONTINENTS: dict[str, tuple[str, ...]] = {
    "africa": (
        "Ethiopia",
        "Kenya",
        "Tanzania",
        "Uganda",
        "Malawi",
        "Burundi",
        "Rwanda",
        "Zambia",
        "Mauritius",
        "Cote",
    ),
    "central_america": (
        "Mexico",
        "Guatemala",
        "Honduras",
        "Costa Rica",
        "Nicaragua",
        "El Salvador",
        "Panama",
        "Haiti",
        "Puerto Rico",
    ),
    "south_america": ("Colombia", "Brazil", "Peru", "Ecuador"),
    "asia_pacific": (
        "Taiwan",
        "Thailand",
        "Indonesia",
        "China",
        "Myanmar",
        "Vietnam",
        "Philippines",
        "Laos",
        "Papua",
        "Japan",
        "India",
        "Hawaii",
    ),
}
PROCESSES = ("washed", "natural", "honey")  # semi-washed and pulped natural count as "honey"

# feature order of `_profile_features`
PROFILE = (
    "acid",
    "body",
    "sweet",
    "aroma",
    "quality",
    "defects",
    "alt",
    "washed",
    "natural",
    "honey",
    "africa",
    "central_america",
    "south_america",
    "asia_pacific",
    "robusta",
)
AFFINITY: dict[str, dict[str, float]] = {
    "citrus": {"acid": 0.8, "alt": 0.3, "washed": 0.5, "africa": 0.5, "central_america": 0.3},
    "berry": {"aroma": 0.5, "acid": 0.3, "natural": 0.8, "africa": 0.6},
    "stone_fruit": {"sweet": 0.6, "acid": 0.3, "honey": 0.6, "central_america": 0.3},
    "tropical": {"aroma": 0.5, "natural": 0.6, "asia_pacific": 0.2, "quality": 0.3},
    "floral": {"aroma": 0.7, "alt": 0.4, "washed": 0.4, "africa": 0.7},
    "tea": {"acid": 0.3, "washed": 0.5, "africa": 0.3, "alt": 0.2, "body": -0.4},
    "sweet": {"sweet": 0.8, "honey": 0.5, "south_america": 0.3, "central_america": 0.3},
    "chocolate": {"body": 0.7, "south_america": 0.5, "central_america": 0.4, "acid": -0.3},
    "nutty": {"body": 0.4, "south_america": 0.7, "alt": -0.4, "acid": -0.3},
    "spice": {"asia_pacific": 0.7, "body": 0.3, "aroma": 0.2},
    "roasted": {"body": 0.3, "asia_pacific": 0.6, "robusta": 1.5, "quality": -0.4, "alt": -0.3},
    "winey": {"natural": 0.9, "aroma": 0.3, "africa": 0.2, "quality": 0.2},
    "green": {"defects": 0.7, "quality": -0.8, "sweet": -0.3},
}


@dataclass
class Catalogue:
    """The items, row-aligned: `ids[i]`, `scores[i]`, `notes[i]`... describe lot i."""

    ids: list[str]
    meta: list[dict[str, str | float]]
    scores: np.ndarray  # (N, len(SCORE_FIELDS)) raw values, float32
    profile: np.ndarray  # (N, len(PROFILE)) standardised attributes + one-hots (ground truth for users)
    affinity: np.ndarray  # (N, len(FAMILIES)) latent family affinity
    notes: list[list[str]]  # sensory terms, Korean or English
    meta_tokens: list[list[str]]  # origin:/process:/variety:/species:/altitude: tokens
    texts: list[str] = field(default_factory=list)  # what the text encoder reads
    index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index = {item_id: i for i, item_id in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def tokens(self, i: int) -> list[str]:
        """Everything item i puts into the sensory table: its notes and its metadata tokens."""
        return self.notes[i] + self.meta_tokens[i]

    def fingerprint(self) -> str:
        """Changes when ids or notes change: a checkpoint refuses a catalogue it was not trained on."""
        h = hashlib.sha256()
        for item_id, notes in zip(self.ids, self.notes, strict=True):
            h.update(f"{item_id}\x00{'|'.join(notes)}\x01".encode())
        return h.hexdigest()[:16]


def _continent(country: str) -> str:
    for name, keys in CONTINENTS.items():
        if any(k.lower() in country.lower() for k in keys):
            return name
    return "other"


def _process(raw: object) -> str:
    text = str(raw).lower() if isinstance(raw, str) else ""
    if "semi" in text or "honey" in text or "pulped" in text:
        return "honey"
    if "natural" in text or "dry" in text:
        return "natural"
    if "washed" in text or "wet" in text:
        return "washed"
    return "unknown"


def _read(path: Path, columns: dict[str, str], species: str) -> pd.DataFrame:
    raw = pd.read_csv(path)
    df = pd.DataFrame({dst: pd.to_numeric(raw[src], errors="coerce") for src, dst in columns.items()})
    df["defects"] = raw["Category.One.Defects"].fillna(0) + raw["Category.Two.Defects"].fillna(0)
    df["altitude_m"] = pd.to_numeric(raw["altitude_mean_meters"], errors="coerce")
    df["id"] = [f"{species}-{int(n)}" for n in raw.iloc[:, 0]]
    df["species"] = species
    df["country"] = raw["Country.of.Origin"].fillna("Unknown").astype(str).str.replace("?", "'", regex=False)
    df["region"] = raw["Region"].fillna("").astype(str).str.strip().str.lower()
    df["variety"] = raw["Variety"].fillna("unknown").astype(str).str.strip().str.lower()
    df["process"] = [_process(p) for p in raw["Processing.Method"]]
    return df


def _clean_altitude(df: pd.DataFrame) -> pd.Series:
    alt = df["altitude_m"].copy()
    feet = (alt > 4000) & (alt < 13000)
    alt[feet] = alt[feet] / 3.281
    alt[(alt < 100) | (alt > 4000)] = np.nan
    by_country = alt.groupby(df["country"]).transform("median")
    return alt.fillna(by_country).fillna(alt.median())


def _z(x: np.ndarray) -> np.ndarray:
    return (x - np.nanmean(x)) / max(float(np.nanstd(x)), 1e-6)


def _profile_features(df: pd.DataFrame) -> np.ndarray:
    cols = {
        "acid": _z(df["acidity"].to_numpy()),
        "body": _z(df["body"].to_numpy()),
        "sweet": _z(df[["sweetness", "balance", "aftertaste"]].mean(axis=1).to_numpy()),
        "aroma": _z(df[["aroma", "flavor"]].mean(axis=1).to_numpy()),
        "quality": _z(df["total"].to_numpy()),
        "defects": _z(np.log1p(df["defects"].to_numpy())),
        "alt": _z(df["altitude_m"].to_numpy()),
        **{p: (df["process"] == p).to_numpy(float) for p in PROCESSES},
        **{c: (df["continent"] == c).to_numpy(float) for c in CONTINENTS},
        "robusta": (df["species"] == "robusta").to_numpy(float),
    }
    return np.clip(np.stack([cols[name] for name in PROFILE], axis=1), -4, 4).astype(np.float32)


def _affinity(profile: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    weights = np.zeros((len(PROFILE), len(FAMILIES)), dtype=np.float32)
    for j, fam in enumerate(FAMILIES):
        for feat, w in AFFINITY[fam].items():
            weights[PROFILE.index(feat), j] = w
    return (profile @ weights + rng.normal(0, 0.5, (len(profile), len(FAMILIES)))).astype(np.float32)


def _pick_notes(affinity: np.ndarray, quality: np.ndarray, rng: np.random.Generator) -> list[list[str]]:
    notes = []
    for aff, q in zip(affinity, quality, strict=True):
        k = 3 if q >= 0 else 2
        gumbel = aff / 0.5 - np.log(-np.log(rng.uniform(1e-9, 1.0, len(aff))))
        chosen: list[str] = []
        for rank, j in enumerate(np.argsort(-gumbel)[:k]):
            pairs = TERMS[FAMILIES[j]]
            n_terms = 2 if rank == 0 and rng.uniform() < 0.5 else 1
            for t in rng.choice(len(pairs), size=n_terms, replace=False):
                chosen.append(pairs[t][1] if rng.uniform() < 0.4 else pairs[t][0])
        notes.append(chosen)
    return notes


def _meta_tokens(row: dict) -> list[str]:
    band = "high" if row["altitude_m"] >= 1500 else "mid" if row["altitude_m"] >= 1000 else "low"
    country = row["country"].split("(")[0].strip().lower().replace(" ", "_")
    return [
        f"origin:{country}",
        f"process:{row['process']}",
        f"variety:{row['variety']}",
        f"species:{row['species']}",
        f"altitude:{band}",
    ]


def _text(notes: list[str], row: dict) -> str:
    where = ", ".join(p for p in (row["country"], row["region"]) if p)
    return (
        f"{', '.join(notes)}. {where}; {row['process']} process; {row['variety']} {row['species']}; "
        f"{row['altitude_m']:.0f} m."
    )


def load_catalogue(
    coffee_dir: str | Path, include_robusta: bool = True, max_items: int | None = None, seed: int = 0
) -> Catalogue:
    """Read the CQI csv files and generate notes. `max_items` keeps a seeded random subset (tests)."""
    coffee_dir = Path(coffee_dir)
    frames = [_read(coffee_dir / "arabica_data_cleaned.csv", _ARABICA, "arabica")]
    if include_robusta:
        frames.append(_read(coffee_dir / "robusta_data_cleaned.csv", _ROBUSTA, "robusta"))
    df = pd.concat(frames, ignore_index=True)
    df["altitude_m"] = _clean_altitude(df)
    df["continent"] = [_continent(c) for c in df["country"]]
    rng = np.random.default_rng(seed)
    profile = _profile_features(df)  # over the full catalogue, so a subset keeps the same notes
    affinity = _affinity(profile, rng)
    notes = _pick_notes(affinity, profile[:, PROFILE.index("quality")], rng)
    keep = np.arange(len(df))
    if max_items is not None and max_items < len(df):
        keep = np.sort(np.random.default_rng(seed + 1).permutation(len(df))[:max_items])
    records = df.to_dict("records")
    rows = [records[i] for i in keep]
    return Catalogue(
        ids=[r["id"] for r in rows],
        meta=[
            {k: r[k] for k in ("species", "country", "region", "variety", "process", "continent")}
            | {"altitude_m": float(r["altitude_m"]), "total": float(r["total"])}
            for r in rows
        ],
        scores=df.loc[keep, list(SCORE_FIELDS)].to_numpy(np.float32),
        profile=profile[keep],
        affinity=affinity[keep],
        notes=[notes[i] for i in keep],
        meta_tokens=[_meta_tokens(r) for r in rows],
        texts=[_text(notes[i], r) for i, r in zip(keep, rows, strict=True)],
    )
