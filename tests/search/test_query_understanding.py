"""Spelling correction, synonyms, suggestions and the zero-result log."""

from __future__ import annotations

import numpy as np
import pytest

from shoprec.errors import ShoprecError
from shoprec.search.query_understanding import SpellingCorrector, Suggester, Synonyms, ZeroResultLog

CATALOG = [
    "Wireless Earbuds with Charging Case", "Wireless Charger Pad", "Bluetooth Speaker Waterproof",
    "Wired Headphones", "Garden Hose 50 ft", "Cordless Lawn Mower", "Running Shoes", "Stainless Steel Kettle 1.7L",
    "无线耳机 蓝牙5.3", "RX580 Graphics Card",
]


@pytest.fixture()
def corrector():
    return SpellingCorrector().fit(CATALOG, query_log=[("wireless earbuds", 40), ("hoes", 1), ("airpods", 12)])


def test_spelling_corrects_typos_from_the_catalog(corrector):
    assert corrector.correct("wireles earbds") == "wireless earbuds"
    assert corrector.correct("garden hsoe") == "garden hose"  # transposition = 1 edit
    assert corrector.correct("bluetoth speakr") == "bluetooth speaker"


def test_spelling_keeps_known_words_numbers_chinese_and_punctuation(corrector):
    assert corrector.correct("Wired Headphones") == "Wired Headphones"
    assert corrector.correct("kettle 1.7 l") == "kettle 1.7 l"
    assert corrector.correct("无线耳机") == "无线耳机"
    assert corrector.correct("rx580") == "rx580"
    assert corrector.correct("garden hsoe, 50 ft!") == "garden hose, 50 ft!"
    assert corrector.correct("") == ""


def test_spelling_splits_run_together_words(corrector):
    assert corrector.correct("gardenhose 50 ft") == "garden hose 50 ft"
    assert corrector.correct("wirelesscharger") == "wireless charger"
    assert corrector.correct_word("hosegarden") == "hose garden"


def test_spelling_distance_limits(corrector):
    # 4-7 letters: one edit at most; 8+: two.
    assert corrector.correct_word("mowerss") == "mowerss"  # 2 edits from "mower", too short for 2
    assert corrector.correct_word("wirelessss") == "wireless"  # 2 edits, long word
    assert corrector.correct_word("xyzzy") == "xyzzy"  # nothing close: unchanged
    assert corrector.correct_word("hse") == "hse"  # too short to correct


def test_spelling_prefers_frequent_words():
    texts = ["cable"] * 20 + ["table"]
    assert SpellingCorrector().fit(texts).correct_word("xable") == "cable"
    assert SpellingCorrector().fit(texts, query_log=[("table", 100)]).correct_word("xable") == "table"


def test_rare_log_words_are_not_known_but_frequent_ones_are(corrector):
    assert not corrector.is_known("hoes")  # searched once: likely a typo of "hose"/"shoes"
    assert corrector.is_known("airpods")  # searched often: a real word missing from the catalog
    assert corrector.correct("airpods") == "airpods"


def test_spelling_save_load(tmp_path, corrector):
    corrector.save(tmp_path / "spelling.json")
    loaded = SpellingCorrector.load(tmp_path / "spelling.json")
    assert loaded.correct("wireles earbds") == "wireless earbuds"
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ShoprecError, match="line 1"):
        SpellingCorrector.load(tmp_path / "bad.json")


def test_synonyms_from_file_equivalent_and_one_way(tmp_path):
    path = tmp_path / "synonyms.txt"
    path.write_text("# comment\ntv, television\nsneakers, running shoes, trainers\niphone => smartphone\n\n")
    syn = Synonyms.from_file(path)
    assert syn.expand(["tv"]) == ["tv", "television"]
    assert syn.expand(["television", "stand"]) == ["television", "stand", "tv"]
    assert syn.expand(["iphone", "case"]) == ["iphone", "case", "smartphone"]
    assert syn.expand(["smartphone"]) == ["smartphone"]  # one-way
    # Multi-word phrases match as a whole.
    assert set(syn.expand(["running", "shoes"])) == {"running", "shoes", "sneakers", "trainers"}
    assert syn.expand(["running"]) == ["running"]
    assert syn.expand_query("TV Stand") == "tv stand television"


def test_synonym_file_errors_name_the_line(tmp_path):
    path = tmp_path / "synonyms.txt"
    path.write_text("tv, television\nlonely\n")
    with pytest.raises(ShoprecError, match=r"synonyms.txt: line 2"):
        Synonyms.from_file(path)


