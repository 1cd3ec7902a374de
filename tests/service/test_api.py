"""The API over a real engine serving a built artifact version of a tiny shop."""

from __future__ import annotations

import os
import threading
import time

import pytest

PUBLIC = {"X-API-Key": "test-public"}
ADMIN = {"X-API-Key": "test-admin"}


@pytest.fixture(scope="module")
def api(served_engine):
    from fastapi.testclient import TestClient

    from shoprec.service.app import create_app

    settings, engine = served_engine
    return TestClient(create_app(settings, engine=engine, watch_interval_s=0), raise_server_exceptions=False)


def test_ready_and_version_metric(api, served_engine):
    version = served_engine[1].version
    # serving_processes: null where the engine shares no answers file with other processes
    assert api.get("/readyz").json() == {"ready": True, "version": version, "detail": "", "worker": os.getpid(),
                                         "serving_processes": None}
    assert f'shoprec_artifact_info{{version="{version}"}} 1.0' in api.get("/metrics").text


def test_a_serving_process_opens_its_engine_shortens_the_interpreter_switch_and_keeps_shared_answers(served_engine):
    """Threads loading or following in the background hold the interpreter lock for at most the
    configured interval while requests wait on the event loop (Python's default: 5 ms). The answers
    shared with other workers are trimmed to their size by a housekeeping thread, not by requests."""
    import sys

    from fastapi.testclient import TestClient

    from shoprec.service.app import create_app

    settings = served_engine[0].model_copy(update={"service": served_engine[0].service.model_copy(
        update={"switch_interval_ms": 0.7, "shared_answers_size": 3})})
    before = sys.getswitchinterval()
    try:
        with TestClient(create_app(settings, watch_interval_s=0)) as client:  # the lifespan opens the engine
            assert client.get("/readyz").json()["version"] == served_engine[1].version
            assert sys.getswitchinterval() == pytest.approx(0.0007)
            shared = client.app.state.engine.shared_answers
            for query in ("shoes", "earbuds", "kitchen", "model", "red", "running"):
                assert client.get("/v1/search", params={"q": query}, headers=PUBLIC).status_code == 200
            written = len(shared)
            deadline = time.monotonic() + 5
            while len(shared) > 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert written >= 6 and len(shared) == 3
    finally:
        sys.setswitchinterval(before)


def test_search_returns_products_reasons_and_facets(api):
    answer = api.get("/v1/search", params={"q": "running shoes", "k": 5}, headers=PUBLIC)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["hits"] and len(body["hits"]) <= 5 and body["total"] >= len(body["hits"])
    top = body["hits"][0]
    assert top["product"]["category"][-1] == "Shoes" and top["product"]["title"]
    assert isinstance(top["score"], float)
    assert body["facets"], "facets are returned with search results"


def test_search_filters_restrict_results(api):
    params = {"q": "earbuds headphones", "brand": "Sonik", "price_max": 100, "attr.color": "red", "k": 20}
    body = api.get("/v1/search", params=params, headers=PUBLIC).json()
    assert body["hits"]
    for hit in body["hits"]:
        product = hit["product"]
        assert product["brand"] == "Sonik" and product["price"] <= 100 and product["attributes"]["color"] == "red"
    category = api.get("/v1/search", params={"q": "model", "category": "Home > Kitchen", "k": 50}, headers=PUBLIC).json()
    assert category["hits"] and all(h["product"]["category"][:2] == ["Home", "Kitchen"] for h in category["hits"])


def test_search_pages_do_not_overlap(api):
    first = api.get("/v1/search", params={"q": "model", "page": 1, "size": 5}, headers=PUBLIC).json()
    second = api.get("/v1/search", params={"q": "model", "page": 2, "size": 5}, headers=PUBLIC).json()
    assert second["offset"] == 5 and first["hits"] and second["hits"]
    assert not {h["id"] for h in first["hits"]} & {h["id"] for h in second["hits"]}


