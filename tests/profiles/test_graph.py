import numpy as np
import scipy.sparse as sp

from shoprec.profiles.graph import ProductGraph, co_occurrence, top_per_row

ITEMS = ["phone", "case", "charger", "phone2", "pan", "lid"]
CATEGORY = np.array(["Phones", "Accessories", "Accessories", "Phones", "Cookware", "Cookware"])
BRAND = np.array(["A", "A", "B", "B", "C", "C"])


def _graph(vectors=None):
    # sessions: 0 views phone+phone2 (comparing), 1 buys phone+case+charger, 2 buys pan+lid, 3 views phone+phone2 again
    items = np.array([0, 3, 0, 1, 2, 4, 5, 0, 3])
    sessions = np.array([0, 0, 1, 1, 1, 2, 2, 3, 3])
    users = np.array([0, 0, 1, 1, 1, 2, 2, 3, 3])
    types = np.array(["view", "view", "purchase", "purchase", "add_to_cart", "purchase", "purchase", "view", "view"])
    times = np.arange(len(items), dtype=float) * 60
    return ProductGraph.build(ITEMS, items, sessions, users, types, times, BRAND, CATEGORY, vectors)


def test_co_occurrence_counts_shared_groups_without_self_loops():
    c = co_occurrence(np.array([0, 0, 1, 1, 1]), np.array([0, 1, 0, 1, 2]), 3).toarray()
    assert np.all(np.diag(c) == 0)
    assert c[0, 1] > c[0, 2] > 0  # 0-1 share two groups, 0-2 one
    assert np.allclose(c, c.T)


def test_top_per_row_keeps_largest():
    m = sp.csr_matrix(np.array([[0, 5, 1, 3], [2, 0, 0, 0]], dtype=np.float32))
    kept = top_per_row(m, 2).toarray()
    assert kept[0].tolist() == [0, 5, 0, 3] and kept[1].tolist() == [2, 0, 0, 0]


def test_edge_types_separate_substitutes_and_complements():
    g = _graph()
    assert {i for i, _ in g.neighbours("phone", "co_buy", 5)} == {"case", "charger"}
    assert g.neighbours("phone", "co_view", 1)[0][0] == "phone2"
    assert g.neighbours("phone", "substitute", 1)[0][0] == "phone2"
    assert {i for i, _ in g.neighbours("phone", "complement", 5)} == {"case", "charger"}
    assert g.neighbours("pan", "same_category", 1)[0][0] == "lid"
    assert g.neighbours("pan", "same_brand", 1)[0][0] == "lid"
    assert g.neighbours("unknown", "co_buy") == []


def test_save_load_and_incremental_similar_edges(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(6, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    g = _graph(vectors)
    g.save(tmp_path / "g")
    loaded = ProductGraph.load(tmp_path / "g")
    assert loaded.neighbours("phone", "co_view", 3) == g.neighbours("phone", "co_view", 3)
    new_vec = vectors[4:5] * 0.99 + 0.01  # nearly the pan
    new_vec /= np.linalg.norm(new_vec)
    loaded.add_items(["pan-new"], new_vec, np.vstack([vectors, new_vec]))
    assert loaded.neighbours("pan-new", "similar", 1)[0][0] == "pan"
    assert loaded.neighbours("pan-new", "co_buy") == []


def test_graph_generator_sums_the_seeds_edges_as_a_dense_row_would():
    """Candidates from the seeds' sparse rows alone: the same items and scores as summing dense
    rows over the catalog (weighted by recency for a session), the seeds themselves left out."""
    from shoprec.ranking.serve import GraphGenerator
    from shoprec.recommend.generators import Request, _recency_weights

    rng = np.random.default_rng(3)
    m = sp.random(300, 300, density=0.05, random_state=4, dtype=np.float32, format="csr")
    graph = ProductGraph({"co_view": m}, [str(i) for i in range(300)])
    generator = GraphGenerator("co_view", graph)
    for _ in range(20):
        seeds = rng.choice(300, 4, replace=False)
        for req, weights in ((Request(seeds=seeds), np.ones(4)), (Request(recent=seeds), _recency_weights(4))):
            dense = np.asarray(m[seeds].T @ weights).ravel()
            dense[seeds] = 0.0
            expected = np.flatnonzero(dense > 0)
            ids, scores = generator.candidates(req, 300)
            assert sorted(ids.tolist()) == expected.tolist() and (np.diff(scores) <= 0).all()
            np.testing.assert_allclose(scores, dense[ids], rtol=1e-5)
            top, _ = generator.candidates(req, 5)
            np.testing.assert_array_equal(top, ids[:5])
