"""The HTML report: self-contained, tables, deltas, segments, curves; the CLI end to end."""

from __future__ import annotations

import json
import re

from shoprec.cli import main
from shoprec.data.store import open_store
from shoprec.evaluation.registry import record_run
from shoprec.evaluation.report import render_report, write_report


def fill(store):
    for dim, ndcg in ((32, 0.20), (64, 0.25), (128, 0.24)):
        record_run(store, "seqrec", "sasrec", {"dim": dim}, {"ndcg10": ndcg, "hr10": ndcg * 2, "loss": 1 - ndcg},
                   {"fit_s": dim / 10}, "fp1", extra={"segments": {"cold": {"ndcg10": ndcg / 2}, "warm": {"ndcg10": ndcg * 1.2}}})
    record_run(store, "abtest", "bench", {"seed": 0}, {"aa_false_positive_rate": 0.05, "note": "<script>x</script>"}, {}, None,
               extra={"curves": {"regret": {"x": [1, 2, 3], "y": {"thompson": [0.1, 0.15, 0.17]}, "xlabel": "round", "ylabel": "regret"}}})


def test_report_is_self_contained_with_tables_deltas_and_plots(tmp_path):
    with open_store("sqlite:///" + str(tmp_path / "r.db")) as store:
        fill(store)
        out = write_report(store, tmp_path / "report.html")
    text = out.read_text()
    # No external requests: every image is inline, no src/href to http(s) or other files.
    assert not re.search(r'(src|href)="(?!data:|#)', text)
    assert "http://" not in text and "https://" not in text
    assert text.count("data:image/png;base64,") >= 4  # headline bars, ndcg vs dim, segment bars, regret curve
    assert "<script>" not in text and "&lt;script&gt;" in text  # run values are escaped
    seqrec = text[text.index('id="kind-seqrec"'):]
    # Best ndcg10 (0.25, higher is better) and best loss (0.75, lower is better) are bold.
    assert '<td class="best">0.2500</td>' in seqrec and '<td class="best">0.7500</td>' in seqrec
    assert "+0.05 (+25.0%)" in seqrec  # delta of the dim=64 run against the first run
    assert "Segments of sasrec" in seqrec and "cold" in seqrec


def test_report_filters_kinds_and_handles_an_empty_registry():
    assert "No runs recorded" in render_report([])
    runs = [{"kind": "a", "name": "x", "metrics": {"m": 1.0}, "created_at": "2026-01-01T00:00:00"},
            {"kind": "b", "name": "y", "metrics": {"m": 2.0}, "created_at": "2026-01-01T00:00:00"}]
    text = render_report(runs, kind_filter=["b"])
    assert 'id="kind-b"' in text and 'id="kind-a"' not in text


def test_report_cli_imports_json_and_writes_html(tmp_path, capsys):
    records = tmp_path / "bench.jsonl"
    records.write_text(json.dumps({"kind": "search", "name": "bm25", "metrics": {"ndcg10": 0.32}}) + "\n")
    url = "sqlite:///" + str(tmp_path / "cli.db")
    out = tmp_path / "out" / "report.html"
    assert main(["report", "--store", url, "--out", str(out), "--import", str(records)]) == 0
    assert "imported 1 runs" in capsys.readouterr().out
    assert 'id="kind-search"' in out.read_text()
