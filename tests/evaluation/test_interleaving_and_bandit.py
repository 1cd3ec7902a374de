"""Team-draft interleaving credit on hand-made cases and its sensitivity; bandit regret."""

from __future__ import annotations

import numpy as np
import pytest

from shoprec.evaluation import interleaving as il
from shoprec.evaluation.bandit import LinUCB, RegretTracker, ThompsonSampling, UniformPolicy, run_bernoulli_bandit


class ScriptedCoin:
    """Coin flips in a fixed order, so the interleaving can be checked by hand."""

    def __init__(self, values):
        self.values = list(values)

    def random(self):
        return self.values.pop(0)


def test_team_draft_hand_computed():
    items, teams = il.team_draft(["a", "b", "c", "d"], ["c", "a", "e", "f"], 4, ScriptedCoin([0.1, 0.9]))
    # Round 1: A first (coin 0.1) picks a; B picks c. Round 2: B first (0.9) picks e (a is taken); A picks b.
    assert items == ["a", "c", "e", "b"]
    assert teams.tolist() == [0, 1, 1, 0]
    assert il.credit(teams, [1, 2]) == (0, 2)
    assert il.session_winner(teams, [1, 2]) == 1
    assert il.session_winner(teams, [0, 1]) == 0
    assert il.session_winner(teams, [3]) == -1
    assert il.session_winner(teams, []) == 0
    with pytest.raises(ValueError, match="outside"):
        il.credit(teams, [4])


def test_team_draft_identical_rankings_keep_the_ranking_and_balance_teams():
    rng = np.random.default_rng(0)
    for _ in range(20):
        items, teams = il.team_draft(list(range(10)), list(range(10)), 6, rng)
        assert items == list(range(6))
        assert abs(int((teams == 0).sum()) - int((teams == 1).sum())) <= 1


def test_team_draft_respects_each_rankers_order_and_short_lists():
    rng = np.random.default_rng(1)
    a, b = [5, 3, 1, 7], [2, 3, 9]
    items, teams = il.team_draft(a, b, 10, rng)
    assert sorted(items) == sorted(set(a) | set(b)) and len(items) == len(set(items))
    for team, ranking in ((0, a), (1, b)):
        picked = [item for item, t in zip(items, teams) if t == team]
        assert picked == [x for x in ranking if x in picked]


def test_decide_sign_test_hand_computed():
    outcomes = [1] * 15 + [-1] * 5 + [0] * 7
    result = il.decide(outcomes)
    assert (result.wins_a, result.wins_b, result.ties) == (5, 15, 7)
    assert result.p_value == pytest.approx(2 * (15504 + 4845 + 1140 + 190 + 20 + 1) / 2**20)
    assert result.winner == "B" and result.delta == pytest.approx(10 / 27)
    assert il.decide([1, -1, 0]).winner == "none"


def test_interleaving_detects_the_ranker_that_puts_relevant_items_first():
    rng = np.random.default_rng(4)
    outcomes = []
    for _ in range(300):
        relevant = set(rng.choice(50, 5, replace=False).tolist())
        others = [i for i in range(50) if i not in relevant]
        good = list(relevant) + others  # relevant first
        bad = list(rng.permutation(50))
        items, teams = il.team_draft(bad, good, 10, rng)
        # The shopper clicks relevant items with a position bias.
        clicks = [p for p, item in enumerate(items) if item in relevant and rng.random() < 0.7 / (1 + 0.2 * p)]
        outcomes.append(il.session_winner(teams, clicks))
    result = il.decide(outcomes)
    assert result.winner == "B" and result.p_value < 1e-6


def test_thompson_sampling_regret_is_far_below_uniform_and_flattens():
    means = np.array([0.05, 0.08, 0.12, 0.10])
    ts = run_bernoulli_bandit(ThompsonSampling(4, seed=1), means, 4000, seed=2)
    uniform = run_bernoulli_bandit(UniformPolicy(4, seed=1), means, 4000, seed=2)
    assert ts.total < 0.35 * uniform.total
    cumulative = ts.cumulative
    # Sublinear: the second half adds less regret than the first half.
    assert cumulative[-1] - cumulative[1999] < cumulative[1999]
    assert ts.arm_counts(4).argmax() == 2


def test_thompson_sampling_rejects_out_of_range_rewards():
    with pytest.raises(ValueError, match="rewards"):
        ThompsonSampling(2).update(0, 2.0)


def test_linucb_learns_context_dependent_best_arm():
    rng = np.random.default_rng(0)
    weights = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.3, 0.3, 0.1]])  # arm i is best for context i
    policies = {"linucb": LinUCB(3, 3, alpha=0.5), "uniform": UniformPolicy(3, seed=0)}
    regret = {}
    for name, policy in policies.items():
        tracker = RegretTracker()
        rng_local = np.random.default_rng(1)
        for _ in range(1500):
            context = np.eye(3)[rng_local.integers(2)] + rng_local.normal(0, 0.05, 3)
            expected = weights @ context
            arm = policy.select(context)
            reward = expected[arm] + rng_local.normal(0, 0.1)
            policy.update(arm, reward, context)
            tracker.record(arm, reward, expected)
        regret[name] = tracker.total
    assert regret["linucb"] < 0.2 * regret["uniform"]


def test_interleaving_false_positive_rate_between_equally_good_rankers():
    rng = np.random.default_rng(9)
    false_positives = 0
    trials = 200
    for _ in range(trials):
        outcomes = []
        for _ in range(60):
            a, b = list(rng.permutation(30)), list(rng.permutation(30))  # two unrelated random rankers
            items, teams = il.team_draft(a, b, 8, rng)
            clicks = [p for p in range(len(items)) if rng.random() < 0.3 / (1 + p)]
            outcomes.append(il.session_winner(teams, clicks))
        false_positives += il.decide(outcomes).winner != "none"
    # The exact binomial test is conservative: at most ~5% plus sampling error of 200 trials.
    assert false_positives / trials <= 0.085


def test_regret_against_a_fixed_best_arm_can_be_negative_per_round():
    tracker = RegretTracker()
    tracker.record(1, 1.0, np.array([0.5, 0.7]))  # per-round best: regret 0
    tracker.record(1, 0.0, np.array([0.5, 0.7]), best_arm=0)  # the fixed best arm did worse this round
    tracker.record(0, 0.0, np.array([0.6, 0.2]))
    assert tracker.regrets == pytest.approx([0.0, -0.2, 0.0])
    assert tracker.total == pytest.approx(-0.2)
    assert tracker.arm_counts(2).tolist() == [1, 2]
