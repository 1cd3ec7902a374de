"""The answer cache: stale stamps miss, the size bounds it, 0 disables it."""

from shoprec.result_cache import ResultCache


def test_an_entry_is_served_only_under_its_stamp():
    cache = ResultCache(10)
    cache.put("home:u1", (0, 0), "answer")
    assert cache.get("home:u1", (0, 0)) == "answer"
    assert cache.get("home:u1", (0, 1)) is None  # the user sent an event since
    assert cache.get("home:u1", (0, 0)) is None  # and the stale entry is gone
    assert cache.stats()["hits"] == 1 and cache.stats()["misses"] == 2


def test_least_recently_used_entries_go_first():
    cache = ResultCache(2)
    cache.put("a", 0, 1)
    cache.put("b", 0, 2)
    assert cache.get("a", 0) == 1  # "a" is now the most recent
    cache.put("c", 0, 3)
    assert len(cache) == 2 and cache.get("b", 0) is None and cache.get("a", 0) == 1 and cache.get("c", 0) == 3


def test_size_zero_keeps_nothing():
    cache = ResultCache(0)
    cache.put("a", 0, 1)
    assert cache.get("a", 0) is None and len(cache) == 0
