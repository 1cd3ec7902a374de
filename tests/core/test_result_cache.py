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


def test_drain_drops_the_oldest_entries_a_few_at_a_time():
    from shoprec.result_cache import ResultCache

    cache = ResultCache(10)
    for i in range(5):
        cache.put(i, 0, f"v{i}")
    assert cache.drain(2) == 3 and cache.get(0, 0) is None and cache.get(1, 0) is None and cache.get(2, 0) == "v2"
    assert cache.drain(10) == 0 and len(cache) == 0
