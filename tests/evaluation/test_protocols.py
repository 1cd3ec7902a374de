"""Leave-one-out split and full-ranking evaluation on hand-computed cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shoprec.evaluation.protocols import (
    evaluate_full_ranking,
    full_ranking_ranks,
    leave_one_out,
    metrics_from_ranks,
)
from shoprec.recommend.base import Recommender
from shoprec.recommend.dataset import Interactions

SCORES = np.array([0.9, 0.8, 0.5, 0.5, 0.7, 0.1], np.float32)
SEQUENCES = [[0, 1, 2, 3], [4, 4], [5]]


class FixedScores(Recommender):
    """Scores every user with the same vector (enough to hand-compute ranks)."""

    name = "fixed"

    def _fit(self, data, valid):
        pass

    def score(self, users, history):
        return np.tile(SCORES, (len(users), 1))

    def _save(self, path):
        pass

    def _load(self, path):
        pass


def test_leave_one_out_parts() -> None:
    split = leave_one_out(SEQUENCES, 6)
    assert [s.tolist() for s in split.train.sequences] == [[0, 1], [], []]
    assert split.valid_history is split.train
    assert split.valid_users.tolist() == [0, 1] and split.valid_targets.tolist() == [2, 4]
    # the test history includes the validation item
    assert [s.tolist() for s in split.test_history.sequences] == [[0, 1, 2], [4], []]
    assert split.test_users.tolist() == [0, 1, 2] and split.test_targets.tolist() == [3, 4, 5]


def test_ranks_ties_and_repeated_target() -> None:
    split = leave_one_out(SEQUENCES, 6)
    model = FixedScores().fit(split.train)
    # user 0, test: history {0,1,2} removed; only item 4 (0.7) beats target 3 (0.5)
    # user 1, test: target 4 is in the history -> a miss (rank inf)
    # user 2, test: empty history; every other item beats target 5 (0.1)
    test_ranks = full_ranking_ranks(model, split.test_history, split.test_targets, split.test_users)
    assert test_ranks.tolist() == [1, np.inf, 5]
    # user 0, valid: target 2 (0.5) ties with unseen item 3: ahead of it by the protocol, behind it when pessimistic
    valid = dict(history=split.valid_history, targets=split.valid_targets, users=split.valid_users)
    assert full_ranking_ranks(model, **valid).tolist() == [1, 2]
    assert full_ranking_ranks(model, **valid, ties="pessimistic").tolist() == [2, 2]
    with pytest.raises(ValueError, match="ties"):
        full_ranking_ranks(model, **valid, ties="random")


def test_metrics_from_hand_computed_ranks() -> None:
    split = leave_one_out(SEQUENCES, 6)
    model = FixedScores().fit(split.train)
    metrics = evaluate_full_ranking(model, split.test_history, split.test_targets, split.test_users, ks=(2, 10))
    assert metrics["hr2"] == pytest.approx(1 / 3)
    assert metrics["ndcg2"] == pytest.approx((1 / np.log2(3)) / 3)
    assert metrics["hr10"] == pytest.approx(2 / 3)  # the repeated target stays a miss even at k > n_items - 1
    assert metrics["ndcg10"] == pytest.approx((1 / np.log2(3) + 1 / np.log2(7)) / 3)
    assert metrics_from_ranks(np.array([0, 0]), ks=(1,)) == {"hr1": 1.0, "ndcg1": 1.0}


def test_batches_do_not_change_ranks() -> None:
    rng = np.random.default_rng(1)
    sequences = [rng.integers(0, 30, rng.integers(3, 8)).tolist() for _ in range(50)]
    split = leave_one_out(sequences, 30)

    class Random(FixedScores):
        def score(self, users, history):
            return np.random.default_rng(0).random((100, 30))[users]

    model = Random().fit(split.train)
    whole = full_ranking_ranks(model, split.test_history, split.test_targets, split.test_users, batch_size=1000)
    pieces = full_ranking_ranks(model, split.test_history, split.test_targets, split.test_users, batch_size=7)
    np.testing.assert_array_equal(whole, pieces)
    # reference: dense computation over the whole matrix
    scores = np.random.default_rng(0).random((100, 30))[:50].astype(np.float64)
    scores[split.test_history.seen.toarray() > 0] = -np.inf
    target = scores[np.arange(50), split.test_targets]
    expected = np.where(np.isneginf(target), np.inf, (scores > target[:, None]).sum(1))
    np.testing.assert_array_equal(whole, expected)


def test_score_shape_is_checked() -> None:
    class Wrong(FixedScores):
        def score(self, users, history):
            return np.zeros((len(users), 3))

    split = leave_one_out(SEQUENCES, 6)
    with pytest.raises(ValueError, match="expected"):
        full_ranking_ranks(Wrong().fit(split.train), split.test_history, split.test_targets, split.test_users)


DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "amazon"


@pytest.mark.realdata
def test_pop_and_itemknn_reproduce_reference_checker_on_beauty() -> None:
    """protocol_check.py prints pop .0141 / .0063 and item-kNN .0571 / .0328 (HR@10 / NDCG@10)."""
    if not (DATA / "Beauty.txt").exists():
        pytest.skip(f"{DATA / 'Beauty.txt'} not found")
    from shoprec.data.loaders import load_s3rec
    from shoprec.evaluation.protocols import evaluate_holdout
    from shoprec.recommend.registry import create

    data = load_s3rec(DATA, "Beauty")
    split = leave_one_out(data.sequences, data.n_items)
    pop = create("pop").fit(split.test_history)  # the checker counts popularity over the test history
    metrics = evaluate_holdout(pop, split.test, ks=(10,))
    assert metrics["hr10"] == pytest.approx(0.0141, abs=5e-4) and metrics["ndcg10"] == pytest.approx(0.0063, abs=5e-4)
    knn = create("itemknn", neighbours=None, shrinkage=0.0, history_half_life=None).fit(split.train)
    metrics = evaluate_holdout(knn, split.test, ks=(10,))
    assert metrics["hr10"] == pytest.approx(0.0571, abs=5e-4) and metrics["ndcg10"] == pytest.approx(0.0328, abs=5e-4)
