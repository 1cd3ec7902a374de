"""Every classic model through the shared RecommenderTestMixin, plus model-specific checks."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from mixin import RecommenderTestMixin, planted_split

from shoprec.evaluation.protocols import evaluate_holdout
from shoprec.recommend.dataset import Interactions
from shoprec.recommend.registry import MODELS, create


class TestPopularity(RecommenderTestMixin):
    model_name = "pop"
    min_hr10 = 0.05
    beats_popularity = False


class TestDecayedPopularity(RecommenderTestMixin):
    model_name = "pop_decay"
    min_hr10 = 0.05
    beats_popularity = False


class TestItemKNN(RecommenderTestMixin):
    model_name = "itemknn"
    min_hr10 = 0.85


class TestItemKNNPearson(RecommenderTestMixin):
    model_name = "itemknn_pearson"
    min_hr10 = 0.85


class TestUserKNN(RecommenderTestMixin):
    model_name = "userknn"
    config = {"neighbours": 30}
    min_hr10 = 0.85


class TestALS(RecommenderTestMixin):
    model_name = "als"
    config = {"factors": 16, "iterations": 8, "num_threads": 1}
    min_hr10 = 0.85


class TestBPR(RecommenderTestMixin):
    model_name = "bpr"
    config = {"factors": 16, "iterations": 100, "eval_every": 20, "num_threads": 1}
    min_hr10 = 0.7


class TestContent(RecommenderTestMixin):
    model_name = "content"
    min_hr10 = 0.45


class TestLightGCN(RecommenderTestMixin):
    model_name = "lightgcn"
    config = {"dim": 16, "epochs": 40, "batch_size": 512, "learning_rate": 0.02, "eval_every": 10, "num_threads": 1}
    min_hr10 = 0.75


def test_registry_names_and_unknown_model() -> None:
    for name in ("pop", "pop_decay", "itemknn", "itemknn_pearson", "userknn", "als", "bpr", "content", "lightgcn"):
        assert name in MODELS
        assert create(name).name == name
    with pytest.raises(KeyError, match="unknown model"):
        create("no-such-model")
    with pytest.raises(Exception, match="no_such_field"):
        create("itemknn", no_such_field=1)


def test_decayed_popularity_prefers_recent_items() -> None:
    # item 0 is consumed early by three users, item 1 last by two users
    sequences = [[0, 2, 3, 1], [0, 3, 2, 1], [0, 2, 3, 4]]
    data = Interactions.from_sequences(sequences, 5)
    plain = create("pop").fit(data)
    decayed = create("pop_decay", half_life=1.0).fit(data)
    assert plain.popularity[0] > plain.popularity[1]
    assert decayed.popularity[1] > decayed.popularity[0]
    np.testing.assert_allclose(decayed.popularity[1], 2.0)          # newest events weigh 1
    np.testing.assert_allclose(decayed.popularity[0], 3 * 0.5 ** 3)  # three events back


def test_itemknn_cosine_matches_hand_computed_similarity() -> None:
    # users x items: u0 {0,1}, u1 {0,1,2}, u2 {2}
    data = Interactions(3, 3, users=[0, 0, 1, 1, 1, 2], items=[0, 1, 0, 1, 2, 2])
    model = create("itemknn", neighbours=None, shrinkage=0.0).fit(data)
    expected = np.array([[0, 1, 1 / 2], [1, 0, 1 / 2], [1 / 2, 1 / 2, 0]], np.float32)
    np.testing.assert_allclose(model.similarity.toarray(), expected, rtol=1e-6)
    shrunk = create("itemknn", neighbours=None, shrinkage=2.0).fit(data)
    np.testing.assert_allclose(shrunk.similarity.toarray()[0, 1], 2 / (2 + 2), rtol=1e-6)
    pruned = create("itemknn", neighbours=1).fit(data)
    assert (np.diff(pruned.similarity.indptr) <= 1).all()


def test_itemknn_similar_items_are_the_densest_rows_top_k() -> None:
    """Neighbours read from the stored rows equal the top-k of the densified rows (ties aside)."""
    from shoprec.recommend.base import top_k

    split = planted_split()
    model = create("itemknn", neighbours=8).fit(split.train)
    items = np.arange(split.train.n_items)
    ids, scores = model.similar_items(items, k=12)
    dense = model.similarity[items].toarray().astype(np.float32)
    dense[items, items] = -np.inf
    _, expected = top_k(dense, 12)
    found = np.isfinite(scores)
    assert found.any() and not found.all()  # 8 neighbours kept per item: rows end in -inf padding
    np.testing.assert_allclose(scores[found], expected[found])
    assert (ids[~found] == -1).all() and (expected[~found] <= 0).all()  # the dense rows' filler scored 0
    for row in range(len(items)):
        got = ids[row][found[row]]
        assert set(got.tolist()) <= set(np.flatnonzero(dense[row] > -np.inf).tolist())
        assert np.all(dense[row, got] == scores[row][found[row]])


def test_pearson_similarity_matches_numpy_corrcoef() -> None:
    rng = np.random.default_rng(0)
    dense = (rng.random((40, 8)) < 0.3).astype(np.float32)
    users, items = dense.nonzero()
    model = create("itemknn_pearson", neighbours=None, shrinkage=0.0).fit(Interactions(40, 8, users, items))
    expected = np.corrcoef(dense.T)
    np.fill_diagonal(expected, 0)
    expected = np.where(expected > 0, expected, 0)
    np.testing.assert_allclose(model.similarity.toarray(), expected, atol=1e-5)


def test_userknn_scores_fresh_history_without_training_index() -> None:
    split = planted_split()
    model = create("userknn", neighbours=20).fit(split.train)
    fresh = Interactions.from_sequences([split.test_history.sequences[0]], split.train.n_items)
    scores = model.score(np.array([0]), fresh)
    assert scores.shape == (1, split.train.n_items)
    cluster_items = np.arange(25) + 25 * (0 % 6)
    top = np.argsort(-scores[0])[:10]
    assert np.isin(top, cluster_items).mean() >= 0.8


def test_als_folds_in_unseen_user() -> None:
    split = planted_split()
    model = create("als", factors=16, iterations=8, num_threads=1).fit(split.train)
    fresh = Interactions.from_sequences([split.test_history.sequences[1]], split.train.n_items)
    ids, _ = model.recommend([0], k=10, history=fresh)
    assert np.isin(ids[0], np.arange(25, 50)).mean() >= 0.7


def test_content_uses_text_embeddings_when_given() -> None:
    # items 0-3 and 4-7 have orthogonal precomputed embeddings, no attributes
    embeddings = np.zeros((8, 2), np.float32)
    embeddings[:4, 0] = 1
    embeddings[4:, 1] = 1
    data = Interactions.from_sequences([[0, 1], [4, 5]], 8, meta={"item_embeddings": embeddings})
    model = create("content", use_attributes=False).fit(data)
    ids, _ = model.recommend([0, 1], k=2)
    assert set(ids[0]) == {2, 3} and set(ids[1]) == {6, 7}
    with pytest.raises(ValueError, match="no item attributes or texts"):
        create("content", use_text=False).fit(data)


def test_models_report_validation_ndcg_when_valid_given() -> None:
    split = planted_split()
    model = create("itemknn").fit(split.train, valid=split.valid)
    assert model.fit_report["valid_ndcg10"] == pytest.approx(evaluate_holdout(model, split.valid, ks=(10,))["ndcg10"])


def test_bpr_refuses_unknown_users() -> None:
    split = planted_split()
    model = create("bpr", factors=8, iterations=5, eval_every=5, num_threads=1).fit(split.train)
    with pytest.raises(IndexError, match="training users"):
        model.score(np.array([split.train.n_users + 5]), split.train)


def test_prune_rows_keeps_largest_per_row() -> None:
    from shoprec.recommend.neighbours import prune_rows

    matrix = sp.csr_matrix(np.array([[0.1, 0.5, 0.3, 0.0], [0.0, 0.0, 0.2, 0.9]], np.float32))
    pruned = prune_rows(matrix, 2).toarray()
    np.testing.assert_allclose(pruned, [[0, 0.5, 0.3, 0], [0, 0, 0.2, 0.9]], rtol=1e-6)
    assert prune_rows(matrix, 1).nnz == 2
