"""ItemIndex: exact below the threshold, HNSW above, compared against exact search."""

from __future__ import annotations

import numpy as np

from shoprec.recommend.ann import ItemIndex
from shoprec.recommend.base import unit_rows


def clustered(n: int = 4000, dim: int = 32, clusters: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    return (centres[rng.integers(clusters, size=n)] + 0.4 * rng.normal(size=(n, dim))).astype(np.float32)


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found.tolist(), exact.tolist())]))


def test_small_tables_are_searched_exactly():
    table = clustered(500)
    index = ItemIndex.build(table, min_items=1000)
    assert not index.approximate
    queries = clustered(20, seed=1)
    ids, scores = index.search(queries, 10)
    full = queries @ table.T
    np.testing.assert_array_equal(ids, np.argsort(-full, axis=1, kind="stable")[:, :10])
    np.testing.assert_allclose(scores, np.take_along_axis(full, ids, axis=1), rtol=1e-5)


def test_hnsw_finds_what_exact_search_finds():
    table = clustered()
    # Un-normalised inner product (model scores) and cosine (unit rows) are both served this way;
    # 200 of 4,000 crosses cluster borders, the hardest part for a graph (100,000-item figures are
    # in the build manifest).
    cases = ((table, clustered(100, seed=2), 0.88), (unit_rows(table), unit_rows(clustered(100, seed=2)), 0.95))
    for rows, queries, least in cases:
        exact, _ = ItemIndex(rows).search(queries, 200)
        found = {}
        for ef_search, reduce in ((256, False), (512, False), (256, True)):
            index = ItemIndex.build(rows, min_items=1000, ef_search=ef_search, reduce=reduce)
            assert index.approximate
            ids, scores = index.search(queries, 200)
            assert ids.shape == (100, 200)
            assert (np.diff(scores, axis=1) <= 1e-5).all(), "best first"
            np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", queries, rows[ids]), rtol=1e-4, atol=1e-4)
            found[ef_search, reduce] = recall(ids, exact)
        assert found[256, False] >= least and found[512, False] > found[256, False], found
        assert found[256, True] >= 0.9, found  # the L2 reduction of inner-product search


def test_saved_graph_is_used_only_for_the_table_it_indexes(tmp_path):
    table = unit_rows(clustered(2000))
    queries = table[:30]
    for reduce in (False, True):
        index = ItemIndex.build(table, min_items=1000, reduce=reduce)
        index.save(tmp_path / "t.faiss")
        loaded = ItemIndex.load(tmp_path / "t.faiss", table)
        assert loaded.approximate and loaded.reduced == reduce
        np.testing.assert_array_equal(loaded.search(queries, 20)[0], index.search(queries, 20)[0])
    assert not ItemIndex.load(tmp_path / "t.faiss", table[:1500]).approximate  # stale: another table
    assert not ItemIndex.load(tmp_path / "missing.faiss", table).approximate


def test_added_rows_are_found():
    for min_items, reduce in ((10**6, False), (1000, False), (1000, True)):  # exact and both graphs
        table = unit_rows(clustered(2000))
        index = ItemIndex.build(table, min_items=min_items, reduce=reduce)
        new = unit_rows(clustered(5, seed=9) * 3.0)
        index.add(new)
        assert len(index) == 2005 and index.vectors.shape == (2005, 32)
        ids, _ = index.search(new, 1)
        assert ids[:, 0].tolist() == list(range(2000, 2005))


def test_k_larger_than_the_table():
    ids, scores = ItemIndex.build(clustered(50), min_items=10).search(clustered(3, seed=4), 80)
    assert ids.shape[1] <= 50 and ids.shape == scores.shape and (ids >= 0).all()


def test_many_queries_at_once_each_get_what_they_get_alone():
    queries = unit_rows(clustered(40, seed=5))
    for rows, min_items, reduce, k in ((clustered(500), 1000, False, 50), (clustered(), 1000, False, 100),
                                       (unit_rows(clustered()), 1000, True, 100), (clustered(50), 10, False, 80)):
        index = ItemIndex.build(rows, min_items=min_items, reduce=reduce)
        each = index.search_each(queries, k)
        assert len(each) == len(queries)
        for query, (ids, scores) in zip(queries, each):
            alone_ids, alone_scores = index.search(query[None, :], k)
            np.testing.assert_array_equal(ids, alone_ids[0])
            np.testing.assert_allclose(scores, alone_scores[0], rtol=1e-5)
            assert 0 < len(ids) <= min(k, len(rows)) and (ids >= 0).all()
