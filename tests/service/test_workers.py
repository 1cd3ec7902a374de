"""`shoprec serve --workers 2`: one process per core, each on its own SO_REUSEPORT socket."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="SO_REUSEPORT is Linux/BSD only")


def start_two_workers(settings, tmp_path) -> tuple[subprocess.Popen, int, Path]:
    from shoprec.service.builds import settings_environment

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, OMP_NUM_THREADS="1", SHOPREC_CONFIG=str(tmp_path / "none.toml"))
    env.update(settings_environment(settings))
    log = tmp_path / "serve.log"
    server = subprocess.Popen([sys.executable, "-m", "shoprec.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                               "--workers", "2", "--log-level", "warning"], env=env, stdout=log.open("w"),
                              stderr=subprocess.STDOUT, cwd=tmp_path)
    return server, port, log


def clients_per_worker(server, port: int, log: Path, headers: dict[str, str]) -> dict[int, httpx.Client]:
    """One keep-alive client per worker pid (a connection stays with the worker that accepted it)."""
    clients: dict[int, httpx.Client] = {}
    deadline = time.monotonic() + 120
    while len(clients) < 2 and time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()[-2000:]
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10)
        try:  # a new connection each time: the kernel spreads them over the workers' sockets
            response = client.get("/readyz")
            if response.status_code == 200 and response.json()["worker"] not in clients:
                clients[response.json()["worker"]] = client
                continue
        except httpx.HTTPError:
            time.sleep(0.2)
        client.close()
    assert len(clients) == 2, f"answered by {sorted(clients)}: {log.read_text()[-2000:]}"
    return clients


def test_two_workers_and_the_feed_keeper_share_the_work_and_stop_together(served_engine, tmp_path):
    """Two workers answer on one port; beside them the feed keeper, at idle CPU priority, computes a
    shopper's home feed after their event into the shared answers before anyone asks for it."""
    import sqlite3

    import psutil

    from shoprec.engine import _context_key
    from shoprec.result_cache import SharedAnswers

    settings, engine = served_engine
    server, port, log = start_two_workers(settings, tmp_path)
    children: set[int] = set()
    try:
        clients = clients_per_worker(server, port, log, {"X-API-Key": "test-public"})
        workers = set(clients)
        assert server.pid not in workers  # the supervisor only starts and stops them
        children = {p.pid for p in psutil.Process(server.pid).children() if "resource_tracker" not in " ".join(p.cmdline())}
        (keeper,) = children - workers
        assert os.sched_getscheduler(keeper) == os.SCHED_IDLE
        one = next(iter(clients.values()))
        hits = one.get("/v1/recommend/home", params={"k": 5})
        assert hits.status_code == 200 and hits.json()["hits"]

        event = {"event_id": "keeper-view-1", "user_id": "keeper-shopper", "item_id": engine._served.item_ids[2],
                 "type": "view", "timestamp": time.time()}
        assert one.post("/v1/events", json=event).json()["accepted"] == 1
        version = one.get("/readyz").json()["version"]
        key = ("recommend", "home", engine.pseudonym("keeper-shopper"), None, (), settings.recommend.default_k,
               _context_key(None))
        digest = SharedAnswers._digest(f"{version}/{engine._settings_digest}", key)
        answers = sqlite3.connect(Path(settings.artifacts_dir) / f".answers-v{SharedAnswers.SCHEMA}.sqlite")
        deadline = time.monotonic() + 20
        # in the answers, or in the kept table when the keeper warmed it on loading the version
        while not answers.execute("SELECT (SELECT count(*) FROM answers WHERE key = ?) + "
                                  "(SELECT count(*) FROM kept WHERE key = ?)", (digest, digest)).fetchone()[0]:
            assert time.monotonic() < deadline, "the keeper did not compute the shopper's feed: " + log.read_text()[-2000:]
            time.sleep(0.1)
        answers.close()
        # Once the keeper has loaded and warmed the version, readiness counts it with the workers.
        deadline = time.monotonic() + 60
        while one.get("/readyz").json()["serving_processes"] < 3:
            assert time.monotonic() < deadline, "the keeper never served the version: " + log.read_text()[-2000:]
            time.sleep(0.2)
        for client in clients.values():
            client.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    assert server.returncode == 0
    for pid in children:  # neither a worker nor the keeper outlives the supervisor
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_what_one_worker_is_told_reaches_the_other_within_a_second(served_engine, tmp_path):
    """An event, a catalog upsert and a forgotten user sent to one worker change the other's answers.
    A kill -9 of the supervisor then ends the workers and the keeper (none goes on serving the port)."""
    import psutil

    settings, engine = served_engine
    server, port, log = start_two_workers(settings, tmp_path)
    children: list = []
    try:
        clients = clients_per_worker(server, port, log, {"X-API-Key": "test-admin"})
        one, other = clients.values()

        def reaches_other(check) -> float:
            """Seconds until `check(other)` holds (fails after 1 s)."""
            t0 = time.monotonic()
            while not check(other):
                assert time.monotonic() - t0 < 1.0, "the other worker did not follow within a second"
                time.sleep(0.02)
            return time.monotonic() - t0

        item = engine._served.item_ids[3]
        event = {"event_id": "workers-click-1", "user_id": "workers-shopper", "item_id": item, "type": "click",
                 "timestamp": time.time()}
        assert one.post("/v1/events", json=event).json()["accepted"] == 1
        reaches_other(lambda c: c.get("/v1/users/workers-shopper/profile").json()["session_items"] == [item])

        product = {"id": "workers-new-1", "title": "Zebra striped thermos flask", "brand": "Brewco",
                   "category": ["Home", "Kitchen", "Mugs"], "price": 19.0}
        assert one.put("/v1/admin/products", json={"products": [product]}).status_code == 200
        reaches_other(lambda c: "workers-new-1" in [h["id"] for h in c.get("/v1/search", params={"q": "zebra thermos"}).json()["hits"]])

        assert one.delete("/v1/admin/users/workers-shopper").status_code == 200
        reaches_other(lambda c: c.get("/v1/users/workers-shopper/profile").json()["session_items"] == [])
        for client in clients.values():
            client.close()
        children = psutil.Process(server.pid).children()
        assert len(children) >= 3  # two workers and the keeper (and multiprocessing's resource tracker)
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(60)
    assert not psutil.wait_procs(children, timeout=30)[1], "a worker or the keeper outlived the killed supervisor"
