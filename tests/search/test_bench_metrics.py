"""The nDCG functions of `shoprec bench search`, on hand-computed cases."""

from __future__ import annotations

import math

import pytest

from shoprec.bench.search import dcg, full_ndcg, load_judgments, rerank_ndcg
from shoprec.errors import ShoprecError


def test_dcg_hand_computed():
    assert dcg([2, 0, 1]) == pytest.approx(2 + 0 + 1 / 2)
    assert dcg([1] * 12, k=10) == pytest.approx(sum(1 / math.log2(i + 2) for i in range(10)))


def test_full_ndcg_counts_unjudged_as_zero():
    judged = {"a": 2.0, "b": 1.0, "c": 0.0}
    ideal = 2 + 1 / math.log2(3)
    assert full_ndcg(["a", "b"], judged) == pytest.approx(1.0)
    # "x" is unjudged (gain 0) and pushes "a" to rank 2.
    assert full_ndcg(["x", "a", "b"], judged) == pytest.approx((2 / math.log2(3) + 1 / 2) / ideal)
    assert full_ndcg([], judged) == 0.0
    assert full_ndcg(["a"], {"a": 0.0}) is None  # no ideal DCG: not measurable


def test_rerank_ndcg():
    gains = [0.0, 2.0, 1.0]
    assert rerank_ndcg([3, 2, 1], gains) == pytest.approx((0 + 2 / math.log2(3) + 1 / 2) / (2 + 1 / math.log2(3)))
    assert rerank_ndcg([0, 5, 1], gains) == pytest.approx(1.0)
    assert rerank_ndcg([1, 1, 1], gains) == pytest.approx((0 + 2 / math.log2(3) + 1 / 2) / (2 + 1 / math.log2(3)))
    assert rerank_ndcg([1, 2], [1.0, 1.0]) is None
    assert rerank_ndcg([1], [2.0]) is None


def test_load_judgments_reports_bad_rows(tmp_path):
    good = tmp_path / "j.csv"
    good.write_text("query,product_uid,relevance\nhose,1,3\nhose,2,1.33\nhose,99,2\n")
    judged, unknown = load_judgments(good, {"1", "2"})
    assert judged == {"hose": {"1": 2.0, "2": pytest.approx(0.33)}} and unknown == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("query,product_uid,relevance\nhose,1,3\nhose,2,high\n")
    with pytest.raises(ShoprecError, match=r"bad.csv:3: relevance 'high'"):
        load_judgments(bad, {"1", "2"})


def test_search_bench_record_imports_one_run_per_engine(tmp_path):
    import json

    from shoprec.bench.search import registry_records
    from shoprec.data.store import open_store
    from shoprec.evaluation.registry import list_runs, record_from_json

    engines = ("bm25s", "lexical", "semantic", "hybrid")
    figures = {key: {e: float(i) for i, e in enumerate(engines)}
               for key in ("full_ndcg10", "rerank_ndcg10", "p50_ms", "p99_ms", "cpu_p50_ms", "cpu_p99_ms")}
    path = tmp_path / "search.json"
    path.write_text(json.dumps(registry_records({**figures, "n_queries": 10, "folds": 5, "wall_s": 3.0})))
    with open_store(f"sqlite:///{tmp_path / 'registry.db'}") as store:
        assert len(record_from_json(store, path)) == 4
        runs = {r["name"]: r for r in list_runs(store, "bench_search")}
    assert runs["hybrid"]["metrics"]["full_ndcg10"] == 3.0 and runs["hybrid"]["config"]["folds"] == 5
    assert runs["bm25s"]["code"]["package"]