def test_recommend_scenarios(api):
    home = api.get("/v1/recommend/home", params={"user": "shopper-3", "k": 8, "device": "mobile"}, headers=PUBLIC)
    assert home.status_code == 200, home.text
    hits = home.json()["hits"]
    assert 0 < len(hits) <= 8 and all(h["reason"] for h in hits)
    similar = api.get("/v1/items/p000/similar", params={"k": 5}, headers=PUBLIC).json()
    assert similar["hits"] and "p000" not in [h["id"] for h in similar["hits"]]
    cart = api.get("/v1/recommend/cart", params={"cart": "p000,p101", "k": 5}, headers=PUBLIC)
    assert cart.status_code == 200 and cart.json()["scenario"] == "cart"
    unknown = api.get("/v1/items/no-such-item/similar", headers=PUBLIC)
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"


def test_suggest(api):
    answer = api.get("/v1/suggest", params={"q": "run"}, headers=PUBLIC)
    assert answer.status_code == 200
    assert all(isinstance(s, str) for s in answer.json()["suggestions"])


def test_profile_reflects_history(api):
    profile = api.get("/v1/users/shopper-3/profile", headers=ADMIN)
    assert profile.status_code == 200, profile.text
    assert "shopper-3" not in profile.text and profile.json()["user"].startswith("u_")


def test_catalog_upsert_and_delete_reach_search(api):
    product = {"id": "new-1", "title": "Zebra striped thermos flask", "brand": "Brewco", "category": ["Home", "Kitchen", "Mugs"],
               "price": 19.0}
    put = api.put("/v1/admin/products", json={"products": [product]}, headers=ADMIN)
    assert put.status_code == 200, put.text
    assert put.json()["received"] == 1 and put.json()["inserted"] == 1
    found = api.get("/v1/search", params={"q": "zebra thermos"}, headers=PUBLIC).json()
    assert found["hits"] and found["hits"][0]["id"] == "new-1"
    assert api.delete("/v1/admin/products/new-1", headers=ADMIN).json() == {"deleted": 1}
    gone = api.get("/v1/search", params={"q": "zebra thermos"}, headers=PUBLIC).json()
    assert "new-1" not in [h["id"] for h in gone["hits"]]
    assert api.delete("/v1/admin/products/new-1", headers=ADMIN).status_code == 404


def test_impressions_leave_a_shoppers_cached_feed_current(api, served_engine):
    """A click changes what the shopper's feed is computed from; an impression changes nothing an
    answer reads, so the cached feed stays (and stays shared between workers)."""
    _, engine = served_engine
    results = engine._served.results
    home = {"user": "shopper-3", "k": 20}
    click = {"event_id": "stamp-1", "user_id": "shopper-3", "item_id": "p102", "type": "click",
             "timestamp": "2024-03-01T10:00:00Z"}
    assert api.post("/v1/events", json=click, headers=PUBLIC).json()["accepted"] == 1
    misses = results.misses
    feed = api.get("/v1/recommend/home", params=home, headers=PUBLIC).json()
    assert results.misses == misses + 1 and "p102" not in [h["id"] for h in feed["hits"]]
    hits = results.hits
    seen = dict(click, event_id="stamp-2", type="impression")
    assert api.post("/v1/events", json=seen, headers=PUBLIC).json()["accepted"] == 1
    assert api.get("/v1/recommend/home", params=home, headers=PUBLIC).json()["hits"] == feed["hits"]
    assert results.hits == hits + 1 and results.misses == misses + 1
    view = dict(click, event_id="stamp-3", type="view", item_id="p103")
    assert api.post("/v1/events", json=view, headers=PUBLIC).json()["accepted"] == 1
    api.get("/v1/recommend/home", params=home, headers=PUBLIC)
    assert results.misses == misses + 2  # a view is read by the next answer


def test_client_end_to_end(api):
    from shoprec.client import ShoprecClient

    client = ShoprecClient(api_key="test-public", http_client=api)
    result = client.search("coffee mug", brand=["Claywork"], k=5)
    assert result.hits and all(h.product["brand"] == "Claywork" for h in result.hits)
    assert client.recommend("home", user="shopper-1", k=3).hits
    assert client.similar("p200", k=3).hits
    sent = client.send_events([{"user_id": "shopper-1", "item_id": "p201", "type": "click"}] * 1)
    assert sent.accepted == 1
    assert client.ready()


