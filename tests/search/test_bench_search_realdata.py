"""`shoprec bench search` end to end on a slice of the real Home Depot data (realdata tier)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "homedepot"


@pytest.mark.realdata
@pytest.mark.slow
def test_bench_search_on_a_slice(tmp_path, capsys):
    if not (DATA / "products.csv").exists():
        pytest.skip(f"{DATA} not present")
    from shoprec.bench import search

    parser = argparse.ArgumentParser()
    search.add_arguments(parser)
    args = parser.parse_args(["--products", str(DATA / "products.csv"), "--judgments", str(DATA / "judgments_dev.csv"),
                              "--limit-products", "1500", "--limit-queries", "120", "--folds", "2",
                              "--latency-queries", "20", "--skip-rebuild", "--workers", "1",
                              "--cache-dir", str(tmp_path / "cache"), "--work-dir", str(tmp_path / "work")])
    assert search.run(args) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(record["full_ndcg10"]) == {"bm25s", "lexical", "semantic", "hybrid"}
    assert record["heldout_only"] is True
    # On any slice the fused engines should not fall far below the better single signal.
    assert record["full_ndcg10"]["hybrid"] >= 0.9 * max(record["full_ndcg10"]["lexical"], record["full_ndcg10"]["semantic"])
