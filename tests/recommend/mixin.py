"""Shared checks every recommender passes, on a small synthetic shop with planted structure.

Use it from any test module in this folder (or put this folder on sys.path):

    from mixin import RecommenderTestMixin

    class TestMyModel(RecommenderTestMixin):
        model_name = "mymodel"                 # registry name
        config = {"epochs": 5}                  # fast settings for the fixture
        min_hr10 = 0.4                          # test HR@10 the model must reach on the fixture
        beats_popularity = True                 # must clearly beat popularity (by `margin`)

The fixture: users belong to one of a few clusters and walk through their cluster's items in a
fixed cyclic order (item t is followed by item t + 1), with a little noise towards globally
popular items. Collaborative models find the cluster, sequential models the successor, content
models the cluster attribute; popularity finds none of these.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
import pytest
import scipy.sparse as sp

from shoprec.evaluation.protocols import LeaveOneOut, evaluate_holdout, leave_one_out
from shoprec.recommend.base import Recommender

N_CLUSTERS = 6
ITEMS_PER_CLUSTER = 25
N_USERS = 360


def planted_sequences(seed: int = 7) -> tuple[list[np.ndarray], int, sp.csr_matrix]:
    """(sequences, n_items, item_attributes): cluster walks with 10% popular-item noise.

    Attributes: column c = "category c" for cluster c's items, plus one of 5 random "brand" columns."""
    rng = np.random.default_rng(seed)
    n_items = N_CLUSTERS * ITEMS_PER_CLUSTER
    popular = rng.choice(n_items, 10, replace=False)
    sequences = []
    for user in range(N_USERS):
        cluster = user % N_CLUSTERS
        length = int(rng.integers(6, 13))
        start = int(rng.integers(ITEMS_PER_CLUSTER))
        walk = cluster * ITEMS_PER_CLUSTER + (start + np.arange(length)) % ITEMS_PER_CLUSTER
        noise = rng.random(length) < 0.1
        noise[-2:] = False  # keep targets on the planted walk so quality is measurable
        walk[noise] = rng.choice(popular, int(noise.sum()))
        sequences.append(walk.astype(np.int64))
    items = np.arange(n_items)
    categories = items // ITEMS_PER_CLUSTER
    brands = N_CLUSTERS + rng.integers(0, 5, n_items)
    attributes = sp.csr_matrix(
        (np.ones(2 * n_items, np.float32), (np.concatenate([items, items]), np.concatenate([categories, brands]))),
        shape=(n_items, N_CLUSTERS + 5),
    )
    return sequences, n_items, attributes


@lru_cache(maxsize=1)
def planted_split() -> LeaveOneOut:
    sequences, n_items, attributes = planted_sequences()
    return leave_one_out(sequences, n_items, item_attributes=attributes)


@lru_cache(maxsize=1)
def popularity_hr10() -> float:
    from shoprec.recommend.registry import create

    split = planted_split()
    return evaluate_holdout(create("pop").fit(split.train), split.test)["hr10"]


