"""The ingestion benchmark runs end to end on a small N (its speed is measured by running it, not here)."""

from __future__ import annotations

import json

from shoprec import cli
from shoprec.bench.ingest import generate_events


def test_generated_events_are_valid_and_repeat_some_lines(tmp_path):
    stats = generate_events(tmp_path / "e.jsonl", 3000, seed=1)
    lines = (tmp_path / "e.jsonl").read_text().splitlines()
    assert len(lines) == stats["lines"] == 3000
    assert stats["repeated_lines"] > 0 and stats["without_event_id"] > 0
    from shoprec.data.schemas import Event

    for line in lines[:200]:
        row = json.loads(line)
        row.setdefault("event_id", "x")
        Event.model_validate(row)


def test_bench_ingest_reports_and_reingest_inserts_nothing(tmp_path, capsys):
    code = cli.main(["bench", "ingest", "--events", "3000", "--workdir", str(tmp_path), "--batch-size", "500"])
    out = capsys.readouterr().out.strip().splitlines()
    result = json.loads(out[-1])
    assert code == 0
    assert result["inserted_on_reingest"] == 0
    assert result["ingest"]["rows_read"] == 3000 and result["ingest"]["rejected"] == 0
    repeated = result["generated"]["repeated_lines"]
    assert result["ingest"]["inserted"] + result["ingest"]["duplicates"] == 3000
    assert result["ingest"]["duplicates"] >= repeated > 0
    assert result["reingest"]["duplicates"] == 3000
    assert result["rows_per_s"] > 0 and result["peak_rss_mb"] > 0
    assert result["interactions"] > 0
