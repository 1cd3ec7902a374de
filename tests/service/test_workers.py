"""`shoprec serve --workers 2`: one process per core, each on its own SO_REUSEPORT socket."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="SO_REUSEPORT is Linux/BSD only")


def test_two_workers_share_the_port_answer_and_stop_together(served_engine, tmp_path):
    from shoprec.service.builds import settings_environment

    settings, _ = served_engine
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, OMP_NUM_THREADS="1", SHOPREC_CONFIG=str(tmp_path / "none.toml"))
    env.update(settings_environment(settings))
    log = tmp_path / "serve.log"
    server = subprocess.Popen([sys.executable, "-m", "shoprec.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                               "--workers", "2", "--log-level", "warning"], env=env, stdout=log.open("w"),
                              stderr=subprocess.STDOUT, cwd=tmp_path)
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while len(workers) < 2 and time.monotonic() < deadline:
            assert server.poll() is None, log.read_text()[-2000:]
            try:  # a new connection each time: the kernel spreads them over the workers' sockets
                response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if response.status_code == 200:
                    workers.add(response.json()["worker"])
            except httpx.HTTPError:
                time.sleep(0.2)
        assert len(workers) == 2, f"answered by {workers}: {log.read_text()[-2000:]}"
        assert server.pid not in workers  # the supervisor only starts and stops them
        hits = httpx.get(f"http://127.0.0.1:{port}/v1/recommend/home", params={"k": 5},
                         headers={"X-API-Key": "test-public"}, timeout=10)
        assert hits.status_code == 200 and hits.json()["hits"]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    assert server.returncode == 0
    for pid in workers:  # no worker outlives the supervisor
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
