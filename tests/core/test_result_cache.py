"""The answer cache: stale stamps miss, the size bounds it, 0 disables it."""

import pytest

from shoprec.result_cache import ResultCache


def test_an_entry_is_served_only_under_its_stamp():
    cache = ResultCache(10)
    cache.put("home:u1", (0, 0), "answer")
    assert cache.get("home:u1", (0, 0)) == "answer"
    assert cache.get("home:u1", (0, 1)) is None  # the user sent an event since
    assert cache.stats()["hits"] == 1 and cache.stats()["misses"] == 1
    # The answer from before the event, for a caller that may serve it a moment longer, under its own terms.
    assert cache.earlier("home:u1", lambda stamp: stamp[0] == 0) == "answer"
    assert cache.earlier("home:u1", lambda stamp: stamp[0] == 1) is None  # e.g. computed before a catalog change
    cache.put("home:u1", (0, 1), "new answer")
    assert cache.get("home:u1", (0, 1)) == "new answer" and cache.earlier("home:u1", lambda stamp: True) == "new answer"


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


def test_processes_share_answers_under_equal_stamps_and_scope(tmp_path):
    """Two caches on one file, as two worker processes: what one computed, the other reuses."""
    from shoprec.result_cache import SharedAnswers

    path = tmp_path / "answers.sqlite"
    worker_a = ResultCache(10, SharedAnswers(path), scope="v1")
    worker_b = ResultCache(10, SharedAnswers(path), scope="v1")
    key = ("recommend", "home", "pid-1", None, (), 20, ())
    worker_a.put(key, (7, 42), b'{"hits": []}')
    assert worker_b.get(key, (7, 42)) == b'{"hits": []}'
    assert worker_b.stats()["shared_hits"] == 1 and worker_b.stats()["hits"] == 1
    assert worker_b.get(key, (7, 42)) == b'{"hits": []}' and worker_b.stats()["shared_hits"] == 1  # now kept locally
    assert worker_b.get(key, (7, 43)) is None  # another state of the user: not this answer
    # The answer from before a state, found in the file by a process that never had it.
    assert ResultCache(10, SharedAnswers(path), scope="v1").earlier(key, lambda stamp: stamp == (7, 42)) == b'{"hits": []}'
    assert ResultCache(10, SharedAnswers(path), scope="v1").earlier(key, lambda stamp: stamp[0] == 8) is None
    other_version = ResultCache(10, SharedAnswers(path), scope="v2")
    assert other_version.get(key, (7, 42)) is None

    # A version's warm-up goes to the kept table, out of the answers' turnover, and is read the same way.
    other_version.keeping = True
    other_version.put(key, (7, 42), b'{"hits": [1]}')
    assert SharedAnswers(path).get("v2", key, (7, 42)) is None
    assert ResultCache(10, SharedAnswers(path), scope="v2").get(key, (7, 42)) == b'{"hits": [1]}'


