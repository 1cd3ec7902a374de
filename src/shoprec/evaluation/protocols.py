"""Evaluation protocols: the leave-one-out split and full-ranking evaluation (BENCHMARKS.md §1).

Leave-one-out: for each user the last item is the test target, the second-to-last the validation
target, the rest is training. Validation ranks its target given the training items as history;
test ranks its target given every item but the last (so the validation item is history).
Ranking is against all items after removing every item of the user's history: a target that
repeats a history item scores -inf and counts as a miss. The rank is the number of items with a
strictly greater score (ties do not count against the target), as the reference checker does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
import scipy.sparse as sp

from shoprec.evaluation.metrics import hit_rate_at_k, ndcg_at_k
from shoprec.recommend.dataset import Interactions

if TYPE_CHECKING:
    from shoprec.recommend.base import Recommender


@dataclass
class Holdout:
    """Held-out targets to rank: `users[j]`'s target is `targets[j]`, given `history` as the known past.

    history: Interactions over every user (index space of the training data).
    users, targets: (n,) int64 arrays.
    """

    history: Interactions
    users: np.ndarray
    targets: np.ndarray

    def __post_init__(self) -> None:
        self.users = np.asarray(self.users, dtype=np.int64)
        self.targets = np.asarray(self.targets, dtype=np.int64)
        if self.users.shape != self.targets.shape:
            raise ValueError(f"Holdout: users {self.users.shape} and targets {self.targets.shape} differ in shape")

    def __len__(self) -> int:
        return len(self.users)

    def subsample(self, max_users: int | None, seed: int = 0) -> "Holdout":
        """A random subset of at most `max_users` cases (same history), for cheap per-epoch checks."""
        if max_users is None or len(self) <= max_users:
            return self
        pick = np.sort(np.random.default_rng(seed).choice(len(self), max_users, replace=False))
        return Holdout(self.history, self.users[pick], self.targets[pick])


@dataclass
class LeaveOneOut:
    """The three parts of a leave-one-out split; all Interactions share n_users / n_items.

    train: all but the last two items of each user (what models are fitted on).
    valid_history: the history for ranking validation targets (= train).
    valid_users, valid_targets: users with at least two items and their second-to-last item.
    test_history: all but the last item of each user (includes the validation item).
    test_users, test_targets: users with at least one item and their last item.
    """

    train: Interactions
    valid_history: Interactions
    valid_users: np.ndarray
    valid_targets: np.ndarray
    test_history: Interactions
    test_users: np.ndarray
    test_targets: np.ndarray

    @property
    def valid(self) -> Holdout:
        return Holdout(self.valid_history, self.valid_users, self.valid_targets)

    @property
    def test(self) -> Holdout:
        return Holdout(self.test_history, self.test_users, self.test_targets)


def leave_one_out(
    sequences: Sequence[np.ndarray] | Sequence[list[int]],
    n_items: int,
    item_attributes: sp.csr_matrix | None = None,
    item_texts: list[str] | None = None,
) -> LeaveOneOut:
    """Split one time-ordered item-index sequence per user into train / valid / test (file order kept)."""
    seqs = [np.asarray(s, dtype=np.int64) for s in sequences]
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    side = {"item_attributes": item_attributes, "item_texts": item_texts}
    train = Interactions.from_sequences([s[:max(len(s) - 2, 0)] for s in seqs], n_items, **side)
    test_history = Interactions.from_sequences([s[:max(len(s) - 1, 0)] for s in seqs], n_items, **side)
    test_users = np.flatnonzero(lengths >= 1)
    valid_users = np.flatnonzero(lengths >= 2)
    test_targets = np.array([seqs[u][-1] for u in test_users], dtype=np.int64)
    valid_targets = np.array([seqs[u][-2] for u in valid_users], dtype=np.int64)
    return LeaveOneOut(
        train=train,
        valid_history=train,
        valid_users=valid_users,
        valid_targets=valid_targets,
        test_history=test_history,
        test_users=test_users,
        test_targets=test_targets,
    )


def full_ranking_ranks(
    model: "Recommender",
    history: Interactions,
    targets: np.ndarray,
    users: np.ndarray | None = None,
    batch_size: int = 1024,
    ties: str = "optimistic",
) -> np.ndarray:
    """0-based rank of each user's target among all items, history items removed. Returns (n,) float64.

    A target inside the user's history scores -inf and gets rank inf (a miss at any cut-off, as in
    the metrics module; the reference checker ranks it behind every unseen item, the same miss on
    any real catalog).
    ties: "optimistic" (the protocol: items with a strictly greater score) or "pessimistic" (every
    other item scoring at least as much counts too; the gap between the two shows how much a
    model's figures owe to tied scores)."""
    if ties not in ("optimistic", "pessimistic"):
        raise ValueError(f"ties must be 'optimistic' or 'pessimistic', got {ties!r}")
    optimistic, pessimistic = full_ranking_rank_bounds(model, history, targets, users, batch_size)
    return optimistic if ties == "optimistic" else pessimistic


def full_ranking_rank_bounds(
    model: "Recommender",
    history: Interactions,
    targets: np.ndarray,
    users: np.ndarray | None = None,
    batch_size: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """Both tie conventions of `full_ranking_ranks` in one scoring pass: ((n,), (n,)) float64."""
    targets = np.asarray(targets, dtype=np.int64)
    users = np.arange(len(targets), dtype=np.int64) if users is None else np.asarray(users, dtype=np.int64)
    if users.shape != targets.shape:
        raise ValueError(f"users {users.shape} and targets {targets.shape} differ in shape")
    seen = history.seen
    optimistic = np.empty(len(users), dtype=np.float64)
    pessimistic = np.empty(len(users), dtype=np.float64)
    for start in range(0, len(users), batch_size):
        batch = users[start:start + batch_size]
        scores = np.array(model.score(batch, history), dtype=np.float64)
        if scores.shape != (len(batch), history.n_items):
            raise ValueError(f"{model.name}.score returned {scores.shape}, expected {(len(batch), history.n_items)}")
        rows, cols = seen[batch].nonzero()
        scores[rows, cols] = -np.inf
        target_scores = scores[np.arange(len(batch)), targets[start:start + len(batch)]][:, None]
        repeated = np.isneginf(target_scores[:, 0])
        optimistic[start:start + len(batch)] = np.where(repeated, np.inf, (scores > target_scores).sum(axis=1))
        # the target itself is always >= itself, hence the - 1
        pessimistic[start:start + len(batch)] = np.where(repeated, np.inf, (scores >= target_scores).sum(axis=1) - 1)
    return optimistic, pessimistic


def metrics_from_ranks(ranks: np.ndarray, ks: Sequence[int] = (10, 20)) -> dict[str, float]:
    """{"hr10", "ndcg10", "hr20", "ndcg20", ...} from 0-based ranks (n,)."""
    out: dict[str, float] = {}
    for k in ks:
        out[f"hr{k}"] = hit_rate_at_k(ranks, k)
        out[f"ndcg{k}"] = ndcg_at_k(ranks, k)
    return out


def evaluate_full_ranking(
    model: "Recommender",
    history: Interactions,
    targets: np.ndarray,
    users: np.ndarray | None = None,
    ks: Sequence[int] = (10, 20),
    batch_size: int = 1024,
) -> dict[str, float]:
    """HR@k and NDCG@k of ranking each target against all items, history removed (mean over users)."""
    return metrics_from_ranks(full_ranking_ranks(model, history, targets, users, batch_size), ks)


def evaluate_holdout(model: "Recommender", holdout: Holdout, ks: Sequence[int] = (10, 20), batch_size: int = 1024) -> dict[str, float]:
    """`evaluate_full_ranking` on a Holdout."""
    return evaluate_full_ranking(model, holdout.history, holdout.targets, holdout.users, ks, batch_size)


def validation_ndcg10(model: "Recommender", valid: object) -> float | None:
    """NDCG@10 on `valid` when it is a Holdout (what `fit(data, valid)` receives), else None."""
    if not isinstance(valid, Holdout):
        return None
    return evaluate_holdout(model, valid, ks=(10,))["ndcg10"]


class FitLog:
    """Progress lines for a model's fit (epoch, loss, validation NDCG@10, elapsed), via logging.

    `label` (default: the model name) starts each line, e.g. "sasrec refit"."""

    def __init__(self, name: str, label: str | None = None):
        import logging

        self.logger = logging.getLogger(f"shoprec.recommend.{name}")
        self.name = label or name
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def __call__(self, **fields: object) -> None:
        parts = [f"{key}={value:.4f}" if isinstance(value, float) else f"{key}={value}" for key, value in fields.items()]
        self.logger.info("%s %s time=%.1fs", self.name, " ".join(parts), self.elapsed())
