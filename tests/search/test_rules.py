"""Merchandising rules: pin, boost, bury, hide; matching by query/category; store round trip."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shoprec.data.store import open_store
from shoprec.errors import ShoprecError
from shoprec.search.rules import Rule, apply_rules, delete_rule, load_rules, save_rule

HITS = [("a", 10.0), ("b", 8.0), ("c", 6.0), ("d", 4.0), ("e", 2.0)]


def order(result):
    return [pid for pid, _, _ in result]


def test_no_rules_keep_the_ranking():
    result = apply_rules("tv", None, HITS, [])
    assert result == [(pid, score, "") for pid, score in HITS]


def test_pin_at_a_position_including_missing_products():
    rules = [Rule(id="p1", query="TV", action="pin", product_ids=["d"], position=1),
             Rule(id="p2", query="tv", action="pin", product_ids=["new"], position=3)]
    result = apply_rules("  tv ", None, HITS, rules)
    assert order(result) == ["d", "a", "new", "b", "c", "e"]
    reasons = {pid: reason for pid, _, reason in result}
    assert reasons["d"] == "pinned by rule p1 at 1" and reasons["new"].startswith("pinned by rule p2")
    assert reasons["a"] == ""
    scores = [s for _, s, _ in result]
    assert scores == sorted(scores, reverse=True)  # pinned items take the slot's score
    assert "new" not in order(apply_rules("tv", None, HITS, rules, insert_missing=False))


def test_pin_several_products_keeps_their_order():
    rule = Rule(id="p", query="tv", action="pin", product_ids=["e", "c"], position=2)
    assert order(apply_rules("tv", None, HITS, [rule])) == ["a", "e", "c", "b", "d"]


def test_boost_and_bury_by_weight():
    boost = Rule(id="up", query="tv", action="boost", product_ids=["d"], weight=0.6)
    bury = Rule(id="down", query="tv", action="bury", product_ids=["a"], weight=0.3)
    result = apply_rules("tv", None, HITS, [boost, bury])
    # spread = 8: d -> 4 + 4.8 = 8.8, a -> 10 - 2.4 = 7.6
    assert order(result) == ["d", "b", "a", "c", "e"]
    scores = {pid: s for pid, s, _ in result}
    assert scores["d"] == pytest.approx(8.8) and scores["a"] == pytest.approx(7.6)
    assert {pid: r for pid, _, r in result}["a"] == "buried by rule down"
    # A small weight moves less.
    small = Rule(id="nudge", query="tv", action="boost", product_ids=["d"], weight=0.1)
    assert order(apply_rules("tv", None, HITS, [small])) == ["a", "b", "c", "d", "e"]


def test_hide_removes_and_beats_pin():
    rules = [Rule(id="h", action="hide", product_ids=["b", "x"]),
             Rule(id="p", action="pin", product_ids=["b"], position=1)]
    assert order(apply_rules("anything", None, HITS, rules)) == ["a", "c", "d", "e"]


def test_rules_match_query_and_category_subtree():
    rule = Rule(id="r", query="tv", category="Electronics > TV", action="hide", product_ids=["a"])
    assert "a" not in order(apply_rules("tv", "Electronics > TV > OLED", HITS, [rule]))
    assert "a" not in order(apply_rules("tv", ["Electronics", "TV"], HITS, [rule]))
    assert "a" in order(apply_rules("tv", "Electronics", HITS, [rule]))  # parent category: no
    assert "a" in order(apply_rules("tv stand", "Electronics > TV", HITS, [rule]))  # other query: no
    assert "a" in order(apply_rules("tv", None, HITS, [rule]))
    contains = Rule(id="c", query="tv", match="contains", action="hide", product_ids=["a"])
    assert "a" not in order(apply_rules("TV stand", None, HITS, [contains]))
    category_only = Rule(id="k", category="Garden", action="bury", product_ids=["a"])
    assert order(apply_rules("hose", "Garden > Hoses", HITS, [category_only]))[0] == "b"
    disabled = Rule(id="off", action="hide", product_ids=["a"], enabled=False)
    assert "a" in order(apply_rules("tv", None, HITS, [disabled]))


def test_rule_validation():
    with pytest.raises(ValidationError):
        Rule(id="x", action="promote", product_ids=["a"])
    with pytest.raises(ValidationError):
        Rule(id="x", action="boost", product_ids=["a"], position=2)
    with pytest.raises(ValidationError):
        Rule(id="x", action="pin", product_ids=[])


def test_rules_round_trip_through_the_store(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'shop.db'}")
    try:
        save_rule(store, Rule(id="b", query="tv", action="boost", product_ids=["x"], weight=0.5))
        save_rule(store, Rule(id="a", action="hide", product_ids=["y"]))
        rules = load_rules(store)
        assert [r.id for r in rules] == ["a", "b"] and rules[1].weight == 0.5
        assert delete_rule(store, "a") and [r.id for r in load_rules(store)] == ["b"]
        store.put_record("rule", "broken", {"id": "broken", "action": "explode", "product_ids": ["z"]})
        with pytest.raises(ShoprecError, match="rule/broken"):
            load_rules(store)
    finally:
        store.close()