class RecommenderTestMixin:
    """Contract and quality checks; subclasses set `model_name` (and usually `config`, `min_hr10`)."""

    model_name: ClassVar[str] = ""
    config: ClassVar[dict[str, Any]] = {}
    min_hr10: ClassVar[float] = 0.3
    beats_popularity: ClassVar[bool] = True
    margin: ClassVar[float] = 0.1
    k: ClassVar[int] = 10

    @classmethod
    def make_model(cls, **extra: Any) -> Recommender:
        from shoprec.recommend.registry import create

        return create(cls.model_name, **{**cls.config, **extra})

    @pytest.fixture(scope="class")
    @classmethod
    def split(cls) -> LeaveOneOut:
        return planted_split()

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, split: LeaveOneOut) -> Recommender:
        return cls.make_model().fit(split.train, valid=split.valid)

    # -- quality -------------------------------------------------------------------------------
    def test_quality_on_planted_structure(self, fitted: Recommender, split: LeaveOneOut) -> None:
        metrics = evaluate_holdout(fitted, split.test)
        assert metrics["hr10"] >= self.min_hr10, f"{self.model_name}: test HR@10 {metrics['hr10']:.3f} < {self.min_hr10}"
        assert 0.0 <= metrics["ndcg10"] <= metrics["hr10"] <= metrics["hr20"] <= 1.0
        if self.beats_popularity:
            baseline = popularity_hr10()
            assert metrics["hr10"] >= baseline + self.margin, (
                f"{self.model_name}: HR@10 {metrics['hr10']:.3f} not clearly above popularity {baseline:.3f}")

    # -- contract ------------------------------------------------------------------------------
    def test_recommend_shapes_dtypes_and_order(self, fitted: Recommender, split: LeaveOneOut) -> None:
        users = np.arange(0, split.train.n_users, 7)
        ids, scores = fitted.recommend(users, k=self.k, history=split.test_history)
        assert ids.shape == scores.shape == (len(users), self.k)
        assert np.issubdtype(ids.dtype, np.integer) and scores.dtype == np.float32
        assert ((ids >= 0) & (ids < split.train.n_items)).all()
        assert (np.diff(scores, axis=1) <= 0).all(), "scores must be sorted best first"
        assert all(len(set(row)) == len(row) for row in ids.tolist()), "an item recommended twice to one user"

    def test_exclude_seen_excludes_history(self, fitted: Recommender, split: LeaveOneOut) -> None:
        users = np.arange(split.train.n_users)
        for history in (split.train, split.test_history):
            ids, scores = fitted.recommend(users, k=self.k, history=history)
            seen = history.seen
            finite = np.isfinite(scores)
            hits = np.asarray(seen[np.repeat(users, self.k), ids.ravel()]).ravel().reshape(ids.shape)
            assert not (hits.astype(bool) & finite).any(), "a seen item was recommended"

    def test_save_load_round_trip(self, fitted: Recommender, split: LeaveOneOut, tmp_path) -> None:
        users = np.arange(split.train.n_users)
        before_ids, before_scores = fitted.recommend(users, k=self.k, history=split.test_history)
        loaded = Recommender.load(fitted.save(tmp_path / "model"))
        assert type(loaded) is type(fitted) and loaded.config == fitted.config
        after_ids, after_scores = loaded.recommend(users, k=self.k, history=split.test_history)
        np.testing.assert_allclose(after_scores, before_scores, rtol=1e-5, atol=1e-6)
        same = (after_ids == before_ids).mean()
        assert same > 0.99, f"only {same:.3f} of recommendations survive save/load"
        default_ids, _ = loaded.recommend(users[:5], k=self.k)  # saved training history is the default
        np.testing.assert_array_equal(default_ids, fitted.recommend(users[:5], k=self.k)[0])

    def test_similar_items_exclude_the_item(self, fitted: Recommender, split: LeaveOneOut) -> None:
        items = np.arange(0, split.train.n_items, 5)
        try:
            ids, scores = fitted.similar_items(items, k=5)
        except NotImplementedError:
            assert fitted.item_vectors() is None
            return
        assert ids.shape == (len(items), 5)
        assert not (ids == items[:, None]).any(), "similar_items returned the query item"

    def test_query_vectors_reproduce_the_scores(self, fitted: Recommender, split: LeaveOneOut) -> None:
        # Serving retrieves a dot-product model's candidates from an HNSW graph over its scoring
        # table, with the user's query vector: that must be the same scoring, not an approximation.
        users = np.arange(0, split.train.n_users, 5)
        queries = fitted.query_vectors(users, split.train)
        if queries is None:
            assert type(fitted).query_vectors is Recommender.query_vectors  # declared unsupported
            return
        table = fitted.scoring_table()
        assert queries.shape == (len(users), table.shape[1]) and table.shape[0] == split.train.n_items
        np.testing.assert_allclose(queries @ table.T, fitted.score(users, split.train), rtol=1e-4, atol=1e-4)

    def test_sparse_scores_are_the_dense_scores(self, fitted: Recommender, split: LeaveOneOut) -> None:
        # The live path takes a sparse model's candidates from score_sparse: the nonzero dense scores.
        if not fitted.sparse_scores:
            with pytest.raises(NotImplementedError):
                fitted.score_sparse(0, split.train)
            return
        for user in range(0, split.train.n_users, 7):
            dense = fitted.score(np.array([user]), split.train)[0]
            ids, scores = fitted.score_sparse(user, split.train)
            assert len(np.unique(ids)) == len(ids)
            np.testing.assert_array_equal(np.sort(ids), np.flatnonzero(dense))
            np.testing.assert_allclose(scores, dense[ids], rtol=1e-5)

    def test_same_seed_same_recommendations(self, split: LeaveOneOut) -> None:
        users = np.arange(split.train.n_users)
        first = self.make_model(seed=3).fit(split.train).recommend(users, k=self.k)
        second = self.make_model(seed=3).fit(split.train).recommend(users, k=self.k)
        np.testing.assert_array_equal(first[0], second[0])
        np.testing.assert_allclose(first[1], second[1], rtol=1e-5)
