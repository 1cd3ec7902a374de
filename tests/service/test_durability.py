"""Events acknowledged by the API survive `kill -9` of the server, exactly once.

Starts `shoprec serve` (uvicorn) on a free loopback port with a SQLite store in tmp_path, streams
events from client threads (single events and batches), kills the server with SIGKILL mid-stream,
restarts it, and checks that every acknowledged event is stored exactly once and that resending
the unacknowledged ones (and the acknowledged ones) stores nothing twice.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import psutil

KEY = "durability-key"
RAW_USER = "raw-shopper-7781"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tmp_path, port: int, log_name: str) -> subprocess.Popen:
    env = dict(os.environ, SHOPREC_STORE_URL=f"sqlite:///{tmp_path / 'shop.db'}", SHOPREC_ARTIFACTS_DIR=str(tmp_path / "artifacts"),
               SHOPREC_EMBEDDING_CACHE_DIR=str(tmp_path / "cache"), SHOPREC_SERVICE__PUBLIC_KEYS=f'["{KEY}"]',
               SHOPREC_SERVICE__ADMIN_KEYS='["durability-admin"]', SHOPREC_SERVICE__RATE_LIMIT_PER_MINUTE="1000000",
               SHOPREC_CONFIG=str(tmp_path / "none.toml"), OMP_NUM_THREADS="1")
    log = open(tmp_path / log_name, "w")
    proc = subprocess.Popen([sys.executable, "-m", "shoprec.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--access-log"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {(tmp_path / log_name).read_text()[-2000:]}")
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not become healthy in 60 s")


def event(i: int, stream: str) -> dict:
    return {"event_id": f"{stream}-{i}", "user_id": RAW_USER, "item_id": f"p{i % 50}", "type": "view",
            "timestamp": "2024-05-01T12:00:00Z", "session_id": "s1"}


def test_acknowledged_events_survive_kill_9_exactly_once(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(tmp_path, port, "server1.log")
    sent: list[dict] = []
    acked: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def stream_single():
        with httpx.Client(base_url=base, headers={"X-API-Key": KEY}, timeout=5) as http:
            i = 0
            while not stop.is_set():
                e = event(i, "single")
                with lock:
                    sent.append(e)
                try:
                    r = http.post("/v1/events", json=e)
                except httpx.HTTPError:
                    return  # the server is gone: this one stays unacknowledged
                if r.status_code == 200:
                    with lock:
                        acked.add(e["event_id"])
                i += 1

    def stream_batches():
        with httpx.Client(base_url=base, headers={"X-API-Key": KEY}, timeout=5) as http:
            i = 0
            while not stop.is_set():
                batch = [event(i + j, "batch") for j in range(10)]
                with lock:
                    sent.extend(batch)
                try:
                    r = http.post("/v1/events/batch", json={"events": batch})
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    assert r.json()["accepted"] == 10
                    with lock:
                        acked.update(e["event_id"] for e in batch)
                i += 10

    threads = [threading.Thread(target=stream_single), threading.Thread(target=stream_batches)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acked) < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    children = psutil.Process(server.pid).children()  # the feed keeper
    os.kill(server.pid, signal.SIGKILL)  # mid-stream: requests are in flight
    server.wait()
    assert children and not psutil.wait_procs(children, timeout=10)[1], "a child outlived the killed server"
    stop.set()
    for t in threads:
        t.join(10)
    acknowledged = set(acked)
    assert len(acknowledged) >= 300, "the stream was too slow to test anything"

    from shoprec.data.store import open_store

    with open_store(f"sqlite:///{tmp_path / 'shop.db'}") as store:
        stored_ids = store.read_events().column("event_id").to_pylist()
        stored_users = set(store.read_events().column("user_id").to_pylist())
    unacknowledged = [e for e in sent if e["event_id"] not in acknowledged]
    print(f"\nsent={len(sent)} acknowledged={len(acknowledged)} stored_after_kill={len(stored_ids)} "
          f"unacknowledged={len(unacknowledged)}")
    assert acknowledged <= set(stored_ids), "an acknowledged event was lost"
    assert len(stored_ids) == len(set(stored_ids)), "an event was stored twice"
    assert RAW_USER not in stored_users and all(u.startswith("u_") for u in stored_users)

    # Restart; resend everything (acknowledged and not): nothing is stored twice.
    server = start_server(tmp_path, port, "server2.log")
    try:
        with httpx.Client(base_url=base, headers={"X-API-Key": KEY}, timeout=10) as http:
            accepted = duplicates = 0
            for start in range(0, len(sent), 500):
                r = http.post("/v1/events/batch", json={"events": sent[start:start + 500]})
                assert r.status_code == 200, r.text
                accepted += r.json()["accepted"]
                duplicates += r.json()["duplicates"]
        children = psutil.Process(server.pid).children()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(15)
    assert children and not psutil.wait_procs(children, timeout=10)[1], "a child outlived the stopped server"
    with open_store(f"sqlite:///{tmp_path / 'shop.db'}") as store:
        final_ids = store.read_events().column("event_id").to_pylist()
    print(f"resent={len(sent)} accepted_on_resend={accepted} duplicates_on_resend={duplicates} stored_final={len(final_ids)}")
    assert len(final_ids) == len(set(final_ids)) == len({e["event_id"] for e in sent})
    assert accepted == len(sent) - len(stored_ids) and duplicates == len(stored_ids)
    logs = (tmp_path / "server1.log").read_text() + (tmp_path / "server2.log").read_text()
    assert "POST /v1/events 200" in logs and "POST /v1/events/batch 200" in logs  # the access log ran...
    assert RAW_USER not in logs  # ...without raw user ids