def test_background_build_swaps_the_served_version(tmp_path_factory, served_engine):
    """POST /v1/admin/build runs `shoprec build` in a subprocess, then the service swaps atomically."""
    from fastapi.testclient import TestClient

    from shoprec.engine import Engine
    from shoprec.service.app import create_app

    shared_settings, _ = served_engine
    # Same store, fresh artifact root: the service starts unbuilt and must swap to the new version.
    settings = shared_settings.model_copy(update={"artifacts_dir": tmp_path_factory.mktemp("rebuild") / "artifacts"})
    engine = Engine.open(settings)
    before = engine.version
    assert before is None
    client = TestClient(create_app(settings, engine=engine, watch_interval_s=0, build_models=["pop", "itemknn"]),
                        raise_server_exceptions=False)
    assert client.get("/readyz").status_code == 503
    started = client.post("/v1/admin/build", headers=ADMIN)
    assert started.status_code == 202 and started.json()["state"] == "running"
    assert client.post("/v1/admin/build", headers=ADMIN).status_code == 409  # one at a time
    assert "shoprec_build_in_progress 1.0" in client.get("/metrics").text
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        builds = client.get("/v1/admin/builds", headers=ADMIN).json()
        if builds["builds"][0]["state"] != "running":
            break
        time.sleep(0.5)
    status = builds["builds"][0]
    assert status["state"] == "succeeded", status
    assert builds["serving_version"] == status["version"] != before
    assert client.get("/readyz").json()["version"] == status["version"]
    assert client.get("/v1/search", params={"q": "mug"}, headers=PUBLIC).json()["version"] == status["version"]
    assert "shoprec_build_in_progress 0.0" in client.get("/metrics").text
    engine.close()


def test_background_builds_run_on_idle_cpu_time_only():
    """The build subprocess gets only CPU time the serving workers leave (SCHED_IDLE on Linux)."""
    import os
    import subprocess
    import sys

    from shoprec.service.builds import idle_cpu_priority

    probe = "import os; print(os.sched_getscheduler(0) if hasattr(os, 'SCHED_IDLE') else os.nice(0))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         preexec_fn=idle_cpu_priority).stdout.strip()
    assert int(out) == (os.SCHED_IDLE if hasattr(os, "SCHED_IDLE") else 19)
    if hasattr(os, "SCHED_IDLE"):
        assert os.sched_getscheduler(0) != os.SCHED_IDLE  # the server itself is untouched


