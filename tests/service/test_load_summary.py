"""The load benchmark's summary arithmetic (the benchmark itself runs via `shoprec bench load`)."""

from shoprec.bench.load import summarise


def test_summary_reports_throughput_percentiles_and_errors():
    raw = {"latencies": {"recommend": [float(i) for i in range(1, 101)], "search": [5.0] * 10, "events": []},
           "errors": {"recommend": 2, "search": 0, "events": 0}, "elapsed_s": 2.0, "error_samples": ["recommend 503"]}
    figures = summarise(raw)
    assert figures["requests"] == 110 and figures["rps"] == 55.0 and figures["errors"] == 2
    assert figures["p50_ms"]["recommend"] == 50.5 and figures["p99_ms"]["recommend"] == 99.01
    assert figures["p50_ms"]["search"] == 5.0 and figures["p50_ms"]["events"] is None
