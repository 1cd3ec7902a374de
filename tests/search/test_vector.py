"""faiss vector index: exact vs brute force, HNSW recall, incremental add/remove, filters, save/load."""

from __future__ import annotations

import numpy as np
import pytest

from shoprec.search.vector import VectorIndex, VectorIndexConfig


def unit_rows(rng, n, d):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    items = unit_rows(rng, 2000, 32)
    queries = unit_rows(rng, 40, 32)
    return [f"p{i}" for i in range(2000)], items, queries


def brute_force(items, queries, k):
    return np.argsort(-(queries @ items.T), axis=1, kind="stable")[:, :k]


def test_exact_matches_brute_force(data):
    ids, items, queries = data
    index = VectorIndex.build(ids, items)
    assert index.kind == "flat"
    got, scores = index.search(queries, 10)
    expected = brute_force(items, queries, 10)
    assert got.shape == (40, 10)
    assert [[ids[j] for j in row] for row in expected] == got.tolist()
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ items.T, expected, 1), atol=1e-5)


def test_hnsw_recall_on_random_data(data):
    ids, items, queries = data
    index = VectorIndex.build(ids, items, VectorIndexConfig(hnsw_threshold=1000))
    assert index.kind == "hnsw"
    got, _ = index.search(queries, 10)
    expected = brute_force(items, queries, 10)
    recall = np.mean([len(set(got[q]) & {ids[j] for j in expected[q]}) / 10 for q in range(len(queries))])
    assert recall >= 0.9


@pytest.mark.parametrize("threshold", [10**9, 1000])
def test_add_remove_and_replace(data, threshold):
    ids, items, queries = data
    index = VectorIndex.build(ids[:1500], items[:1500], VectorIndexConfig(hnsw_threshold=threshold))
    assert ids[1600] not in index.search_one(items[1600], 5)[0]
    index.add(ids[1500:], items[1500:])  # new products become findable at once
    assert index.search_one(items[1600], 1)[0] == [ids[1600]]
    assert len(index) == 2000
    assert index.remove([ids[1600], "never-there"]) == 1
    assert ids[1600] not in index.search_one(items[1600], 20)[0]
    assert len(index) == 1999
    # Replacing a product's vector moves it.
    index.add([ids[0]], items[1:2])
    top, scores = index.search_one(items[1], 2)
    assert set(top) == {ids[0], ids[1]} and scores[0] == pytest.approx(1.0, abs=1e-5)
    found, vecs = index.vectors_for([ids[0], ids[1600]])
    assert found.tolist() == [True, False]
    np.testing.assert_allclose(vecs[0], items[1])


def test_compaction_after_many_removals(data):
    ids, items, _ = data
    index = VectorIndex.build(ids, items)
    index.remove(ids[:1000])
    assert len(index) == 1000 and len(index._alive) == 1000  # compacted: dead rows dropped
    assert index.search_one(items[1500], 1)[0] == [ids[1500]]


@pytest.mark.parametrize("threshold", [10**9, 1000])
def test_filtered_search_only_returns_allowed(data, threshold):
    ids, items, queries = data
    cfg = VectorIndexConfig(hnsw_threshold=threshold, exact_filter_max=100)
    index = VectorIndex.build(ids, items, cfg)
    small = {ids[i] for i in range(0, 2000, 50)}  # 40 ids: exact numpy path
    big = {ids[i] for i in range(0, 2000, 2)}  # 1000 ids: faiss IDSelector path
    for allowed in (small, big):
        got, scores = index.search(queries[:5], 10, allowed)
        assert all(pid in allowed for pid in got.ravel())
        expected = [ids[j] for j in brute_force(items, queries[:1], 2000)[0] if ids[j] in allowed][:10]
        if threshold > 2000:
            assert got[0].tolist() == expected
        assert np.all(np.diff(scores, axis=1) <= 1e-6)
    # Fewer allowed than k: padded with "" and -inf.
    got, scores = index.search(queries[0], 5, {ids[3], ids[4]})
    assert sorted(got[0, :2].tolist()) == [ids[3], ids[4]] and got[0, 2:].tolist() == ["", "", ""]
    assert np.isneginf(scores[0, 2:]).all()


@pytest.mark.parametrize("threshold", [10**9, 1000])
def test_save_load_roundtrip(data, tmp_path, threshold):
    ids, items, queries = data
    index = VectorIndex.build(ids, items, VectorIndexConfig(hnsw_threshold=threshold))
    index.remove([ids[5]])
    index.save(tmp_path / "v")
    loaded = VectorIndex.load(tmp_path / "v")
    assert loaded.kind == index.kind and len(loaded) == 1999 and ids[5] not in loaded
    a, sa = index.search(queries, 10)
    b, sb = loaded.search(queries, 10)
    assert a.tolist() == b.tolist()
    np.testing.assert_allclose(sa, sb, atol=1e-6)
