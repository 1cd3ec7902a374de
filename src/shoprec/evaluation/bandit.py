"""Exploration among arms (candidate generators, slot variants): Thompson sampling with
Beta-Bernoulli posteriors, LinUCB with per-arm linear models, a uniform baseline, and
cumulative-regret tracking against the (known, simulated) best arm.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class ThompsonSampling:
    """Beta(alpha, beta) posterior per arm; pick the arm with the highest posterior draw.

    Rewards in [0, 1]: a fractional reward r updates alpha += r, beta += 1 - r."""

    def __init__(self, n_arms: int, prior_alpha: float = 1.0, prior_beta: float = 1.0, seed: int = 0):
        if n_arms < 1:
            raise ValueError("need at least one arm")
        self.alpha = np.full(n_arms, prior_alpha, dtype=np.float64)
        self.beta = np.full(n_arms, prior_beta, dtype=np.float64)
        self.rng = np.random.default_rng(seed)

    @property
    def n_arms(self) -> int:
        return self.alpha.size

    def select(self, context: np.ndarray | None = None) -> int:
        return int(np.argmax(self.rng.beta(self.alpha, self.beta)))

    def update(self, arm: int, reward: float, context: np.ndarray | None = None) -> None:
        if not 0.0 <= reward <= 1.0:
            raise ValueError(f"Thompson sampling rewards must be in [0, 1], got {reward}")
        self.alpha[arm] += reward
        self.beta[arm] += 1.0 - reward

    def posterior_means(self) -> np.ndarray:
        return self.alpha / (self.alpha + self.beta)


class LinUCB:
    """Disjoint LinUCB (Li et al. 2010): per arm a ridge regression of reward on the context
    (d,), pick argmax of theta.x + alpha * sqrt(x' A^-1 x)."""

    def __init__(self, n_arms: int, dim: int, alpha: float = 1.0, ridge: float = 1.0):
        self.alpha = alpha
        self.a_inverse = np.stack([np.eye(dim) / ridge for _ in range(n_arms)])  # (n_arms, d, d)
        self.b = np.zeros((n_arms, dim))

    @property
    def n_arms(self) -> int:
        return self.b.shape[0]

    def select(self, context: np.ndarray) -> int:
        x = np.asarray(context, dtype=np.float64)
        theta = np.einsum("aij,aj->ai", self.a_inverse, self.b)
        width = np.sqrt(np.einsum("i,aij,j->a", x, self.a_inverse, x))
        return int(np.argmax(theta @ x + self.alpha * width))

    def update(self, arm: int, reward: float, context: np.ndarray) -> None:
        x = np.asarray(context, dtype=np.float64)
        a_inv = self.a_inverse[arm]
        # Sherman-Morrison rank-one update of the inverse: O(d^2) instead of a fresh inversion.
        ax = a_inv @ x
        self.a_inverse[arm] = a_inv - np.outer(ax, ax) / (1.0 + x @ ax)
        self.b[arm] += reward * x


class UniformPolicy:
    """Pure exploration baseline: every arm equally often at random."""

    def __init__(self, n_arms: int, seed: int = 0):
        self.n_arms = n_arms
        self.rng = np.random.default_rng(seed)

    def select(self, context: np.ndarray | None = None) -> int:
        return int(self.rng.integers(self.n_arms))

    def update(self, arm: int, reward: float, context: np.ndarray | None = None) -> None:
        pass


@dataclass
class RegretTracker:
    """Cumulative expected regret: sum over rounds of the best arm's expected reward minus the chosen
    arm's. "Best" is the best arm of each round, or a fixed `best_arm` (regret against the best
    single arm in hindsight, the usual definition when rewards vary by context)."""

    regrets: list[float] = field(default_factory=list)
    choices: list[int] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)

    def record(self, arm: int, reward: float, expected_rewards: np.ndarray, best_arm: int | None = None) -> None:
        expected_rewards = np.asarray(expected_rewards, dtype=np.float64)
        best = expected_rewards.max() if best_arm is None else expected_rewards[best_arm]
        self.choices.append(arm)
        self.rewards.append(float(reward))
        self.regrets.append(float(best - expected_rewards[arm]))

    @property
    def cumulative(self) -> np.ndarray:
        """(n_rounds,) cumulative regret."""
        return np.cumsum(self.regrets)

    @property
    def total(self) -> float:
        return float(np.sum(self.regrets))

    def arm_counts(self, n_arms: int) -> np.ndarray:
        return np.bincount(np.asarray(self.choices, dtype=np.int64), minlength=n_arms)


def run_bernoulli_bandit(policy, arm_means: np.ndarray, n_rounds: int, seed: int = 0) -> RegretTracker:
    """Play `policy` for n_rounds against Bernoulli arms with these means; returns the regret trace."""
    rng = np.random.default_rng(seed)
    arm_means = np.asarray(arm_means, dtype=np.float64)
    tracker = RegretTracker()
    for _ in range(n_rounds):
        arm = policy.select()
        reward = float(rng.random() < arm_means[arm])
        policy.update(arm, reward)
        tracker.record(arm, reward, arm_means)
    return tracker
