"""Hand-computed cases and property tests for the list, beyond-accuracy and prediction metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from shoprec.evaluation import metrics as m

# User 0: relevant {1, 3}, list [1, 2, 3]; user 1: relevant {5}, list [4, 6, 5]; user 2: nothing relevant.
RECOMMENDED = np.array([[1, 2, 3], [4, 6, 5], [7, 8, 9]])
RELEVANT = [{1, 3}, {5}, set()]


def test_precision_recall_f1_hand_computed():
    # Users without relevant items are left out: averages over users 0 and 1.
    assert m.precision_at_k(RECOMMENDED, RELEVANT, 3) == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert m.recall_at_k(RECOMMENDED, RELEVANT, 3) == pytest.approx((1 + 1) / 2)
    assert m.recall_at_k(RECOMMENDED, RELEVANT, 1) == pytest.approx((0.5 + 0) / 2)
    f1_user0 = 2 * (2 / 3) * 1 / (2 / 3 + 1)
    f1_user1 = 2 * (1 / 3) * 1 / (1 / 3 + 1)
    assert m.f1_at_k(RECOMMENDED, RELEVANT, 3) == pytest.approx((f1_user0 + f1_user1) / 2)


def test_hit_rate_mrr_map_hand_computed():
    assert m.list_hit_rate_at_k(RECOMMENDED, RELEVANT, 2) == pytest.approx(0.5)
    assert m.list_mrr_at_k(RECOMMENDED, RELEVANT, 3) == pytest.approx((1 + 1 / 3) / 2)
    ap0 = (1 / 1 + 2 / 3) / 2
    ap1 = (1 / 3) / 1
    assert m.map_at_k(RECOMMENDED, RELEVANT, 3) == pytest.approx((ap0 + ap1) / 2)


def test_binary_ndcg_hand_computed():
    dcg0 = 1 + 1 / math.log2(4)
    idcg0 = 1 + 1 / math.log2(3)
    dcg1 = 1 / math.log2(4)
    assert m.list_ndcg_at_k(RECOMMENDED, RELEVANT, 3) == pytest.approx((dcg0 / idcg0 + dcg1) / 2)


def test_list_ndcg_agrees_with_rank_ndcg_for_one_target():
    rng = np.random.default_rng(0)
    recommended = np.array([rng.permutation(50)[:10] for _ in range(30)])
    targets = rng.integers(0, 50, size=30)
    ranks = np.array([np.flatnonzero(row == t)[0] if t in row else np.inf for row, t in zip(recommended, targets)])
    relevant = [{int(t)} for t in targets]
    assert m.list_ndcg_at_k(recommended, relevant, 10) == pytest.approx(m.ndcg_at_k(ranks, 10))
    assert m.list_hit_rate_at_k(recommended, relevant, 10) == pytest.approx(m.hit_rate_at_k(ranks, 10))
    assert m.list_mrr_at_k(recommended, relevant, 10) == pytest.approx(m.mrr_at_k(ranks, 10))


def test_graded_ndcg_hand_computed_and_sparse_input():
    recommended = np.array([[2, 0, 1]])
    grades = [{0: 3, 1: 2, 2: 1}]
    dcg = (2**1 - 1) / 1 + (2**3 - 1) / math.log2(3) + (2**2 - 1) / 2
    idcg = (2**3 - 1) / 1 + (2**2 - 1) / math.log2(3) + (2**1 - 1) / 2
    assert m.graded_ndcg_at_k(recommended, grades, 3) == pytest.approx(dcg / idcg)
    linear = (1 + 3 / math.log2(3) + 2 / 2) / (3 + 2 / math.log2(3) + 1 / 2)
    assert m.graded_ndcg_at_k(recommended, grades, 3, gain="linear") == pytest.approx(linear)
    matrix = sp.csr_matrix(np.array([[3.0, 2.0, 1.0]]))
    assert m.graded_ndcg_at_k(recommended, matrix, 3) == pytest.approx(dcg / idcg)
    with pytest.raises(ValueError, match="gain"):
        m.graded_ndcg_at_k(recommended, grades, 3, gain="cubic")


def test_duplicates_and_empty_slots_earn_nothing():
    recommended = np.array([[1, 1, -1]])
    assert m.precision_at_k(recommended, [{1, 2}], 3) == pytest.approx(1 / 3)
    assert m.recall_at_k(recommended, [{1, 2}], 3) == pytest.approx(0.5)


def test_bad_shapes_are_reported():
    with pytest.raises(ValueError, match="n_users, k"):
        m.precision_at_k(np.array([1, 2, 3]), [{1}], 2)
    with pytest.raises(ValueError, match="rows"):
        m.precision_at_k(np.array([[1, 2]]), sp.csr_matrix((2, 5)), 2)


def test_beyond_accuracy_hand_computed():
    recommended = np.array([[0, 1], [0, 2]])
    assert m.catalog_coverage(recommended, n_items=4) == pytest.approx(3 / 4)
    popularity = np.array([8.0, 4.0, 2.0, 2.0])
    expected_novelty = np.mean([-math.log2(8 / 16), -math.log2(4 / 16), -math.log2(8 / 16), -math.log2(2 / 16)])
    assert m.novelty(recommended, popularity) == pytest.approx(expected_novelty)
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    # Pair (0, 1) is orthogonal: diversity 1; pair (0, 2) identical: diversity 0.
    assert m.intra_list_diversity(recommended, vectors) == pytest.approx(0.5)
    # Recommendation counts [2, 1, 1, 0]: Gini = sum((2i - n - 1) x_sorted) / (n sum x).
    assert m.recommendation_gini(recommended, 4) == pytest.approx(((-3) * 0 + (-1) * 1 + 1 * 1 + 3 * 2) / (4 * 4))
    # Popularity percentiles (average ranks for ties): item0 = 1, item1 = 2/3, item2 = item3 = 1/6.
    assert m.popularity_percentile(recommended, popularity) == pytest.approx((1 + 2 / 3 + 1 + 1 / 6) / 4)


def test_serendipity_counts_relevant_unexpected_only():
    recommended = np.array([[0, 5, 6], [0, 1, 7]])
    relevant = [{0, 5}, {0, 1, 7}]
    popular = np.array([0, 1])
    assert m.serendipity(recommended, relevant, popular) == pytest.approx((1 / 3 + 1 / 3) / 2)
    per_user = np.array([[0, 9], [7, 9]])
    assert m.serendipity(recommended, relevant, per_user) == pytest.approx((1 / 3 + 2 / 3) / 2)


def test_prediction_metrics_hand_computed():
    assert m.rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(math.sqrt(4 / 3))
    assert m.mae([1, 2, 3], [1, 2, 5]) == pytest.approx(2 / 3)
    # Pairs (pos, neg): (0.8, 0.3) win, (0.8, 0.8) tie, (0.4, 0.3) win, (0.4, 0.8) loss -> 2.5 / 4.
    assert m.auc([1, 1, 0, 0], [0.8, 0.4, 0.3, 0.8]) == pytest.approx(2.5 / 4)
    assert m.log_loss([1, 0], [0.9, 0.2]) == pytest.approx(-(math.log(0.9) + math.log(0.8)) / 2)
    with pytest.raises(ValueError, match="positive"):
        m.auc([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="differ"):
        m.rmse([1, 2], [1])


# -- properties ---------------------------------------------------------------------------------

N_ITEMS = 30


@st.composite
def lists_and_relevance(draw):
    n_users = draw(st.integers(1, 6))
    k = draw(st.integers(1, 8))
    rows = [draw(st.permutations(range(N_ITEMS)))[:k] for _ in range(n_users)]
    relevant = [set(draw(st.lists(st.integers(0, N_ITEMS - 1), min_size=1, max_size=6))) for _ in range(n_users)]
    return np.array(rows), relevant, k


LIST_METRICS = [m.precision_at_k, m.recall_at_k, m.f1_at_k, m.list_hit_rate_at_k, m.list_ndcg_at_k, m.list_mrr_at_k, m.map_at_k]


@settings(max_examples=60, deadline=None)
@given(lists_and_relevance())
def test_list_metrics_are_bounded(case):
    recommended, relevant, k = case
    for metric in LIST_METRICS + [m.graded_ndcg_at_k]:
        value = metric(recommended, relevant, k)
        assert 0.0 <= value <= 1.0 + 1e-12, metric.__name__


@settings(max_examples=60, deadline=None)
@given(lists_and_relevance())
def test_perfect_ranking_scores_one(case):
    _, relevant, k = case
    # Put every user's relevant items first, then fillers; k >= |relevant| makes recall perfect too.
    k = max(k, max(len(r) for r in relevant))
    perfect = np.array([sorted(r) + [i for i in range(N_ITEMS) if i not in r][: k - len(r)] for r in relevant])
    for metric in (m.recall_at_k, m.list_hit_rate_at_k, m.list_ndcg_at_k, m.list_mrr_at_k, m.map_at_k):
        assert metric(perfect, relevant, k) == pytest.approx(1.0), metric.__name__


@settings(max_examples=60, deadline=None)
@given(lists_and_relevance(), st.integers(0, 7))
def test_swapping_a_hit_forward_never_hurts(case, position):
    recommended, relevant, k = case
    # Move a relevant item up past an irrelevant one: rank-aware metrics must not decrease.
    improved = recommended.copy()
    for u, row in enumerate(improved):
        for p in range(1, k):
            if row[p] in relevant[u] and row[p - 1] not in relevant[u]:
                row[p - 1], row[p] = row[p], row[p - 1]
                break
    for metric in (m.list_ndcg_at_k, m.list_mrr_at_k, m.map_at_k):
        assert metric(improved, relevant, k) >= metric(recommended, relevant, k) - 1e-12, metric.__name__
    # Position-blind metrics do not change at all.
    for metric in (m.precision_at_k, m.recall_at_k, m.list_hit_rate_at_k):
        assert metric(improved, relevant, k) == pytest.approx(metric(recommended, relevant, k))


@settings(max_examples=60, deadline=None)
@given(lists_and_relevance(), st.randoms(use_true_random=False))
def test_user_order_and_within_list_order_invariances(case, random):
    recommended, relevant, k = case
    order = list(range(len(relevant)))
    random.shuffle(order)
    shuffled_users = recommended[order]
    shuffled_relevant = [relevant[i] for i in order]
    for metric in LIST_METRICS:
        assert metric(shuffled_users, shuffled_relevant, k) == pytest.approx(metric(recommended, relevant, k))
    # Precision/recall/hit rate ignore order within the list.
    within = recommended[:, ::-1]
    for metric in (m.precision_at_k, m.recall_at_k, m.list_hit_rate_at_k):
        assert metric(within, relevant, k) == pytest.approx(metric(recommended, relevant, k))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 100), min_size=1, max_size=50))
def test_gini_bounds_and_extremes(values):
    g = m.gini_index(np.array(values))
    assert -1e-12 <= g <= 1.0
    assert m.gini_index(np.full(len(values), 3.0)) == pytest.approx(0.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 20)), min_size=2, max_size=40))
def test_auc_bounds_and_monotone_transform_invariance(pairs):
    labels = np.array([p[0] for p in pairs])
    scores = np.array([p[1] for p in pairs], dtype=float)
    if labels.min() == labels.max():
        return
    value = m.auc(labels, scores)
    assert 0.0 <= value <= 1.0
    assert m.auc(labels, scores * 3 + 1) == pytest.approx(value)
    assert m.auc(labels, labels.astype(float)) == pytest.approx(1.0)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 6), st.integers(1, 5), st.integers(0, 1000))
def test_diversity_and_coverage_bounds(k, n_users, seed):
    rng = np.random.default_rng(seed)
    vectors = rng.random((20, 4))  # non-negative: cosine in [0, 1]
    recommended = np.array([rng.permutation(20)[:k] for _ in range(n_users)])
    assert 0.0 <= m.intra_list_diversity(recommended, vectors) <= 1.0
    assert 0.0 < m.catalog_coverage(recommended, 20) <= 1.0
    assert m.novelty(recommended, rng.integers(1, 50, 20)) >= 0.0
