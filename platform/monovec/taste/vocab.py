"""The sensory vocabulary: flavour-wheel families, each with English and Korean terms.

Why families: the SCA flavour wheel groups descriptors (citrus, berry, floral, chocolate, nutty...), and
both the notes generator (data.py) and the simulated users (simulate.py) reason in families, while the
model only ever sees the surface terms - in either language - through the dynamic embedding table.
`TREND_TERMS` are words that the stream starts using only part-way through (simulate.py): the table must
give them rows online, without a restart.
"""

from __future__ import annotations

FAMILIES: tuple[str, ...] = (
    "citrus",
    "berry",
    "stone_fruit",
    "tropical",
    "floral",
    "tea",
    "sweet",
    "chocolate",
    "nutty",
    "spice",
    "roasted",
    "winey",
    "green",
)

# family -> (english, korean) term pairs; generated notes pick a language per term.
TERMS: dict[str, tuple[tuple[str, str], ...]] = {
    "citrus": (("lemon", "레몬"), ("orange", "오렌지"), ("grapefruit", "자몽"), ("lime", "라임")),
    "berry": (
        ("blueberry", "블루베리"),
        ("strawberry", "딸기"),
        ("raspberry", "라즈베리"),
        ("blackcurrant", "블랙커런트"),
    ),
    "stone_fruit": (("peach", "복숭아"), ("apricot", "살구"), ("cherry", "체리"), ("plum", "자두")),
    "tropical": (
        ("mango", "망고"),
        ("pineapple", "파인애플"),
        ("passion fruit", "패션후르츠"),
        ("papaya", "파파야"),
    ),
    "floral": (
        ("jasmine", "자스민"),
        ("rose", "장미"),
        ("bergamot", "베르가못"),
        ("orange blossom", "오렌지꽃"),
    ),
    "tea": (
        ("black tea", "홍차"),
        ("earl grey", "얼그레이"),
        ("green tea", "녹차"),
        ("chamomile", "캐모마일"),
    ),
    "sweet": (("caramel", "캐러멜"), ("honey", "꿀"), ("brown sugar", "흑설탕"), ("vanilla", "바닐라")),
    "chocolate": (
        ("dark chocolate", "다크초콜릿"),
        ("cocoa", "코코아"),
        ("milk chocolate", "밀크초콜릿"),
        ("fudge", "퍼지"),
    ),
    "nutty": (("almond", "아몬드"), ("hazelnut", "헤이즐넛"), ("peanut", "땅콩"), ("walnut", "호두")),
    "spice": (("cinnamon", "시나몬"), ("clove", "정향"), ("black pepper", "후추"), ("cardamom", "카다멈")),
    "roasted": (("tobacco", "담배"), ("smoky", "스모키"), ("cedar", "삼나무"), ("earthy", "흙내음")),
    "winey": (("red wine", "레드와인"), ("rum", "럼"), ("fermented", "발효"), ("whiskey", "위스키")),
    "green": (("grassy", "풀내음"), ("herbal", "허브"), ("papery", "종이"), ("astringent", "떫은맛")),
}

# New words the stream adopts mid-way (a seasonal menu, a trend): never in the catalogue's notes.
TREND_TERMS: dict[str, tuple[tuple[str, str], ...]] = {
    "citrus": (("yuzu", "유자"),),
    "berry": (("hibiscus", "히비스커스"),),
    "stone_fruit": (("fig", "무화과"),),
    "tropical": (("lychee", "리치"),),
    "floral": (("lavender", "라벤더"),),
    "tea": (("oolong", "우롱차"),),
    "sweet": (("maple syrup", "메이플시럽"),),
    "chocolate": (("cacao nib", "카카오닙스"),),
    "nutty": (("macadamia", "마카다미아"),),
    "spice": (("ginger", "생강"),),
    "roasted": (("toasted rice", "누룽지"),),
    "winey": (("makgeolli", "막걸리"),),
    "green": (("cucumber", "오이"),),
}

TERM_FAMILY: dict[str, str] = {
    term: family
    for table in (TERMS, TREND_TERMS)
    for family, pairs in table.items()
    for pair in pairs
    for term in pair
}


def all_terms(include_trend: bool = False) -> list[str]:
    """Every surface term (English and Korean), in a fixed order."""
    tables = (TERMS, TREND_TERMS) if include_trend else (TERMS,)
    return [term for table in tables for f in FAMILIES for pair in table[f] for term in pair]
