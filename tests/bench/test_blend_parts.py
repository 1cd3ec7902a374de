import numpy as np
import scipy.sparse as sp

from shoprec.bench.blend import attribute_vectors, intra_list_diversity, list_ranks, mmr_lists


def _vectors():
    # items 0,1,2 identical direction (same category); 3 and 4 orthogonal to them and each other
    v = np.array([[1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
    return v


def test_list_ranks():
    lists = np.array([[5, 3, 9], [1, 2, -1]])
    assert list_ranks(lists, np.array([9, 7])).tolist() == [2, np.inf]


def test_mmr_trades_relevance_for_diversity():
    lists = np.array([[0, 1, 2, 3, 4]])
    assert mmr_lists(lists, _vectors(), 1.0, k=3).tolist() == [[0, 1, 2]]
    diverse = mmr_lists(lists, _vectors(), 0.5, k=3)
    assert diverse.tolist() == [[0, 3, 4]]
    assert intra_list_diversity(diverse, _vectors()) > intra_list_diversity(lists[:, :3], _vectors())


def test_intra_list_diversity_bounds_and_chunking():
    v = _vectors()
    same = np.array([[0, 1, 2]])
    ortho = np.array([[0, 3, 4]])
    assert abs(intra_list_diversity(same, v)) < 1e-6
    assert abs(intra_list_diversity(ortho, v) - 1.0) < 1e-6
    many = np.repeat(np.vstack([same, ortho]), 3, axis=0)
    assert abs(intra_list_diversity(many, v, chunk=4) - 0.5) < 1e-6


def test_attribute_vectors_normalised():
    a = sp.csr_matrix(np.array([[1, 1, 0], [0, 0, 0]]))
    v = attribute_vectors(a, 2)
    assert np.allclose(np.linalg.norm(v[0]), 1.0) and np.allclose(v[1], 0)

