"""The tantivy lexical index: ranking, typos, phrases, filters, facets, updates, Chinese, bad input."""

from __future__ import annotations

from collections import Counter

import pytest

from hypothesis import HealthCheck, given, settings, strategies as st

from shoprec.data.schemas import Product
from shoprec.search.filters import SearchFilters, price_band
from shoprec.search.lexical import LexicalConfig, LexicalIndex

PRODUCTS = [
    Product(id="earbuds", title="Wireless Earbuds with Charging Case", brand="Sony",
            category="Electronics > Audio > Earbuds", price=79.0, attributes={"color": "black", "bluetooth": "5.3"},
            description="True wireless earbuds, noise cancelling, 30 hours battery."),
    Product(id="headphones", title="Wired Over-Ear Headphones", brand="Sony",
            category="Electronics > Audio > Headphones", price=45.0, attributes={"color": ["black", "white"]}),
    Product(id="speaker", title="Portable Bluetooth Speaker, Waterproof", brand="JBL",
            category="Electronics > Audio > Speakers", price=120.0, attributes={"color": "blue"}),
    Product(id="charger", title="Wireless Charger Pad for Phones and Earbuds", brand="Anker",
            category="Electronics > Accessories", price=19.99, available=False, attributes={"color": "white"}),
    Product(id="hose", title="Garden Hose 50 ft Heavy Duty", brand="Gilmour", category="Home > Garden",
            price=34.5, description="Kink-free garden hose."),
    Product(id="mower", title="Cordless Lawn Mower", brand="Greenworks", category="Home > Garden", price=349.0),
    Product(id="red-shoes", title="Red Running Shoes", brand="Nike", category="Sports > Shoes", price=89.0,
            attributes={"color": "red", "size": "42"}),
    Product(id="shoes-red-lace", title="Shoes for Running, Red", brand="Asics", category="Sports > Shoes",
            price=95.0, attributes={"color": "grey"}),
    Product(id="zh-earbuds", title="无线耳机 蓝牙5.3", brand="华为", category="数码 > 耳机", price=299.0, language="zh"),
    Product(id="zh-kettle", title="电热水壶 不锈钢 1.7升", brand="美的", category="家电 > 厨房", price=129.0, language="zh"),
    Product(id="no-price", title="Gift Card", category="Gifts"),
]


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    return LexicalIndex.build(PRODUCTS, tmp_path_factory.mktemp("lexical") / "lexical")


def ids(hits):
    return [h.id for h in hits]


def test_builds_all_products_and_reopens(index):
    assert len(index) == len(PRODUCTS)
    reopened = LexicalIndex.open(index.path)
    assert len(reopened) == len(PRODUCTS)
    assert ids(reopened.search("garden hose"))[0] == "hose"


def test_exact_words_rank_the_right_product_first(index):
    assert ids(index.search("wireless earbuds"))[0] == "earbuds"
    assert ids(index.search("lawn mower"))[0] == "mower"
    assert ids(index.search("bluetooth speaker"))[0] == "speaker"


def test_plural_and_singular_match_through_stemming(index):
    assert "speaker" in ids(index.search("speakers"))
    assert "earbuds" in ids(index.search("earbud"))


def test_typos_still_find_the_product(index):
    hits = index.search("wireles earbds")
    assert ids(hits)[0] == "earbuds"
    assert {"wireless", "earbuds"} <= set(hits[0].matched_terms)
    assert ids(index.search("garden hsoe"))[0] == "hose"  # a swap is one edit


@pytest.mark.parametrize("query", ["wireles earbds", "garden hsoe", "charing wireles", "runing shoes red", "speakr"])
def test_typo_matches_shared_by_a_querys_hits_equal_each_hits_own(index, query):
    """A query's hits share one memo of which tokens are within a typo word's edit distance
    (`_TypoMatches`): every hit gets the words and marks it gets alone, and the tokens those
    distances match, worked out here directly."""
    from rapidfuzz.distance import OSA

    from shoprec.search.lexical import _TypoMatches

    hits = index.search(query, k=len(PRODUCTS))
    terms = hits[0]._terms
    assert any(t.fuzzy_distance for t in terms)
    shared = _TypoMatches()
    for hit in hits:
        stored = index.stored(hit.id)
        alone = index._explain(terms, stored)
        assert index._explain(terms, stored, shared) == alone
        assert hit.matched_terms == tuple(alone[0])
        stems = {t.stem: t.word for t in terms if not t.fuzzy_distance}
        expected = set()
        for name, tokens in stored["tokens"].items():
            for token, stem in zip(tokens.split(), stored["stems"][name].split()):
                if stem in stems:
                    expected.add(stems[stem])
                elif any(abs(len(t.word) - len(token)) <= t.fuzzy_distance  # tokens of about the word's length
                         and min(OSA.distance(t.word, token), OSA.distance(t.word, stem)) <= t.fuzzy_distance
                         for t in terms if t.fuzzy_distance):
                    expected.add(token)
        assert set(alone[0]) == expected, hit.id


