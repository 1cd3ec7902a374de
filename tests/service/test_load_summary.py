"""The load benchmark's summary arithmetic (the benchmark itself runs via `shoprec bench load`)."""

import os

import psutil
import pytest

from shoprec.bench.load import summarise


def test_summary_reports_throughput_percentiles_and_errors():
    raw = {"latencies": {"recommend": [float(i) for i in range(1, 101)], "search": [5.0] * 10, "events": []},
           "errors": {"recommend": 2, "search": 0, "events": 0}, "elapsed_s": 2.0, "error_samples": ["recommend 503"]}
    figures = summarise(raw)
    assert figures["requests"] == 110 and figures["rps"] == 55.0 and figures["errors"] == 2
    assert figures["p50_ms"]["recommend"] == 50.5 and figures["p99_ms"]["recommend"] == 99.01
    assert figures["p50_ms"]["search"] == 5.0 and figures["p50_ms"]["events"] is None


def test_summary_splits_at_a_moment_by_when_requests_started():
    raw = {"latencies": {"recommend": [1.0, 2.0, 30.0, 40.0], "search": [3.0, 50.0], "events": []},
           "started": {"recommend": [10.0, 11.0, 20.0, 21.0], "search": [12.0, 22.0], "events": []},
           "errors": {"recommend": 1, "search": 0, "events": 0}, "elapsed_s": 12.0}
    before, after = summarise(raw, before=20.0), summarise(raw, after=20.0)
    assert before["count"] == {"recommend": 2, "search": 1, "events": 0} and before["p50_ms"]["recommend"] == 1.5
    assert after["count"] == {"recommend": 2, "search": 1, "events": 0} and after["p50_ms"]["search"] == 50.0
    assert before["elapsed_s"] == 10.0 and before["rps"] == 0.3 and after["elapsed_s"] == 2.0
    assert before["errors"] is None  # errors are counted per phase, not per request


def test_inputs_drawn_from_distinct_values_or_from_the_log(tmp_path):
    import json
    from collections import Counter

    from shoprec.bench.load import bench_settings, sample_inputs

    rows = [{"user_id": "heavy", "item_id": "hit", "query": "tea"}] * 90 + \
           [{"user_id": f"light{i}", "item_id": f"rare{i}", "query": f"q{i}"} for i in range(10)]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "events.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    settings = bench_settings(tmp_path)
    distinct = sample_inputs(settings, tmp_path, seed=1, n=50)
    assert sorted(distinct["users"]) == sorted({r["user_id"] for r in rows})  # each once
    log = sample_inputs(settings, tmp_path, seed=1, n=50, draw="log")
    assert len(log["users"]) == 500 and Counter(log["users"])["heavy"] > 400  # as often as in the log (90%)
    assert Counter(log["queries"])["tea"] > 400 and set(log["items"]) <= {r["item_id"] for r in rows}


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="idle CPU priority is Linux only")
def test_server_cpu_is_counted_apart_for_serving_and_idle_priority_processes():
    """The bench's CPU per request: the workers' CPU, and the feed keeper's (idle priority) apart."""
    import subprocess
    import sys

    from shoprec.bench.load import server_cpu_s

    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
    child = "import os; os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))\n" + burn + "print('done', flush=True)\ntime.sleep(30)"
    parent = (f"import subprocess, sys, time\nc = subprocess.Popen([sys.executable, '-c', {child!r}], stdout=subprocess.PIPE, text=True)\n"
              + burn + "print(c.stdout.readline().strip(), flush=True)\ntime.sleep(30)")
    server = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "done"
        used = server_cpu_s(server)
        assert used["serving"] >= 0.25 and used["idle_priority"] >= 0.25
        assert used["serving"] < 5 and used["idle_priority"] < 5
    finally:
        for p in psutil.Process(server.pid).children(recursive=True):
            p.kill()
        server.kill()
        server.wait()