def test_synonyms_mined_from_embeddings():
    terms = ["sofa", "couch", "lamp", "light", "hose"]
    vectors = np.array([[1, 0, 0], [0.99, 0.1, 0], [0, 1, 0], [0, 0.95, 0.3], [0, 0, 1]], np.float32)
    syn = Synonyms()
    added = syn.mine_from_embeddings(terms, vectors, threshold=0.9)
    assert added == 4  # sofa<->couch, lamp<->light
    assert syn.expand(["sofa"]) == ["sofa", "couch"]
    assert syn.expand(["light"]) == ["light", "lamp"]
    assert syn.expand(["hose"]) == ["hose"]
    with pytest.raises(ShoprecError):
        syn.mine_from_embeddings(terms, vectors[:3], threshold=0.9)


def test_synonyms_mined_from_sessions_and_saved(tmp_path):
    pairs = [("couch", "sofa")] * 3 + [("lamp", "hose")]
    syn = Synonyms()
    assert syn.mine_from_sessions(pairs, min_count=2) == 1
    assert syn.expand(["couch"]) == ["couch", "sofa"]
    assert syn.expand(["sofa"]) == ["sofa"]
    assert syn.expand(["lamp"]) == ["lamp"]  # seen once only
    syn.save(tmp_path / "syn.json")
    assert Synonyms.load(tmp_path / "syn.json").expand(["couch"]) == ["couch", "sofa"]


QUERY_LOG = [("wireless earbuds", 50), ("wireless charger", 80), ("wired headphones", 10), ("garden hose", 5),
             ("无线耳机", 30), ("Wireless Earbuds", 5)]
CATALOG_TERMS = ["wireless mouse", "wireless mouse", "wireless keyboard", "garden gloves", "无线鼠标", "earbuds case"]


@pytest.fixture()
def suggester():
    return Suggester().fit(QUERY_LOG, CATALOG_TERMS)


def test_suggestions_rank_log_popularity_then_catalog(suggester):
    assert suggester.suggest("wire") == ["wireless charger", "wireless earbuds", "wired headphones",
                                         "wireless mouse", "wireless keyboard"]
    assert suggester.suggest("wireless e") == ["wireless earbuds"]
    assert suggester.suggest("wire", k=2) == ["wireless charger", "wireless earbuds"]


def test_suggestions_match_word_prefixes_inside_queries(suggester):
    # Log queries (even word-inside matches) come before catalog phrases.
    assert suggester.suggest("earb") == ["wireless earbuds", "earbuds case"]
    # Whole-query matches come before word-inside matches within the query log.
    assert suggester.suggest("hose") == ["garden hose"]


def test_suggestions_for_chinese_prefixes(suggester):
    assert suggester.suggest("无线") == ["无线耳机", "无线鼠标"]
    assert suggester.suggest("耳机") == ["无线耳机"]


def test_suggestions_edge_cases_and_hot_queries(suggester, tmp_path):
    assert suggester.suggest("") == []
    assert suggester.suggest("zzz") == []
    assert suggester.hot_queries(2) == [("wireless charger", 80), ("wireless earbuds", 55)]
    suggester.save(tmp_path / "suggest.json")
    loaded = Suggester.load(tmp_path / "suggest.json")
    assert loaded.suggest("wire") == suggester.suggest("wire")
    assert loaded.hot_queries(3) == suggester.hot_queries(3)


def test_zero_result_log_counts_and_persists(tmp_path):
    path = tmp_path / "zero.jsonl"
    log = ZeroResultLog(path)
    for q in ["flux capacitor", "Flux  Capacitor", "unobtainium", ""]:
        log.record(q)
    assert log.top(5) == [("flux capacitor", 2), ("unobtainium", 1)]
    assert len(path.read_text().splitlines()) == 3  # append-only, one line per occurrence
    assert ZeroResultLog(path).counts() == {"flux capacitor": 2, "unobtainium": 1}
    path.write_text(path.read_text() + "garbage\n")
    with pytest.raises(ShoprecError, match="line 4"):
        ZeroResultLog(path)


def test_suggestions_equal_a_brute_force_ranking_on_a_larger_log():
    rng = np.random.default_rng(0)
    words = ["wire", "wireless", "wired", "wall", "water", "washer", "hose", "heater", "drill", "door"]
    log = [(" ".join(rng.choice(words, size=rng.integers(1, 4))), int(rng.integers(1, 1000))) for _ in range(400)]
    suggester = Suggester().fit(log)
    totals: dict[str, int] = {}
    for query, count in log:
        totals[query] = totals.get(query, 0) + count
    ranked = sorted(totals, key=lambda q: (-totals[q], q))
    for prefix in ["w", "wa", "wire", "h", "do", "dr"]:
        whole = [q for q in ranked if q.startswith(prefix)]
        inside = [q for q in ranked if not q.startswith(prefix) and any(w.startswith(prefix) for w in q.split())]
        assert suggester.suggest(prefix, k=7) == (whole + inside)[:7]