def test_fuzzy_off_and_known_words_are_not_fuzzed(index):
    assert index.search("earbds", fuzzy=False) == []
    # "wired" is a catalog word: it must not fuzzy-match "wire"-like words such as "wireless".
    assert ids(index.search("wired")) == ["headphones"]


def test_phrase_match_beats_scattered_words(index, tmp_path):
    # Same words, same title length: only the adjacency of the words tells them apart.
    hits = index.search("red running shoes")
    assert ids(hits)[:2] == ["red-shoes", "shoes-red-lace"]
    assert hits[0].score > hits[1].score
    shoes = [Product(id=p.id, title=p.title) for p in PRODUCTS if p.id in ("red-shoes", "shoes-red-lace")]
    no_phrase = LexicalIndex.build(shoes, tmp_path / "a", LexicalConfig(phrase_boost=0.0)).search("red running shoes")
    assert no_phrase[0].score == pytest.approx(no_phrase[1].score)
    with_phrase = LexicalIndex.build(shoes, tmp_path / "b").search("red running shoes")
    assert ids(with_phrase)[0] == "red-shoes" and with_phrase[0].score > with_phrase[1].score


def test_title_outranks_description_and_brand_counts(index):
    # "noise" is only in the earbuds' description; "sony" is a brand.
    assert ids(index.search("noise")) == ["earbuds"]
    assert set(ids(index.search("sony"))) == {"earbuds", "headphones"}


def test_matched_terms_and_highlights(index):
    hit = index.search("wireless earbuds")[0]
    assert set(hit.matched_terms) == {"wireless", "earbuds"}
    assert hit.highlights["title"] == "<mark>Wireless</mark> <mark>Earbuds</mark> with Charging Case"
    assert "<mark>Earbuds</mark>" in hit.highlights["category"]
    assert "title" not in index.search("noise")[0].highlights


def test_highlights_escape_html(tmp_path):
    idx = LexicalIndex.build([Product(id="x", title="Cable 3<5 & adapter")], tmp_path / "lex")
    hit = idx.search("adapter")[0]
    assert hit.highlights["title"] == "Cable 3&lt;5 &amp; <mark>adapter</mark>"


def test_chinese_query_matches_chinese_title(index):
    hits = index.search("无线蓝牙耳机")
    assert ids(hits)[0] == "zh-earbuds"
    assert {"无线", "蓝牙", "耳机"} <= set(hits[0].matched_terms)
    assert "<mark>蓝牙</mark>" in hits[0].highlights["title"]
    assert ids(index.search("不锈钢水壶"))[0] == "zh-kettle"


@pytest.mark.parametrize("filters, expected", [
    (SearchFilters(category="Electronics > Audio"), {"earbuds", "headphones", "speaker"}),
    (SearchFilters(category="electronics"), {"earbuds", "headphones", "speaker", "charger"}),
    (SearchFilters(brand=["sony", "JBL"]), {"earbuds", "headphones", "speaker"}),
    (SearchFilters(price_min=40, price_max=100), {"earbuds", "headphones", "red-shoes", "shoes-red-lace"}),
    (SearchFilters(price_max=20), {"charger"}),
    (SearchFilters(available=False), {"charger"}),
    (SearchFilters(attributes={"color": "white"}), {"headphones", "charger"}),
    (SearchFilters(attributes={"color": ["red", "blue"]}), {"red-shoes", "speaker"}),
    (SearchFilters(category="Electronics", attributes={"color": "black"}, price_max=50), {"headphones"}),
])
def test_each_filter_kind_browses_exactly_the_matching_products(index, filters, expected):
    assert set(ids(index.search("", k=100, filters=filters))) == expected
    # The same filter holds when checked product by product.
    assert {p.id for p in PRODUCTS if filters.matches(p)} == expected


def test_filters_combine_with_text_and_keep_scores(index):
    plain = {h.id: h.score for h in index.search("wireless")}
    filtered = index.search("wireless", filters={"available": True})
    assert ids(filtered) == ["earbuds"]
    assert filtered[0].score == pytest.approx(plain["earbuds"])


def test_facet_counts_equal_a_brute_force_count(index):
    facets = index.facets("", fields=("category", "category_prefix", "brand", "price_band", "available"))
    assert facets["category"] == dict(Counter(" > ".join(p.category) for p in PRODUCTS if p.category))
    prefixes = Counter(" > ".join(p.category[:i]) for p in PRODUCTS for i in range(1, len(p.category) + 1))
    assert facets["category_prefix"] == dict(prefixes)
    assert facets["brand"] == dict(Counter(p.brand for p in PRODUCTS if p.brand))
    assert facets["price_band"] == dict(Counter(price_band(p.price) for p in PRODUCTS if p.price is not None))
    assert facets["available"] == dict(Counter(str(p.available).lower() for p in PRODUCTS))