def test_shared_answers_keep_the_newest_rows_and_never_wait_for_a_lock(tmp_path):
    import sqlite3

    from shoprec.result_cache import SharedAnswers

    shared = SharedAnswers(tmp_path / "answers.sqlite", size=100)
    for i in range(400):
        shared.put("v1", i, 0, b"x" * 5000)
    shared.put("v1", 5, 0, b"again")  # rewritten: newest again
    database = tmp_path / "answers.sqlite"
    # Writes neither prune nor checkpoint: every row is still there, all of it in the WAL.
    assert len(shared) == 400 and database.stat().st_size < 100_000

    assert shared.maintain(batch=30) == 300  # the 300 longest unwritten, in batches of 30
    assert len(shared) == 100 and database.stat().st_size > 100 * 5000  # checkpointed into the file
    assert shared.get("v1", 399, 0) == b"x" * 5000 and shared.get("v1", 5, 0) == b"again"
    assert shared.get("v1", 300, 0) is None and shared.get("v1", 0, 0) is None
    assert shared.maintain() == 0

    # Kept rows (a new version's warm-up, read minutes later) have their own newest `size`: the
    # answers' turnover does not drop them.
    shared.put("v2", "frequent", 0, b"candidates", table="kept")
    assert shared.get("v2", "frequent", 0) is None  # not an answer
    for i in range(400, 600):
        shared.put("v1", i, 0, b"x")
    assert shared.maintain() == 200
    assert shared.get("v2", "frequent", 0, table="kept") == b"candidates"
    for i in range(150):
        shared.put("v2", i, 0, b"z", table="kept")
    assert shared.maintain() == 51 and shared.get("v2", "frequent", 0, table="kept") is None
    with pytest.raises(ValueError):
        shared.get("v1", 5, 0, table="answers; DROP TABLE answers")
    shared.put("v1", 5, 0, b"again")

    blocker = sqlite3.connect(tmp_path / "answers.sqlite", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    try:
        shared.put("v1", "late", 0, b"y")  # skipped, not raised and not waited for
        assert shared.skipped == 1 and shared.get("v1", 5, 0) == b"again"  # reads go on
    finally:
        blocker.execute("ROLLBACK")
    shared.put("v1", "late", 0, b"y")
    assert shared.get("v1", "late", 0) == b"y"


def test_shared_answers_tell_which_versions_the_other_live_processes_serve(tmp_path):
    """`announce` records this process's version; `served_versions` lists the other live
    processes' versions (the feed keeper reads it) and drops the records of ended ones."""
    import os
    import sqlite3
    import subprocess
    import sys

    from shoprec.result_cache import SharedAnswers

    shared = SharedAnswers(tmp_path / "answers.sqlite")
    shared.announce("v1")
    assert shared.served_versions() == set()  # this process's own record is not another's
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    try:
        database = sqlite3.connect(tmp_path / "answers.sqlite", isolation_level=None)
        database.executemany("INSERT INTO serving (process, version) VALUES (?, ?)",
                             [(worker.pid, "v2"), (gone.pid, "v0")])
        assert shared.served_versions() == {"v2"}
        assert shared.serving_processes() == {os.getpid(): "v1", worker.pid: "v2"}  # readiness counts these
        assert {row[0] for row in database.execute("SELECT process FROM serving")} == {os.getpid(), worker.pid}
        shared.announce("v2")  # a swap replaces the process's record
        assert database.execute("SELECT version FROM serving WHERE process = ?", (os.getpid(),)).fetchone() == ("v2",)
    finally:
        worker.kill()
        worker.wait()
    assert shared.served_versions() == set()


def test_workers_can_tell_whether_the_feed_keeper_serves_a_version_yet(tmp_path):
    """The keeper records itself (`announce_keeper`); workers wait for `keeper_serves(version)`
    before they load a new version: None when no keeper is alive, so they never wait for one."""
    import subprocess
    import sys

    from shoprec.result_cache import SharedAnswers

    shared = SharedAnswers(tmp_path / "answers.sqlite")
    shared.announce("v1")
    assert shared.keeper_serves("v1") is None and shared.live_keepers() == []  # no keeper on this machine
    script = ("import sys, time; from pathlib import Path; from shoprec.result_cache import SharedAnswers; "
              "s = SharedAnswers(Path(sys.argv[1])); s.announce_keeper(); s.announce('v1'); print('v1', flush=True); "
              "sys.stdin.readline(); s.announce('v2'); print('v2', flush=True); time.sleep(60)")
    keeper = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "answers.sqlite")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert keeper.stdout.readline().strip() == "v1"
        assert shared.keeper_serves("v1") is True and shared.live_keepers() == [keeper.pid]
        assert shared.keeper_serves("v2") is False  # the keeper has not loaded v2 yet: wait
        keeper.stdin.write("go\n")
        keeper.stdin.flush()
        assert keeper.stdout.readline().strip() == "v2"
        assert shared.keeper_serves("v2") is True
    finally:
        keeper.kill()
        keeper.wait()
    assert shared.keeper_serves("v2") is None and shared.live_keepers() == []  # the keeper is gone: nobody to wait for
