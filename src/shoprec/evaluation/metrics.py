"""Ranking metrics, vectorised. Inputs are 0-based ranks of the target (np.inf when not ranked).

For a single held-out target per case (leave-one-out): HR@k = mean(rank < k),
NDCG@k = mean(1 / log2(rank + 2) for rank < k), MRR@k = mean(1 / (rank + 1) for rank < k).
"""

from __future__ import annotations

import numpy as np


def hit_rate_at_k(ranks: np.ndarray, k: int) -> float:
    """Share of cases whose target is ranked within the top k. ranks: (n,) 0-based."""
    ranks = np.asarray(ranks, dtype=np.float64)
    return float(np.mean(ranks < k)) if ranks.size else 0.0


def ndcg_at_k(ranks: np.ndarray, k: int) -> float:
    """NDCG@k with one relevant item per case (ideal DCG = 1). ranks: (n,) 0-based."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if not ranks.size:
        return 0.0
    gains = np.where(ranks < k, 1.0 / np.log2(np.minimum(ranks, k) + 2.0), 0.0)
    return float(gains.mean())


def mrr_at_k(ranks: np.ndarray, k: int) -> float:
    """Mean reciprocal rank, truncated at k. ranks: (n,) 0-based."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if not ranks.size:
        return 0.0
    return float(np.where(ranks < k, 1.0 / (np.minimum(ranks, k) + 1.0), 0.0).mean())


def target_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based rank of each row's target in a (n, n_items) score matrix (ties count against it
    only when strictly greater, as the published protocol does). Returns (n,) int64."""
    target_scores = scores[np.arange(len(targets)), targets]
    return (scores > target_scores[:, None]).sum(axis=1)


def dcg_at_k(gains_in_rank_order: np.ndarray, k: int) -> np.ndarray:
    """DCG@k per row of a (n, m) matrix of graded gains already in ranked order."""
    g = np.asarray(gains_in_rank_order, dtype=np.float64)[:, :k]
    discounts = 1.0 / np.log2(np.arange(2, g.shape[1] + 2))
    return (g * discounts).sum(axis=1)