def test_facets_follow_the_query_and_filters(index):
    matching = set(ids(index.search("wireless", k=100)))
    facets = index.facets("wireless", filters=SearchFilters(category="Electronics"), fields=("brand",))
    expected = Counter(p.brand for p in PRODUCTS if p.id in matching and p.category[0] == "Electronics")
    assert facets["brand"] == dict(expected)
    assert sum(facets["brand"].values()) == 2


def test_upsert_and_delete_are_visible_immediately(tmp_path):
    idx = LexicalIndex.build(PRODUCTS[:3], tmp_path / "lex")
    assert idx.search("espresso") == []
    idx.upsert([Product(id="espresso", title="Espresso Machine", brand="DeLonghi", price=199.0)])
    assert ids(idx.search("espresso")) == ["espresso"]
    # Replacing a product changes what it matches, without duplicates.
    idx.upsert([Product(id="espresso", title="Coffee Grinder", brand="DeLonghi", price=59.0)])
    assert idx.search("espresso") == [] and ids(idx.search("grinder")) == ["espresso"]
    assert len(idx) == 4
    idx.delete(["espresso", "speaker"])
    assert idx.search("grinder") == [] and "speaker" not in ids(idx.search("bluetooth speaker"))
    assert len(idx) == 2
    assert len(LexicalIndex.open(idx.path)) == 2


def test_a_write_waits_for_another_process_writing_the_same_index(tmp_path):
    """The serving processes share a version's index and apply the same catalog changes, often at
    once (each replays the change journal when it starts): a write waits for the other's lock."""
    import subprocess
    import sys
    import time

    idx = LexicalIndex.build(PRODUCTS[:3], tmp_path / "lex")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from shoprec.search.lexical import LexicalIndex; "
         "w = LexicalIndex.open(sys.argv[1])._index.writer(15_000_000, 1); print('holding', flush=True); time.sleep(1.0)",
         str(idx.path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        t0 = time.monotonic()
        assert idx.upsert([Product(id="espresso", title="Espresso Machine", brand="DeLonghi", price=199.0)]) == 1
        assert time.monotonic() - t0 > 0.2  # it waited for the other process's writer
    finally:
        holder.wait(30)
    assert ids(idx.search("espresso")) == ["espresso"]


@pytest.mark.parametrize("query", ["AND OR (", '"unterminated', 'title:foo^3 [a TO b] -x +y ~2 *', "😀🎧",
                                   "x" * 10_000, "wireless " * 2_000, "\x00\n\t", "NOT", "()[]{}:\\/"])
def test_weird_input_never_raises(index, query):
    hits = index.search(query)
    assert isinstance(hits, list)
    assert isinstance(index.facets(query), dict)


def test_query_syntax_is_plain_words(index):
    assert ids(index.search("hose AND (garden"))[0] == "hose"
    assert ids(index.search('"garden hose"'))[0] == "hose"


def test_empty_query_browses_and_k_limits(index):
    assert len(index.search("", k=100)) == len(PRODUCTS)
    assert len(index.search("", k=3)) == 3
    assert index.search("garden", k=0) == []


def test_field_boosts_are_configurable(tmp_path):
    products = [Product(id="in-title", title="Hammer", description="tool"),
                Product(id="in-description", title="Tool set", description="hammer hammer hammer")]
    default = LexicalIndex.build(products, tmp_path / "a")
    assert ids(default.search("hammer"))[0] == "in-title"
    flipped = LexicalIndex.build(products, tmp_path / "b", LexicalConfig(title_boost=0.1, description_boost=5.0))
    assert ids(flipped.search("hammer"))[0] == "in-description"
    assert LexicalIndex.open(tmp_path / "b").config.description_boost == 5.0


def test_build_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("not an index")
    with pytest.raises(Exception, match="not empty"):
        LexicalIndex.build(PRODUCTS, tmp_path / "other")
    assert (tmp_path / "other" / "keep.txt").exists()


def test_highlights_apostrophes_and_long_description_snippets(tmp_path):
    long_text = "filler words here " * 30 + "stainless kettle inside" + " more filler" * 30
    idx = LexicalIndex.build([Product(id="k", title="Men's Kettle", description=long_text)], tmp_path / "lex")
    hit = idx.search("mens kettle")[0]
    assert hit.highlights["title"] == "<mark>Men&#x27;s</mark> <mark>Kettle</mark>"  # quotes escaped too
    snippet = hit.highlights["description"]
    assert "stainless <mark>kettle</mark> inside" in snippet
    assert snippet.startswith("…") and snippet.endswith("…")
    assert len(snippet) < len(long_text) / 2


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(max_size=200))
def test_any_unicode_query_is_answered(index, query):
    hits = index.search(query, k=5, filters={"available": True})
    assert len(hits) <= 5 and all(h.id for h in hits)