def test_one_build_at_a_time_across_serving_processes_with_shared_statuses(tmp_path):
    """With `--workers N` a build request reaches any worker: one build runs per artifact root,
    every worker lists it, and a build whose process ended (kill -9) is reported failed, not running."""
    import json
    import subprocess
    import sys
    import threading
    from datetime import datetime, timezone

    from shoprec.service.builds import BuildManager
    from shoprec.service.metrics import ServiceMetrics
    from shoprec.settings import Settings

    settings = Settings(artifacts_dir=tmp_path / "artifacts")
    a, b = (BuildManager(settings, lambda: None, ServiceMetrics(lambda: None), mode="thread") for _ in range(2))
    release = threading.Event()
    a._build_thread = lambda: "v1" if release.wait(30) else None  # the build's own steps are tested elsewhere
    first, started = a.start()
    assert started and first["state"] == "running"
    running, started = b.start()
    assert not started and running["id"] == first["id"]  # the other worker does not start a second one
    assert [s["state"] for s in b.list()] == ["running"]
    release.set()
    a.wait(30)
    assert [(s["id"], s["state"], s["version"]) for s in b.list()] == [(first["id"], "succeeded", "v1")]

    def boom():
        raise RuntimeError("boom")

    b._build_thread = boom
    second, started = b.start()
    assert started
    b.wait(30)
    assert [(s["state"], s.get("error")) for s in a.list()] == [("failed", "boom"), ("succeeded", None)]

    # A worker killed mid-build: its status said running and its lock went with it.
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)"),
        str(settings.artifacts_dir / ".builds" / ".lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        now = datetime.now(timezone.utc)
        dead = {"id": "killed", "state": "running", "started_at": now.isoformat(), "file": f"{now:%Y%m%dT%H%M%S%f}-1.json"}
        (settings.artifacts_dir / ".builds" / dead["file"]).write_text(json.dumps(dead))
        assert a.start() == ({k: v for k, v in dead.items() if k != "file"}, False)
        assert a.list()[0]["state"] == "running"
    finally:
        holder.kill()
        holder.wait()
    assert (a.list()[0]["id"], a.list()[0]["state"]) == ("killed", "failed") and "interrupted" in b.list()[0]["error"]
    a._build_thread = lambda: "v3"
    assert a.start()[1]
    a.wait(30)
    assert [s["state"] for s in b.list()] == ["succeeded", "failed", "failed", "succeeded"]


def test_typos_come_back_with_did_you_mean(api):
    body = api.get("/v1/search", params={"q": "ceramic cofee mug", "k": 3}, headers=PUBLIC).json()
    assert body["did_you_mean"] == "ceramic coffee mug"
    assert body["hits"] and body["hits"][0]["product"]["category"][-1] == "Mugs"
    assert "did_you_mean" not in body["info"]


def test_registry_runs_and_report_for_admins(api, served_engine):
    from shoprec.evaluation.registry import record_run

    _, engine = served_engine
    record_run(engine.store, "bench_api_test", "variant-a", {"k": 10}, {"ndcg10": 0.42}, {"fit_s": 1.0}, None)
    runs = api.get("/v1/admin/runs", params={"kind": "bench_api_test"}, headers=ADMIN).json()["runs"]
    assert [r["name"] for r in runs] == ["variant-a"] and runs[0]["metrics"]["ndcg10"] == 0.42
    page = api.get("/v1/admin/report", params={"kind": "bench_api_test"}, headers=ADMIN)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "variant-a" in page.text and "0.42" in page.text
    assert "variant-a" not in api.get("/v1/admin/report", params={"kind": "other"}, headers=ADMIN).text
    assert api.get("/v1/admin/report", headers=PUBLIC).status_code == 403


def test_the_version_watcher_lets_the_feed_keeper_load_a_new_version_first(tmp_path):
    """A worker's watcher loads a new version once `ready_to_load` says so (the keeper serves it),
    or after `wait_max_s` whatever it says."""
    from shoprec.service.builds import VersionWatcher

    class Engine:
        reloads = 0

        def reload(self) -> bool:
            self.reloads += 1
            return True

    (tmp_path / "versions" / "v1").mkdir(parents=True)
    (tmp_path / "versions" / "v2").mkdir()
    os.symlink("versions/v1", tmp_path / "current")
    engine, asked = Engine(), []
    keeper_has = {"v1"}
    watcher = VersionWatcher(tmp_path, lambda: engine, interval_s=0.01,
                             ready_to_load=lambda v: asked.append(v) or v in keeper_has, wait_max_s=30)
    watcher.tick()
    assert engine.reloads == 0 and asked == []  # unchanged: nothing to load
    os.replace(tmp_path / "current", tmp_path / "current.old")
    os.symlink("versions/v2", tmp_path / "current")
    waiting = threading.Thread(target=watcher.tick)
    waiting.start()
    time.sleep(0.3)
    assert engine.reloads == 0 and asked and set(asked) == {"v2"}  # waiting for the keeper
    keeper_has.add("v2")
    waiting.join(5)
    assert not waiting.is_alive() and engine.reloads == 1

    impatient = VersionWatcher(tmp_path, lambda: engine, interval_s=0.01, ready_to_load=lambda v: False, wait_max_s=0.2)
    os.replace(tmp_path / "current", tmp_path / "current.old")
    os.symlink("versions/v1", tmp_path / "current")
    t0 = time.monotonic()
    impatient.tick()
    assert engine.reloads == 2 and time.monotonic() - t0 >= 0.2  # no keeper answered in time: load anyway
