"""Splits keep the index space and never leak; evaluate() works for any Recommender, both protocols."""

from __future__ import annotations

import numpy as np
import pytest

from shoprec.evaluation.evaluate import evaluate
from shoprec.evaluation.splits import (
    global_temporal_split,
    leave_one_out_split,
    make_split,
    per_user_temporal_split,
    random_split,
)
from shoprec.recommend.dataset import Interactions
from shoprec.recommend.itemknn import ItemKNN
from shoprec.recommend.popularity import Popularity


def clustered_data(n_users: int = 120, n_clusters: int = 6, items_per_cluster: int = 10, length: int = 8, seed: int = 0) -> Interactions:
    """Each user shops inside one cluster of items: co-occurrence is informative, popularity is not."""
    rng = np.random.default_rng(seed)
    sequences = []
    for user in range(n_users):
        cluster = user % n_clusters
        sequences.append(cluster * items_per_cluster + rng.choice(items_per_cluster, size=length, replace=False))
    data = Interactions.from_sequences(sequences, n_items=n_clusters * items_per_cluster)
    data.timestamps = data.timestamps + rng.random(len(data)) * 0.1 + np.repeat(rng.random(n_users) * 3, length)
    return data


def test_leave_one_out_delegates_to_protocols():
    data = Interactions.from_sequences([[0, 1, 2, 3], [4, 5], [6]], n_items=7)
    split = leave_one_out_split(data)
    assert split.train.sequences[0].tolist() == [0, 1]
    assert split.history.sequences[0].tolist() == [0, 1, 2]
    users, relevant = split.test_relevant()
    assert users.tolist() == [0, 1, 2]
    assert [r.tolist() for r in relevant] == [[3], [5], [6]]
    assert split.train.n_items == 7 and split.train.n_users == 3


def test_global_temporal_split_puts_the_future_in_test():
    data = clustered_data()
    split = global_temporal_split(data, test_fraction=0.25)
    assert split.train.timestamps.max() < split.test.timestamps.min()
    assert len(split.train) + len(split.test) == len(data)
    assert abs(len(split.test) / len(data) - 0.25) < 0.02


def test_per_user_temporal_split_holds_out_each_users_latest():
    data = Interactions(n_users=2, n_items=10, users=[0, 0, 0, 0, 0, 1, 1], items=[0, 1, 2, 3, 4, 5, 6],
                        timestamps=[5, 1, 4, 2, 3, 9, 8])
    split = per_user_temporal_split(data, test_fraction=0.4)
    # User 0: 5 events -> 2 latest (times 5 and 4: items 0, 2); user 1: 2 events -> 1 (time 9: item 5).
    assert sorted(zip(split.test.users.tolist(), split.test.items.tolist())) == [(0, 0), (0, 2), (1, 5)]
    assert sorted(split.train.items.tolist()) == [1, 3, 4, 6]


def test_random_split_is_seeded_and_rejects_bad_fractions():
    data = clustered_data()
    a, b = random_split(data, 0.3, seed=1), random_split(data, 0.3, seed=1)
    assert np.array_equal(a.test.items, b.test.items)
    assert not np.array_equal(a.test.items, random_split(data, 0.3, seed=2).test.items)
    with pytest.raises(ValueError, match="test_fraction"):
        random_split(data, 1.5)
    with pytest.raises(ValueError, match="unknown split"):
        make_split(data, "bogus")


def test_evaluate_full_ranking_hand_checked_popularity():
    # Item popularity in train: 0 -> 3, 1 -> 2, 2 -> 1; users' held-out items 1 (user 0), 3 (user 1).
    data = Interactions.from_sequences([[0, 2, 9, 1], [0, 1, 9, 3], [0, 1, 9, 4]], n_items=5 + 5)
    split = leave_one_out_split(data)
    model = Popularity().fit(split.train)
    result = evaluate(model, split, "full", ks=(1,))
    # User 0 history {0, 2, 9}: the most popular unseen item is 1, the target -> hit.
    # Users 1 and 2 (history {0, 1, 9}): the top unseen item is 2 (popularity 1), not 3 / 4 -> misses.
    assert result["hr1"] == pytest.approx(1 / 3)
    assert result["ndcg1"] == pytest.approx(1 / 3)
    assert result["precision1"] == pytest.approx(1 / 3)
    assert result["protocol"] == "full" and result["n_users"] == 3


def test_evaluate_ranks_a_cooccurrence_model_above_popularity_under_both_protocols():
    data = clustered_data()
    split = leave_one_out_split(data)
    knn = ItemKNN().fit(split.train)
    pop = Popularity().fit(split.train)
    full_knn, full_pop = evaluate(knn, split, "full"), evaluate(pop, split, "full")
    assert full_knn["hr10"] > full_pop["hr10"] + 0.3
    sampled = evaluate(knn, split, "sampled", n_negatives=20, seed=3)
    assert sampled["protocol"] == "sampled"
    assert all(key.startswith("sampled20_") for key in sampled if key[:2] in ("hr", "nd", "mr"))
    assert "hr10" not in sampled and sampled["sampled20_hr10"] >= full_knn["hr10"]
    assert 0 <= sampled["sampled20_ndcg10"] <= 1
    with pytest.raises(ValueError, match="protocol"):
        evaluate(knn, split, "exhaustive")


def test_evaluate_on_a_temporal_split_reports_list_metrics():
    data = clustered_data()
    split = per_user_temporal_split(data, 0.25)
    result = evaluate(ItemKNN().fit(split.train), split, "full", ks=(5,), max_users=50)
    assert result["n_users"] == 50
    for key in ("precision5", "recall5", "map5", "mrr5", "coverage5", "novelty5"):
        assert key in result
    assert result["recall5"] > 0.3
